// F32: one weight per "block" of 4 bytes.
const BLOCK_WEIGHTS: u32 = 1u;
const BLOCK_BYTES: u32 = 4u;

fn block_get(b: u32, j: u32) -> f32 {
    return bitcast<f32>(W[b >> 2u]);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    return bitcast<f32>(W[b >> 2u]) * xval(xi);
}
