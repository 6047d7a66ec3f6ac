// Grouped-query causal attention of the current position over the KV cache, one
// workgroup per query head: scores → numerically stable softmax (max subtracted) →
// weighted sum of values. Sliding-window layers only see the last `window` positions.

struct Params {
    group: u32,       // query heads per KV head
    head_dim: u32,
    head_dim_v: u32,
    k_stride: u32,    // floats per cached position of K (n_head_kv * head_dim)
    v_stride: u32,    // floats per cached position of V
    n_ctx: u32,       // scores row length
    window: u32,      // 0: attend to every position
    scale: f32,
    softcap: f32,     // > 0: scores become softcap * tanh(score / softcap) (Gemma 2)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    token: u32,
    pos: u32,       // position of the first token of this step
    n_pos: u32,     // positions the first token sees (pos + 1)
    n_tokens: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;        // [tokens, n_head, head_dim]
@group(0) @binding(1) var<storage, read> K: array<f32>;        // [n_ctx, n_head_kv * head_dim]
@group(0) @binding(2) var<storage, read> V: array<f32>;        // [n_ctx, n_head_kv * head_dim_v]
@group(0) @binding(3) var<storage, read_write> Sc: array<f32>; // [tokens, n_head, n_ctx] scratch
@group(0) @binding(4) var<storage, read_write> O: array<f32>;  // [tokens, n_head, head_dim_v]
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<uniform> S: Step;

// reduce_max, reduce_sum and WG come from reduce.wgsl, prepended by the host.

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
        d *= P.scale;
        if (P.softcap > 0.0) {
            // tanh through exp, clamped: some drivers' tanh overflows for large |x|.
            let z = clamp(d / P.softcap, -15.0, 15.0);
            let e2 = exp(2.0 * z);
            d = P.softcap * (e2 - 1.0) / (e2 + 1.0);
        }
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
