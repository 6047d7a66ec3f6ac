// Q4_0: [d: f16][qs: 16 bytes]; weight j = d * (nibble - 8), low nibbles are 0..16.
// Uploaded split (split.wgsl): the quants are 4 aligned words.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 16u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    let byte = load_u8(body_at(k) + (j & 15u));
    let q = select(byte & 15u, byte >> 4u, j >= 16u);
    return load_f16(scale_at(k)) * (f32(q) - 8.0);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    // All 16 bytes of quants in one load where the kernel reads wide (WV, see common.wgsl).
    let w0 = body_at(k) >> 2u;
    let qv = Wv[body_at(k) >> 4u];
    var s = acc_zero();
    for (var i = 0u; i < 4u; i++) {
        let q = select(W[w0 + i], word_of(qv, i), WV);
        for (var n = 0u; n < 4u; n++) {
            let byte = (q >> (8u * n)) & 0xFFu;
            let j = 4u * i + n;
            s += (f32(byte & 15u) - 8.0) * xval(xi + j) + (f32(byte >> 4u) - 8.0) * xval(xi + j + 16u);
        }
    }
    return load_f16(scale_at(k)) * s;
}
