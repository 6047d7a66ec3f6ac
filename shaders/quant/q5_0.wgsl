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
    var s = acc_zero();
    for (var i = 0u; i < 4u; i++) {
        let q = W[w0 + 1u + i];
        for (var n = 0u; n < 4u; n++) {
            let byte = (q >> (8u * n)) & 0xFFu;
            let j = 4u * i + n;
            let q0 = (byte & 15u) | (((qh >> j) & 1u) << 4u);
            let q1 = (byte >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            s += (f32(q0) - 16.0) * xval(xi + j) + (f32(q1) - 16.0) * xval(xi + j + 16u);
        }
    }
    return load_f16(scale_at(k)) * s;
}
