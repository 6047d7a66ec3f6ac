// Q8_0: [d: f16][qs: 32 signed bytes]; weight j = d * qs[j].
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

fn block_get(b: u32, j: u32) -> f32 {
    return load_f16(b) * f32(sext8(load_u8(b + 2u + j)));
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    // The 32 quants start 2 bytes into the block, so half the blocks have them 2 bytes off
    // a word boundary: read 9 aligned words once and shift neighbours together.
    let w0 = (b + 2u) >> 2u;
    let off = ((b + 2u) & 2u) * 8u; // 0 or 16 bits
    // The block's last word: aligned quants end at w0 + 7, shifted ones at w0 + 8. Reading
    // no further keeps the last block of a buffer from reading past its end.
    let last = (b + BLOCK_BYTES - 1u) >> 2u;
    var lo = W[w0];
    var s = acc_zero();
    for (var i = 0u; i < 8u; i++) {
        let hi = W[min(w0 + i + 1u, last)];
        let word = select(lo, (lo >> 16u) | (hi << 16u), off == 16u);
        lo = hi;
        let q = vec4<f32>(unpack4xI8(word));
        let x = xi + 4u * i;
        s += q.x * xval(x) + q.y * xval(x + 1u) + q.z * xval(x + 2u) + q.w * xval(x + 3u);
    }
    return load_f16(b) * s;
}
