// Scale and min of sub-block j (0..8) from the 12 packed bytes at byte offset `at`
// (Q4_K and Q5_K), as ggml's get_scale_min_k4.
fn scale_min_k4(at: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(load_u8(at + j) & 63u), f32(load_u8(at + j + 4u) & 63u));
    }
    let sc = (load_u8(at + j + 4u) & 15u) | ((load_u8(at + j - 4u) >> 6u) << 4u);
    let m = (load_u8(at + j + 4u) >> 4u) | ((load_u8(at + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

// Byte j (0..12) of the 12 packed scale bytes held as words h.y, h.z, h.w (a Q4_K or
// Q5_K block's first 16 bytes, loaded at once). Selects, not an index: j is not always
// a constant where this is inlined.
fn k4_byte(h: vec4<u32>, j: u32) -> u32 {
    let w = select(select(h.y, h.z, j >= 4u), h.w, j >= 8u);
    return (w >> (8u * (j & 3u))) & 0xFFu;
}

// scale_min_k4 from the block's first 16 bytes instead of from W.
fn scale_min_k4v(h: vec4<u32>, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(k4_byte(h, j) & 63u), f32(k4_byte(h, j + 4u) & 63u));
    }
    let sc = (k4_byte(h, j + 4u) & 15u) | ((k4_byte(h, j - 4u) >> 6u) << 4u);
    let m = (k4_byte(h, j + 4u) >> 4u) | ((k4_byte(h, j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

// A K-quant decoder's running sums over some weights: Σ q·x (s) and, where the kernel does
// not cache Σ x (XSUM_CACHED false), Σ x (x) of the same weights.
struct Nib4 {
    s: acc_t,
    x: acc_t,
}

// a + the four bytes of m (each a value 0..255) times x[xi..xi+4): one chain of
// multiply-adds (see q4_1.wgsl's nibbles_dot), and Σ x where it is not cached.
fn nib4(m: u32, xi: u32, a: Nib4) -> Nib4 {
    let x0 = xval(xi);
    let x1 = xval(xi + 1u);
    let x2 = xval(xi + 2u);
    let x3 = xval(xi + 3u);
    var s = acc_fma(f32(m & 0xFFu), x0, a.s);
    s = acc_fma(f32((m >> 8u) & 0xFFu), x1, s);
    s = acc_fma(f32((m >> 16u) & 0xFFu), x2, s);
    s = acc_fma(f32(m >> 24u), x3, s);
    var sx = a.x;
    if (!XSUM_CACHED) {
        sx += (x0 + x1) + (x2 + x3);
    }
    return Nib4(s, sx);
}

// s + Σ nibble · x over word q of a block's quants: its bytes' low nibbles are the weights
// at x indices xi..xi+3, their high nibbles those at xi+16..xi+19. One chain of
// multiply-adds, not a tree: on the prompt matmul (eight tokens a product) a tree's
// products all lived at once and lavapipe spilled them to the stack.
fn nibbles_dot(q: u32, xi: u32, s0: acc_t) -> acc_t {
    return halves_dot(q & 0x0F0F0F0Fu, (q >> 4u) & 0x0F0F0F0Fu, xi, s0);
}

// s + Σ over the four bytes n of lo (weights at x indices xi + n) and of hi (at xi + 16 + n),
// unsigned: nibbles_dot's products, and Q5_0's five-bit quants once their fifth bits
// are in (spread4).
fn halves_dot(lo: u32, hi: u32, xi: u32, s0: acc_t) -> acc_t {
    var s = acc_fma(f32(lo & 0xFFu), xval(xi), s0);
    s = acc_fma(f32(hi & 0xFFu), xval(xi + 16u), s);
    s = acc_fma(f32((lo >> 8u) & 0xFFu), xval(xi + 1u), s);
    s = acc_fma(f32((hi >> 8u) & 0xFFu), xval(xi + 17u), s);
    s = acc_fma(f32((lo >> 16u) & 0xFFu), xval(xi + 2u), s);
    s = acc_fma(f32((hi >> 16u) & 0xFFu), xval(xi + 18u), s);
    s = acc_fma(f32(lo >> 24u), xval(xi + 3u), s);
    return acc_fma(f32(hi >> 24u), xval(xi + 19u), s);
}

// s + Σ q · x over the four signed bytes q of word w at x indices xi..xi+3 (Q8_0).
fn bytes_dot(w: u32, xi: u32, s0: acc_t) -> acc_t {
    var s = acc_fma(f32(sext8(w)), xval(xi), s0);
    s = acc_fma(f32(sext8(w >> 8u)), xval(xi + 1u), s);
    s = acc_fma(f32(sext8(w >> 16u)), xval(xi + 2u), s);
    return acc_fma(f32(bitcast<i32>(w) >> 24u), xval(xi + 3u), s);
}

// Bits 0..3 of h moved to bit 4 of bytes 0..3: the multiplier's shifts 0, 7, 14 and 21
// put bit n at 8n and the other copies on bits that no two share (no carries).
fn spread4(h: u32) -> u32 {
    return (((h & 15u) * 0x00204081u) & 0x01010101u) << 4u;
}

// Q5_0 and Q5_1: over word q of the quants (bytes 4i..4i+3) with h0 = qh >> 4i, byte n's
// low nibble and bit n of h0 make the quant at x index xi + n, its high nibble and bit n
// of h0 >> 16 the one at xi + n + 16. Four quants' fifth bits go in with one multiply
// (spread4), then the products are nibbles_dot's. s + Σ q · x over those eight weights.
fn q5_dot(q: u32, h0: u32, xi: u32, s0: acc_t) -> acc_t {
    let lo = (q & 0x0F0F0F0Fu) | spread4(h0);
    let hi = ((q >> 4u) & 0x0F0F0F0Fu) | spread4(h0 >> 16u);
    return halves_dot(lo, hi, xi, s0);
}
