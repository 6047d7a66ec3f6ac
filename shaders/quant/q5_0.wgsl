// Q5_0: [d: f16][qh: 4 bytes][qs: 16 bytes]; bit j of qh is the fifth bit of weight j;
// weight j = d * (q - 16).
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;

fn block_get(b: u32, j: u32) -> f32 {
    let qh = load_u32(b + 2u);
    let byte = load_u8(b + 6u + (j & 15u));
    let lo = select(byte & 15u, byte >> 4u, j >= 16u);
    let q = lo | (((qh >> j) & 1u) << 4u);
    return load_f16(b) * (f32(q) - 16.0);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let qh = load_u32(b + 2u);
    var s = acc_zero();
    for (var i = 0u; i < 4u; i++) {
        let q = load_u32(b + 6u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let byte = (q >> (8u * k)) & 0xFFu;
            let j = 4u * i + k;
            let q0 = (byte & 15u) | (((qh >> j) & 1u) << 4u);
            let q1 = (byte >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            s += (f32(q0) - 16.0) * xval(xi + j) + (f32(q1) - 16.0) * xval(xi + j + 16u);
        }
    }
    return load_f16(b) * s;
}
