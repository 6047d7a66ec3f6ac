// Q5_K (176 bytes): [d: f16][dmin: f16][scales: 12][qh: 32][qs: 128]. Q4_K plus a fifth
// bit per weight: bit (2c) of qh[l] for the low-nibble sub-block c, bit (2c+1) for the high.
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;

fn block_get(b: u32, j: u32) -> f32 {
    let c = j / 64u;
    let r = j % 64u;
    let l = r % 32u;
    let sm = scale_min_k4(b + 4u, 2u * c + r / 32u);
    let byte = load_u8(b + 48u + c * 32u + l);
    let h = (load_u8(b + 16u + l) >> (2u * c + r / 32u)) & 1u;
    let q = select(byte & 15u, byte >> 4u, r >= 32u) + 16u * h;
    return load_f16(b) * sm.x * f32(q) - load_f16(b + 2u) * sm.y;
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let d = load_f16(b);
    let dmin = load_f16(b + 2u);
    var s = acc_zero();
    for (var c = 0u; c < 4u; c++) {
        let sm1 = scale_min_k4(b + 4u, 2u * c);
        let sm2 = scale_min_k4(b + 4u, 2u * c + 1u);
        var s1 = acc_zero(); var s2 = acc_zero(); var sx1 = acc_zero(); var sx2 = acc_zero();
        for (var w = 0u; w < 8u; w++) {
            let q4 = load_u32(b + 48u + c * 32u + 4u * w);
            let h4 = load_u32(b + 16u + 4u * w);
            for (var t = 0u; t < 4u; t++) {
                let byte = (q4 >> (8u * t)) & 0xFFu;
                let h = (h4 >> (8u * t)) & 0xFFu;
                let l = 4u * w + t;
                let x0 = xval(xi + c * 64u + l);
                let x1 = xval(xi + c * 64u + 32u + l);
                s1 += f32((byte & 15u) + 16u * ((h >> (2u * c)) & 1u)) * x0;
                s2 += f32((byte >> 4u) + 16u * ((h >> (2u * c + 1u)) & 1u)) * x1;
                sx1 += x0;
                sx2 += x1;
            }
        }
        // The mins multiply Σ x of each 32: where the kernel caches x it has made the sums
        // once per unit for all rows (x32_sum), and the ones added up here go unused.
        if (XSUM_CACHED) {
            sx1 = x32_sum(xi + c * 64u);
            sx2 = x32_sum(xi + c * 64u + 32u);
        }
        s += d * sm1.x * s1 - dmin * sm1.y * sx1 + d * sm2.x * s2 - dmin * sm2.y * sx2;
    }
    return s;
}
