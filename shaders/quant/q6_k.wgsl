// Q6_K (210 bytes): [ql: 128][qh: 64][scales: 16 signed bytes][d: f16]. Each half of the
// block (128 weights) is four quarters of 32: low 4 bits from ql (low/high nibbles of two
// 32-byte runs), high 2 bits from qh; weight = d * scale * (q - 32).
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;

fn block_get(b: u32, j: u32) -> f32 {
    let n = j / 128u;
    let r = j % 128u;
    let k = r / 32u;
    let l = r % 32u;
    let qlb = load_u8(b + n * 64u + l + (k & 1u) * 32u);
    let lo = select(qlb & 15u, qlb >> 4u, k >= 2u);
    let hi = (load_u8(b + 128u + n * 32u + l) >> (2u * k)) & 3u;
    let sc = sext8(load_u8(b + 192u + n * 8u + l / 16u + 2u * k));
    return load_f16(b + 208u) * f32(sc) * f32(i32(lo | (hi << 4u)) - 32);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let d = load_f16(b + 208u);
    var s = acc_zero();
    for (var n = 0u; n < 2u; n++) {
        for (var k = 0u; k < 4u; k++) {
            for (var half = 0u; half < 2u; half++) {
                let sc = sext8(load_u8(b + 192u + n * 8u + half + 2u * k));
                var sq = acc_zero();
                for (var w = 0u; w < 4u; w++) {
                    let ql4 = load_u32(b + n * 64u + (k & 1u) * 32u + half * 16u + 4u * w);
                    let qh4 = load_u32(b + 128u + n * 32u + half * 16u + 4u * w);
                    for (var t = 0u; t < 4u; t++) {
                        let qlb = (ql4 >> (8u * t)) & 0xFFu;
                        let lo = select(qlb & 15u, qlb >> 4u, k >= 2u);
                        let hi = (qh4 >> (8u * t + 2u * k)) & 3u;
                        sq += f32(i32(lo | (hi << 4u)) - 32) * xval(xi + n * 128u + k * 32u + half * 16u + 4u * w + t);
                    }
                }
                s += d * f32(sc) * sq;
            }
        }
    }
    return s;
}
