// Residual add, in place: x += y.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> X: array<f32>;  // [n] residual stream
@group(0) @binding(1) var<storage, read> Yin: array<f32>;      // [n] branch output
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < P.n) {
        X[i] += Yin[i];
    }
}
