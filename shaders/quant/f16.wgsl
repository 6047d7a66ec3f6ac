// F16: one weight per 2-byte "block".
const BLOCK_WEIGHTS: u32 = 1u;
const BLOCK_BYTES: u32 = 2u;

fn block_get(b: u32, j: u32) -> f32 {
    return load_f16(b);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    return load_f16(b) * xval(xi);
}
