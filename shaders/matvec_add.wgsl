// matvec's result stored, and added to the residual stream Z: a block's output projection
// with the residual add fused.

@group(0) @binding(4) var<storage, read_write> Z: array<f32>;  // [rows] residual stream

fn finish(i: u32, v: f32) {
    Y[i] = v;
    Z[i] += v;
}
