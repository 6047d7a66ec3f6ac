// The plain f32 streaming kernel: y = x, one float per thread. Its GB/s is the adapter's
// practical ceiling, against which the profiler rates every other kernel.

@group(0) @binding(0) var<storage, read> X: array<f32>;        // [n]
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;  // [n]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i < arrayLength(&Y)) {
        Y[i] = X[i];
    }
}
