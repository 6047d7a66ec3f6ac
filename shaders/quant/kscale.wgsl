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
