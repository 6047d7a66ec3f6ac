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

// Over word q of the quants (bytes 4i..4i+3) with h0 = qh >> 4i, h1 = qh >> (4i + 16):
// byte n's low nibble and bit n of h0 make the weight at x index xi + n, its high nibble
// and bit n of h1 the one at xi + n + 16. No loops (see q4_1.wgsl's block_dot).
// s + Σ q · x over those eight weights, one chain of multiply-adds (see q4_1.wgsl's
// nibbles_dot).
fn q5_dot(q: u32, h0: u32, xi: u32, s0: acc_t) -> acc_t {
    let h1 = h0 >> 16u;
    let lo = q & 0x0F0F0F0Fu;
    let hi = (q >> 4u) & 0x0F0F0F0Fu;
    var s = acc_fma(f32((lo & 0xFFu) | ((h0 & 1u) << 4u)), xval(xi), s0);
    s = acc_fma(f32((hi & 0xFFu) | ((h1 & 1u) << 4u)), xval(xi + 16u), s);
    s = acc_fma(f32(((lo >> 8u) & 0xFFu) | ((h0 & 2u) << 3u)), xval(xi + 1u), s);
    s = acc_fma(f32(((hi >> 8u) & 0xFFu) | ((h1 & 2u) << 3u)), xval(xi + 17u), s);
    s = acc_fma(f32(((lo >> 16u) & 0xFFu) | ((h0 & 4u) << 2u)), xval(xi + 2u), s);
    s = acc_fma(f32(((hi >> 16u) & 0xFFu) | ((h1 & 4u) << 2u)), xval(xi + 18u), s);
    s = acc_fma(f32((lo >> 24u) | ((h0 & 8u) << 1u)), xval(xi + 3u), s);
    return acc_fma(f32((hi >> 24u) | ((h1 & 8u) << 1u)), xval(xi + 19u), s);
}
