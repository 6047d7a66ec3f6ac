// Q8_0: [d: f16][qs: 32 signed bytes]; weight j = d * qs[j]. Uploaded split (split.wgsl):
// the 32 quants are 8 aligned words.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 32u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    return load_f16(scale_at(k)) * f32(sext8(load_u8(body_at(k) + j)));
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    // The 32 bytes of quants in two loads where the kernel reads wide (WV, see common.wgsl).
    let w0 = body_at(k) >> 2u;
    let qa = Wv[body_at(k) >> 4u];
    let qb = Wv[(body_at(k) >> 4u) + 1u];
    // No loops (see q4_1.wgsl's block_dot).
    var s = bytes_dot(select(W[w0], qa.x, WV), xi, acc_zero());
    s = bytes_dot(select(W[w0 + 1u], qa.y, WV), xi + 4u, s);
    s = bytes_dot(select(W[w0 + 2u], qa.z, WV), xi + 8u, s);
    s = bytes_dot(select(W[w0 + 3u], qa.w, WV), xi + 12u, s);
    s = bytes_dot(select(W[w0 + 4u], qb.x, WV), xi + 16u, s);
    s = bytes_dot(select(W[w0 + 5u], qb.y, WV), xi + 20u, s);
    s = bytes_dot(select(W[w0 + 6u], qb.z, WV), xi + 24u, s);
    s = bytes_dot(select(W[w0 + 7u], qb.w, WV), xi + 28u, s);
    return load_f16(scale_at(k)) * s;
}
