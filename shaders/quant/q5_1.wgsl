// Q5_1: [d: f16][m: f16][qh: 4 bytes][qs: 16 bytes]; weight j = d * q + m. Uploaded
// split (split.wgsl): qh and the quants are 5 aligned words, d and m one word.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;
const SCALE_BYTES: u32 = 4u;
const BODY_BYTES: u32 = 20u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    let w0 = body_at(k) >> 2u;
    let qh = W[w0];
    let byte = load_u8(body_at(k) + 4u + (j & 15u));
    let lo = select(byte & 15u, byte >> 4u, j >= 16u);
    let q = lo | (((qh >> j) & 1u) << 4u);
    let dm = unpack2x16float(W[scale_at(k) >> 2u]);
    return dm.x * f32(q) + dm.y;
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    let w0 = body_at(k) >> 2u;
    let qh = W[w0];
    var s = q5_dot(W[w0 + 1u], qh, xi, acc_zero());
    s = q5_dot(W[w0 + 2u], qh >> 4u, xi + 4u, s);
    s = q5_dot(W[w0 + 3u], qh >> 8u, xi + 8u, s);
    s = q5_dot(W[w0 + 4u], qh >> 12u, xi + 12u, s);
    let sx = x32_sum(xi);
    let dm = unpack2x16float(W[scale_at(k) >> 2u]);
    return dm.x * s + dm.y * sx;
}
