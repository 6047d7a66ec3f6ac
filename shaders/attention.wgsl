// Grouped-query causal attention of the current position over the KV cache, one
// workgroup per query head: scores → numerically stable softmax (max subtracted) →
// weighted sum of values. Sliding-window layers only see the last `window` positions.
// (attention_common.wgsl and reduce.wgsl come first.)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    // Token k of the step (y workgroup row) sees positions up to pos + k: causal.
    let k = wid.y;
    let n_head = nwg.x;
    let kvh = h / P.group;
    let n = S.n_pos + k;
    var first = 0u;
    if (P.window > 0u && n > P.window) {
        first = n - P.window;
    }
    let q0 = (k * n_head + h) * P.head_dim;
    let k0 = kvh * P.head_dim;
    let s0 = (k * n_head + h) * P.n_ctx;

    var m = -3.4e38;
    for (var p = first + lid; p < n; p += WG) {
        var d = 0.0;
        for (var i = 0u; i < P.head_dim; i++) {
            d += Q[q0 + i] * K[p * P.k_stride + k0 + i];
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
            acc += Sc[s0 + p] * V[p * P.v_stride + v0 + i];
        }
        O[(k * n_head + h) * P.head_dim_v + i] = acc / sum;
    }
}
