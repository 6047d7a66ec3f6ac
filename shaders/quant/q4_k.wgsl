// Q4_K (144 bytes): [d: f16][dmin: f16][scales: 12][qs: 128]. 8 sub-blocks of 32 with
// 6-bit scale and min; each 32 bytes of qs hold two sub-blocks (low, then high nibbles).
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;

fn block_get(b: u32, j: u32) -> f32 {
    let c = j / 64u;
    let r = j % 64u;
    let sm = scale_min_k4(b + 4u, 2u * c + r / 32u);
    let byte = load_u8(b + 16u + c * 32u + (r % 32u));
    let q = select(byte & 15u, byte >> 4u, r >= 32u);
    return load_f16(b) * sm.x * f32(q) - load_f16(b + 2u) * sm.y;
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    // Blocks are 144 bytes, so each starts on 16: the header (d, dmin, the 12 scale bytes)
    // is one load and each 32-byte run of quants two (Wv: W 16 bytes at a time).
    // No loops (see q4_1.wgsl's block_dot): inside one Mesa does not unroll, every x index
    // is a variable and each read of a cached x became a per-lane gather (lavapipe's Q4_K
    // matvec spent ~36 instructions a weight so).
    let h = Wv[b >> 4u];
    let d = unpack2x16float(h.x).x;
    let dmin = unpack2x16float(h.x).y;
    var s = acc_zero();
    if (WV) {
        s = k4_run(b, h, 0u, xi, d, dmin, s);
        s = k4_run(b, h, 1u, xi, d, dmin, s);
        s = k4_run(b, h, 2u, xi, d, dmin, s);
        return k4_run(b, h, 3u, xi, d, dmin, s);
    }
    // The prompt matmul (WV false) decodes for eight tokens: unrolled, a whole block's
    // products spilled (its Q4_K matmul 4.0 -> 1.8 G weight-tokens/s, a loop over the runs
    // alone 2.8), and its x are loads anyway; it keeps the loops.
    return k4_dot_loops(b, xi);
}

// s + run c (0..4) of a block: its 32 bytes of quants hold sub-block 2c in the low nibbles
// (x from xi + 64c) and sub-block 2c + 1 in the high ones (x from xi + 64c + 32).
fn k4_run(b: u32, h: vec4<u32>, c: u32, xi: u32, d: f32, dmin: f32, s: acc_t) -> acc_t {
    let sm1 = scale_min_k4v(h, 2u * c);
    let sm2 = scale_min_k4v(h, 2u * c + 1u);
    let o = b + 16u + c * 32u;
    let qa = Wv[(o >> 4u)];
    let qb = Wv[(o >> 4u) + 1u];
    let xa = xi + c * 64u;
    var lo = Nib4(acc_zero(), acc_zero());
    var hi = Nib4(acc_zero(), acc_zero());
    for_word(select(load_u32(o), qa.x, WV), xa, &lo, &hi);
    for_word(select(load_u32(o + 4u), qa.y, WV), xa + 4u, &lo, &hi);
    for_word(select(load_u32(o + 8u), qa.z, WV), xa + 8u, &lo, &hi);
    for_word(select(load_u32(o + 12u), qa.w, WV), xa + 12u, &lo, &hi);
    for_word(select(load_u32(o + 16u), qb.x, WV), xa + 16u, &lo, &hi);
    for_word(select(load_u32(o + 20u), qb.y, WV), xa + 20u, &lo, &hi);
    for_word(select(load_u32(o + 24u), qb.z, WV), xa + 24u, &lo, &hi);
    for_word(select(load_u32(o + 28u), qb.w, WV), xa + 28u, &lo, &hi);
    // The mins multiply Σ x of each 32: where the kernel caches x it has made the sums
    // once per unit for all rows (x32_sum), and the ones nib4 would add up are not made.
    var sx1 = lo.x;
    var sx2 = hi.x;
    if (XSUM_CACHED) {
        sx1 = x32_sum(xa);
        sx2 = x32_sum(xa + 32u);
    }
    return s + d * sm1.x * lo.s - dmin * sm1.y * sx1 + d * sm2.x * hi.s - dmin * sm2.y * sx2;
}

// Word q of a run's quants (bytes l..l+3 at x index xa): low nibbles into lo, high into hi.
fn for_word(q: u32, xa: u32, lo: ptr<function, Nib4>, hi: ptr<function, Nib4>) {
    *lo = nib4(q & 0x0F0F0F0Fu, xa, *lo);
    *hi = nib4((q >> 4u) & 0x0F0F0F0Fu, xa + 32u, *hi);
}

// block_dot for the prompt matmul (above).
fn k4_dot_loops(b: u32, xi: u32) -> acc_t {
    // Blocks are 144 bytes, so each starts on 16: the header (d, dmin, the 12 scale bytes)
    // is one load and each 32-byte run of quants two (Wv: W 16 bytes at a time).
    let v = b >> 4u;
    let h = Wv[v];
    let d = unpack2x16float(h.x).x;
    let dmin = unpack2x16float(h.x).y;
    var s = acc_zero();
    for (var c = 0u; c < 4u; c++) {
        let sm1 = scale_min_k4v(h, 2u * c);
        let sm2 = scale_min_k4v(h, 2u * c + 1u);
        let qa = Wv[v + 1u + 2u * c];
        let qb = Wv[v + 2u + 2u * c];
        var s1 = acc_zero(); var s2 = acc_zero(); var sx1 = acc_zero(); var sx2 = acc_zero();
        for (var w = 0u; w < 8u; w++) {
            let q4 = select(load_u32(b + 16u + c * 32u + 4u * w), word_of(select(qa, qb, w >= 4u), w & 3u), WV);
            for (var t = 0u; t < 4u; t++) {
                let byte = (q4 >> (8u * t)) & 0xFFu;
                let l = 4u * w + t;
                let x0 = xval(xi + c * 64u + l);
                let x1 = xval(xi + c * 64u + 32u + l);
                s1 += f32(byte & 15u) * x0;
                s2 += f32(byte >> 4u) * x1;
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
