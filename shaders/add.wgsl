// Residual add, in place: x += y. With `period` > 0, y repeats every `period` values
// (a bias added to every token of a chunk).

struct Params {
    n: u32,
    period: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> X: array<f32>;  // [n] residual stream
@group(0) @binding(1) var<storage, read> Yin: array<f32>;      // [n] branch output, or [period] bias
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // Grids past the workgroup limit continue in y.
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i < P.n) {
        var j = i;
        if (P.period > 0u) {
            j = i % P.period;
        }
        X[i] += Yin[j];
    }
}
