// matmul's column of X for adapters without subgroups of eight or more: each thread
// loads the eight tokens of column i itself, as two vec4s of the column-major chunk.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

fn set_lane(ids: Ids) {}

fn xval(i: u32) -> acc_t {
    let b = i * P.x_stride + t0 / 4u;
    return mat2x4<f32>(X[b], X[b + 1u]);
}
