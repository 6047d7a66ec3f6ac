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
    // No loops (see q4_1.wgsl's block_dot); Σ (q - 8) · x as Σ q · x - 8 Σ x, whose Σ x
    // the kernels that cache x make once for all of a thread's rows (x32_sum).
    let w0 = body_at(k) >> 2u;
    let qv = Wv[body_at(k) >> 4u];
    var s = nibbles_dot(select(W[w0], word_of(qv, 0u), WV), xi, acc_zero());
    s = nibbles_dot(select(W[w0 + 1u], word_of(qv, 1u), WV), xi + 4u, s);
    s = nibbles_dot(select(W[w0 + 2u], word_of(qv, 2u), WV), xi + 8u, s);
    s = nibbles_dot(select(W[w0 + 3u], word_of(qv, 3u), WV), xi + 12u, s);
    return load_f16(scale_at(k)) * (s - 8.0 * x32_sum(xi));
}
