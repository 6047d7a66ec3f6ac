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
