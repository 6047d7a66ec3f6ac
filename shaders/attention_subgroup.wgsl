// attention.wgsl for adapters with subgroups of 8 or more lanes, used when head_dim is a
// multiple of 8. What every thread of the workgroup reads alike — the query, and each
// position's softmax weight — is loaded once per subgroup, one value per lane, and handed
// round with subgroupBroadcast: on lavapipe, which makes every load in a loop a per-lane
// gather, that halves the loads of both inner loops. Loops run the same number of times in
// every thread (broadcasts need all lanes), so threads past the end compute on a clamped
// index and keep nothing. (attention_common.wgsl and reduce.wgsl come first.)

// Eight consecutive values broadcast from lanes 0..7, as one sum of products with `w`.
fn dot8(v: f32, w0: f32, w1: f32, w2: f32, w3: f32, w4: f32, w5: f32, w6: f32, w7: f32) -> f32 {
    return subgroupBroadcast(v, 0u) * w0 + subgroupBroadcast(v, 1u) * w1 + subgroupBroadcast(v, 2u) * w2
         + subgroupBroadcast(v, 3u) * w3 + subgroupBroadcast(v, 4u) * w4 + subgroupBroadcast(v, 5u) * w5
         + subgroupBroadcast(v, 6u) * w6 + subgroupBroadcast(v, 7u) * w7;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
    let lane = sid % 8u;
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
    for (var pb = first; pb < n; pb += WG) {
        let p = pb + lid;
        let kb = min(p, n - 1u) * P.k_stride + k0;
        var d = 0.0;
        for (var i = 0u; i < P.head_dim; i += 8u) {
            let b = kb + i;
            d += dot8(Q[q0 + i + lane], key(b), key(b + 1u), key(b + 2u), key(b + 3u), key(b + 4u), key(b + 5u), key(b + 6u), key(b + 7u));
        }
        d = cap_score(d * P.scale);
        if (p < n) {
            Sc[s0 + p] = d;
            m = max(m, d);
        }
    }
    m = reduce_max(lid, m);
    var sum = 0.0;
    for (var p = first + lid; p < n; p += WG) {
        let e = exp(Sc[s0 + p] - m);
        Sc[s0 + p] = e;
        sum += e;
    }
    sum = reduce_sum(lid, sum);
    storageBarrier();
    let v0 = kvh * P.head_dim_v;
    for (var ib = 0u; ib < P.head_dim_v; ib += WG) {
        let i = min(ib + lid, P.head_dim_v - 1u);
        var acc = 0.0;
        for (var p = first; p < n; p += 8u) {
            // Lane j brings position p + j's weight (0 past the end); values at clamped
            // positions then count for nothing.
            let pj = p + lane;
            let w = select(0.0, Sc[s0 + min(pj, n - 1u)], pj < n);
            let c = v0 + i;
            let last = n - 1u;
            acc += dot8(w, value(p * P.v_stride + c), value(min(p + 1u, last) * P.v_stride + c), value(min(p + 2u, last) * P.v_stride + c),
                        value(min(p + 3u, last) * P.v_stride + c), value(min(p + 4u, last) * P.v_stride + c), value(min(p + 5u, last) * P.v_stride + c),
                        value(min(p + 6u, last) * P.v_stride + c), value(min(p + 7u, last) * P.v_stride + c));
        }
        if (ib + lid < P.head_dim_v) {
            O[(k * n_head + h) * P.head_dim_v + ib + lid] = acc / sum;
        }
    }
}
