// Q8_0: [d: f16][qs: 32 signed bytes]; weight j = d * qs[j].
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

fn block_get(b: u32, j: u32) -> f32 {
    return load_f16(b) * f32(sext8(load_u8(b + 2u + j)));
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    var s = acc_zero();
    for (var i = 0u; i < 8u; i++) {
        let q = load_u32(b + 2u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            s += f32(sext8((q >> (8u * k)) & 0xFFu)) * xval(xi + 4u * i + k);
        }
    }
    return load_f16(b) * s;
}
