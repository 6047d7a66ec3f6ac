// matvec's X as a storage buffer: any width, read where it is needed (no cache: on GPUs
// whose lanes split a row the lanes read neighbouring words of it, and private arrays of
// a super-block's 256 values would not fit in registers).

@group(0) @binding(1) var<storage, read> X: array<f32>;  // [cols]

fn unit_of(block_weights: u32) -> u32 {
    return block_weights;
}

// Nothing to cache: the decoders read x[xi + j] from X itself (`x_in1` and `unit_ss`
// from matvec_norm_*.wgsl: a fused norm's g, and its sum of squares once per unit).
fn load_x(xi: u32, n: u32) -> u32 {
    unit_ss(xi, n);
    return xi;
}

fn xval(i: u32) -> acc_t {
    return x_in1(X[i], i);
}

fn x_raw(i: u32) -> f32 {
    return X[i];
}
