// BF16: the top 16 bits of an f32.
const BLOCK_WEIGHTS: u32 = 1u;
const BLOCK_BYTES: u32 = 2u;

fn block_get(b: u32, j: u32) -> f32 {
    return bitcast<f32>(load_u16(b) << 16u);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    return block_get(b, 0u) * xval(xi);
}
