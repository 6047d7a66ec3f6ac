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

// One row of workgroups per token of the step (the host dispatches as many rows as the
// step has tokens, not the chunk's size): no division by cols, which lavapipe does lane
// by lane, and no copying of the chunk's unused tokens.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let t = gid.y;
    if (c >= P.cols || t >= P.tokens) {
        return;
    }
    Y[c * P.tokens + t] = X[t * P.cols + c];
}
