// matvec's X as a storage buffer: any width, and on GPUs whose lanes split a row the
// lanes read neighbouring words of it.

@group(0) @binding(1) var<storage, read> X: array<f32>;  // [cols]

fn xval(i: u32) -> acc_t {
    return X[i];
}
