// Q2_K (84 bytes): [scales: 16][qs: 64][d: f16][dmin: f16]. 16 sub-blocks of 16 weights,
// each with a 4-bit scale (low nibble) and 4-bit min (high nibble);
// weight = d * scale * q2 - dmin * min. Weight order follows ggml's dequantize_row_q2_K.
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 84u;

fn block_get(b: u32, j: u32) -> f32 {
    let n = j / 128u;
    let r = j % 128u;
    let k = r / 32u;
    let half = (r % 32u) / 16u;
    let sc = load_u8(b + n * 8u + k * 2u + half);
    let q = load_u8(b + 16u + n * 32u + (r % 32u));
    return load_f16(b + 80u) * f32(sc & 15u) * f32((q >> (2u * k)) & 3u) - load_f16(b + 82u) * f32(sc >> 4u);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let d = load_f16(b + 80u);
    let dmin = load_f16(b + 82u);
    var s = acc_zero();
    for (var is = 0u; is < 16u; is++) {
        let n = is / 8u;
        let k = (is % 8u) / 2u;
        let half = is % 2u;
        let sc = load_u8(b + is);
        var sq = acc_zero();
        var sx = acc_zero();
        for (var w = 0u; w < 4u; w++) {
            let q4 = load_u32(b + 16u + n * 32u + half * 16u + 4u * w);
            for (var t = 0u; t < 4u; t++) {
                let x = xval(xi + n * 128u + k * 32u + half * 16u + 4u * w + t);
                sq += f32((q4 >> (8u * t + 2u * k)) & 3u) * x;
                sx += x;
            }
        }
        s += d * f32(sc & 15u) * sq - dmin * f32(sc >> 4u) * sx;
    }
    return s;
}
