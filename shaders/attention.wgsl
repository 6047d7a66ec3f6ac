// Grouped-query causal attention of the current position over the KV cache, one
// workgroup per query head: scores → numerically stable softmax (max subtracted) →
// weighted sum of values. Sliding-window layers only see the last `window` positions.
// (attention_common.wgsl and reduce.wgsl come first.)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let w = head_of(wid, nwg);
    let k = w.k;
    let h = w.h;
    let n_head = w.n_head;
    let kvh = w.kvh;
    let first = w.first;
    let n = w.n;
    let q0 = w.q0;
    let k0 = w.k0;
    let s0 = w.s0;

    var m = -3.4e38;
    for (var p = first + lid; p < n; p += WG) {
        var d = 0.0;
        for (var i = 0u; i < P.head_dim; i++) {
            d += Q[q0 + i] * key(p * P.k_stride + k0 + i);
        }
        d = cap_score(d * P.scale);
        Sc[s0 + p] = d;
        m = max(m, d);
    }
    m = reduce_max(lid, m);
    var sum = 0.0;
    for (var p = first + lid; p < n; p += WG) {
        let e = exp(Sc[s0 + p] - m);
        Sc[s0 + p] = e;
        sum += e;
    }
    sum = reduce_sum(lid, sum);
    // Each thread owns output dims; make the scores written above visible to all.
    storageBarrier();
    let v0 = kvh * P.head_dim_v;
    for (var i = lid; i < P.head_dim_v; i += WG) {
        var acc = 0.0;
        for (var p = first; p < n; p++) {
            acc += Sc[s0 + p] * value(p * P.v_stride + v0 + i);
        }
        O[(k * n_head + h) * P.head_dim_v + i] = acc / sum;
    }
}
