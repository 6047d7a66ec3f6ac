// Chunk activations from token-major [tokens, cols] to column-major [cols, tokens], so the
// prompt matmul reads the eight tokens of one column as two vec4 loads.

struct Params {
    cols: u32,
    tokens: u32,   // rows of X and columns of Y (the chunk size)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;        // [tokens, cols]
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;  // [cols, tokens]
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= P.cols * P.tokens) {
        return;
    }
    let t = i / P.cols;
    let c = i % P.cols;
    Y[c * P.tokens + t] = X[i];
}
