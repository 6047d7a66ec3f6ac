// Q4_0: [d: f16][qs: 16 bytes]; weight j = d * (nibble - 8), low nibbles are 0..16.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

fn block_get(b: u32, j: u32) -> f32 {
    let byte = load_u8(b + 2u + (j & 15u));
    let q = select(byte & 15u, byte >> 4u, j >= 16u);
    return load_f16(b) * (f32(q) - 8.0);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    var s = acc_zero();
    for (var i = 0u; i < 4u; i++) {
        let q = load_u32(b + 2u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let byte = (q >> (8u * k)) & 0xFFu;
            let j = 4u * i + k;
            s += (f32(byte & 15u) - 8.0) * xval(xi + j) + (f32(byte >> 4u) - 8.0) * xval(xi + j + 16u);
        }
    }
    return load_f16(b) * s;
}
