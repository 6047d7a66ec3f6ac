// Q6_K (210 bytes): [ql: 128][qh: 64][scales: 16 signed bytes][d: f16]. Each half of the
// block (128 weights) is four quarters of 32: low 4 bits from ql (low/high nibbles of two
// 32-byte runs), high 2 bits from qh; weight = d * scale * (q - 32). Uploaded split
// (split.wgsl): the 208-byte bodies are whole words, d apart.
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 208u;

fn block_get(b: u32, j: u32) -> f32 {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let n = j / 128u;
    let r = j % 128u;
    let k = r / 32u;
    let l = r % 32u;
    let qlb = load_u8(o + n * 64u + l + (k & 1u) * 32u);
    let lo = select(qlb & 15u, qlb >> 4u, k >= 2u);
    let hi = (load_u8(o + 128u + n * 32u + l) >> (2u * k)) & 3u;
    let sc = sext8(load_u8(o + 192u + n * 8u + l / 16u + 2u * k));
    return load_f16(scale_at(kb)) * f32(sc) * f32(i32(lo | (hi << 4u)) - 32);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let d = load_f16(scale_at(kb));
    // The 16 signed scales as four words, read once.
    let scw = array<u32, 4>(load_word(o + 192u), load_word(o + 196u), load_word(o + 200u), load_word(o + 204u));
    var s = acc_zero();
    // Position l of a half feeds four weights (quarters k = 0..3) from ql[l], ql[l + 32]
    // and qh[l]: read those three words once per four positions, keep one sum per quarter.
    for (var n = 0u; n < 2u; n++) {
        for (var half = 0u; half < 2u; half++) {
            var s0 = acc_zero();
            var s1 = acc_zero();
            var s2 = acc_zero();
            var s3 = acc_zero();
            for (var w = 0u; w < 4u; w++) {
                let l0 = half * 16u + 4u * w;
                let qa = load_word(o + n * 64u + l0);
                let qb = load_word(o + n * 64u + 32u + l0);
                let qh = load_word(o + 128u + n * 32u + l0);
                for (var t = 0u; t < 4u; t++) {
                    let a = (qa >> (8u * t)) & 0xFFu;
                    let c = (qb >> (8u * t)) & 0xFFu;
                    let h = (qh >> (8u * t)) & 0xFFu;
                    let x = xi + n * 128u + l0 + t;
                    s0 += f32(i32((a & 15u) | ((h & 3u) << 4u)) - 32) * xval(x);
                    s1 += f32(i32((c & 15u) | (((h >> 2u) & 3u) << 4u)) - 32) * xval(x + 32u);
                    s2 += f32(i32((a >> 4u) | (((h >> 4u) & 3u) << 4u)) - 32) * xval(x + 64u);
                    s3 += f32(i32((c >> 4u) | (((h >> 6u) & 3u) << 4u)) - 32) * xval(x + 96u);
                }
            }
            // Scales n*8 + half + {0, 2, 4, 6}: bytes half and half + 2 of words 2n and 2n + 1.
            let lo = scw[2u * n];
            let hi = scw[2u * n + 1u];
            let sh = 8u * half;
            s += d * (f32(sext8(lo >> sh)) * s0 + f32(sext8(lo >> (sh + 16u))) * s1
                    + f32(sext8(hi >> sh)) * s2 + f32(sext8(hi >> (sh + 16u))) * s3);
        }
    }
    return s;
}
