// matmul's column of X where subgroups have at least eight lanes: lane k loads token
// t0 + k of column i and seven broadcasts hand it to the others. Every thread of a
// workgroup shares t0 and walks the columns in step, so one load per lane replaces the
// eight each thread would make. On lavapipe, which turns every load inside a loop into
// a per-lane gather, this made the prompt matmul about four times faster.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sid: u32,
}

// This lane's token within the eight (lanes past eight repeat the first eight).
var<private> lane: u32;

fn set_lane(ids: Ids) {
    lane = ids.sid % 8u;
}

fn xval(i: u32) -> acc_t {
    let e = i * P.x_stride * 4u + t0 + lane;
    let v = X[e >> 2u][e & 3u];
    return mat2x4<f32>(
        vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
        vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)));
}
