// matvec of an RMS-normed X with the norm fused (the decoding step's attention and FFN
// norms, and the final one before the LM head): y = scale · Σ_c W[r, c] · (x_c · g_c)
// with scale = 1 / sqrt(mean(x²) + eps), a scalar that factors out of every row's sum,
// so the raw residual x is bound as X and each thread sums x² from the values it loads
// anyway. Workgroup 0 also writes the normed x (x · scale · g, as rms_norm.wgsl does) to
// XN, for `compare`'s captures and any later reader of it. Saves the norm's dispatch:
// two a layer.

struct FusedNormParams {
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(9) var<storage, read> G: array<f32>;           // [cols] F32 norm weight
@group(0) @binding(10) var<storage, read_write> XN: array<f32>;   // [cols] x · scale · g
@group(0) @binding(11) var<uniform> NP: FusedNormParams;

// This thread's Σ x² over the values it loaded (with subgroup broadcasts, over its own
// vec4s of each round only: norm_scale adds the eight lanes' sums).
var<private> x_ss: f32;

// x_k (the k-th vec4 of X) as the product uses it: its squares counted, times g.
fn x_in(v: vec4<f32>, k: u32) -> vec4<f32> {
    x_ss += dot(v, v);
    let i = 4u * k;
    return v * vec4<f32>(G[i], G[i + 1u], G[i + 2u], G[i + 3u]);
}

// x_i read where it is needed (a storage X): times g; its square was counted by unit_ss.
fn x_in1(v: f32, i: u32) -> f32 {
    return v * G[i];
}

// A storage X's unit [xi, xi + n): its squares.
fn unit_ss(xi: u32, n: u32) {
    for (var j = 0u; j < n; j++) {
        let v = x_raw(xi + j);
        x_ss += v * v;
    }
}

fn norm_reset() {
    x_ss = 0.0;
}

// This thread's part of Σ x² (with broadcasts, its group of eight's whole sum), for the
// row reduction that adds the row's lanes.
fn norm_ss() -> f32 {
    if (can_broadcast()) {
        return sum8(x_ss);
    }
    return x_ss;
}

// The norm's scale from the row's Σ x².
fn norm_scale(ss: f32) -> f32 {
    return 1.0 / sqrt(ss / f32(P.cols) + NP.eps);
}

// Workgroup 0's row-finishing lanes write the normed x, each slot every slots-th value.
fn norm_store(ids: Ids, group: u32, t: u32, scale: f32) {
    if (group != 0u || t != 0u) {
        return;
    }
    let slots = WG / TPR;
    for (var i = ids.lid / TPR; i < P.cols; i += slots) {
        XN[i] = x_raw(i) * scale * G[i];
    }
}
