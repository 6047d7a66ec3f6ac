// Q3_K (110 bytes): [hmask: 32][qs: 64][scales: 12][d: f16]. 16 sub-blocks of 16 with
// signed 6-bit scales; a weight's 2 low bits are in qs, its high bit in hmask (a clear
// bit means subtract 4). Order follows ggml's dequantize_row_q3_K. Uploaded split
// (split.wgsl): the 108-byte bodies are whole words, d apart.
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 108u;

fn q3k_scale(o: u32, is: u32) -> f32 {
    let lo = select(load_u8(o + 96u + is) & 15u, load_u8(o + 96u + is - 8u) >> 4u, is >= 8u);
    let hi = (load_u8(o + 96u + 8u + (is % 4u)) >> (2u * (is / 4u))) & 3u;
    return f32(i32(lo | (hi << 4u)) - 32);
}

fn block_get(b: u32, j: u32) -> f32 {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let n = j / 128u;
    let r = j % 128u;
    let k = r / 32u;
    let half = (r % 32u) / 16u;
    let l = r % 32u;
    let q = (load_u8(o + 32u + n * 32u + l) >> (2u * k)) & 3u;
    let h = (load_u8(o + l) >> (4u * n + k)) & 1u;
    return load_f16(scale_at(kb)) * q3k_scale(o, n * 8u + k * 2u + half) * f32(i32(q) - select(4, 0, h == 1u));
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let d = load_f16(scale_at(kb));
    var s = acc_zero();
    for (var is = 0u; is < 16u; is++) {
        let n = is / 8u;
        let k = (is % 8u) / 2u;
        let half = is % 2u;
        var sq = acc_zero();
        for (var w = 0u; w < 4u; w++) {
            let q4 = load_word(o + 32u + n * 32u + half * 16u + 4u * w);
            let h4 = load_word(o + half * 16u + 4u * w);
            for (var t = 0u; t < 4u; t++) {
                let q = (q4 >> (8u * t + 2u * k)) & 3u;
                let h = (h4 >> (8u * t + 4u * n + k)) & 1u;
                sq += f32(i32(q) - select(4, 0, h == 1u)) * xval(xi + n * 128u + k * 32u + half * 16u + 4u * w + t);
            }
        }
        s += d * q3k_scale(o, is) * sq;
    }
    return s;
}
