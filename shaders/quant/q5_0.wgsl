// Q5_0: [d: f16][qh: 4 bytes][qs: 16 bytes]; bit j of qh is the fifth bit of weight j;
// weight j = d * (q - 16). Uploaded split (split.wgsl): qh and the quants are 5 aligned words.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 20u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    let w0 = body_at(k) >> 2u;
    let qh = W[w0];
    let byte = load_u8(body_at(k) + 4u + (j & 15u));
    let lo = select(byte & 15u, byte >> 4u, j >= 16u);
    let q = lo | (((qh >> j) & 1u) << 4u);
    return load_f16(scale_at(k)) * (f32(q) - 16.0);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    let w0 = body_at(k) >> 2u;
    let qh = W[w0];
    // No loops (see q4_1.wgsl's block_dot); Σ (q - 16) · x as Σ q · x - 16 Σ x, whose Σ x
    // the kernels that cache x make once for all of a thread's rows (x32_sum).
    var s = q5_dot(W[w0 + 1u], qh, xi, acc_zero());
    s = q5_dot(W[w0 + 2u], qh >> 4u, xi + 4u, s);
    s = q5_dot(W[w0 + 3u], qh >> 8u, xi + 8u, s);
    s = q5_dot(W[w0 + 4u], qh >> 12u, xi + 12u, s);
    return load_f16(scale_at(k)) * (s - 16.0 * x32_sum(xi));
}
