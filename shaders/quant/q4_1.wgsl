// Q4_1: [d: f16][m: f16][qs: 16 bytes]; weight j = d * nibble + m. Uploaded split
// (split.wgsl): the quants are 4 aligned words, d and m one word.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;
const SCALE_BYTES: u32 = 4u;
const BODY_BYTES: u32 = 16u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    let byte = load_u8(body_at(k) + (j & 15u));
    let q = select(byte & 15u, byte >> 4u, j >= 16u);
    let dm = unpack2x16float(W[scale_at(k) >> 2u]);
    return dm.x * f32(q) + dm.y;
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    // All 16 bytes of quants in one load where the kernel reads wide (WV, see common.wgsl).
    let w0 = body_at(k) >> 2u;
    let qv = Wv[body_at(k) >> 4u];
    // No loops: Mesa does not unroll nested ones whose body is as large as eight tokens'
    // (acc_t of the prompt matmul) make it, and without unrolling each x index is a variable.
    let q0 = select(W[w0], word_of(qv, 0u), WV);
    let q1 = select(W[w0 + 1u], word_of(qv, 1u), WV);
    let q2 = select(W[w0 + 2u], word_of(qv, 2u), WV);
    let q3 = select(W[w0 + 3u], word_of(qv, 3u), WV);
    var s = nibbles_dot(q0, xi, acc_zero());
    s = nibbles_dot(q1, xi + 4u, s);
    s = nibbles_dot(q2, xi + 8u, s);
    s = nibbles_dot(q3, xi + 12u, s);
    let sx = x32_sum(xi);
    let dm = unpack2x16float(W[scale_at(k) >> 2u]);
    return dm.x * s + dm.y * sx;
}
