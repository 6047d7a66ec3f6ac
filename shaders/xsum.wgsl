// x32_sum for the X files that keep no copy of x (matvec_x_storage.wgsl, matmul_main.wgsl's
// matmul_x_*.wgsl): Σ x over the 32 columns from xi, read through xval. The decoders with
// an offset (Q4_1, Q5_1: m; Q4_K, Q5_K: the sub-block mins) multiply it once per 32
// weights; the X files that cache a unit of x (matvec_x_uniform.wgsl, matmul_rows.wgsl)
// sum it once per unit for all of a thread's rows instead.

// No cache here: a decoder that reads every x of the 32 anyway (the K-quants) adds them
// up as it goes rather than read them again.
const XSUM_CACHED: bool = false;

// xi..xi+3 and xi+16..xi+19 added up.
fn x8_sum(xi: u32) -> acc_t {
    return ((xval(xi) + xval(xi + 16u)) + (xval(xi + 1u) + xval(xi + 17u)))
        + ((xval(xi + 2u) + xval(xi + 18u)) + (xval(xi + 3u) + xval(xi + 19u)));
}

fn x32_sum(xi: u32) -> acc_t {
    return (x8_sum(xi) + x8_sum(xi + 4u)) + (x8_sum(xi + 8u) + x8_sum(xi + 12u));
}
