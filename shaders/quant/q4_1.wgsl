// Q4_1: [d: f16][m: f16][qs: 16 bytes]; weight j = d * nibble + m.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;

fn block_get(b: u32, j: u32) -> f32 {
    let byte = load_u8(b + 4u + (j & 15u));
    let q = select(byte & 15u, byte >> 4u, j >= 16u);
    return load_f16(b) * f32(q) + load_f16(b + 2u);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    var s = acc_zero();
    var sx = acc_zero();
    for (var i = 0u; i < 4u; i++) {
        let q = load_u32(b + 4u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let byte = (q >> (8u * k)) & 0xFFu;
            let j = 4u * i + k;
            let x0 = xval(xi + j);
            let x1 = xval(xi + j + 16u);
            s += f32(byte & 15u) * x0 + f32(byte >> 4u) * x1;
            sx += x0 + x1;
        }
    }
    return load_f16(b) * s + load_f16(b + 2u) * sx;
}
