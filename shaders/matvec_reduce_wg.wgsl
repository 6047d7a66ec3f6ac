// matvec's sum of a row's TPR partial sums, through workgroup memory: any adapter.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}

// The row's total, in the row's first lane (t == 0).
fn row_total(ids: Ids, t: u32, acc: f32) -> f32 {
    return row_total4(ids, t, vec4<f32>(acc, 0.0, 0.0, 0.0)).x;
}

var<workgroup> partial: array<vec4<f32>, 64>;

// row_total of four sums at once: a row's first sum and a fused norm's x², gate and up.
fn row_total4(ids: Ids, t: u32, acc: vec4<f32>) -> vec4<f32> {
    partial[ids.lid] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (t < s) {
            partial[ids.lid] += partial[ids.lid + s];
        }
        workgroupBarrier();
    }
    return partial[ids.lid];
}

// Without subgroups each thread loads X itself (matvec_x_uniform's load_x).
var<private> lane: u32;

fn set_lane(ids: Ids) {}

fn can_broadcast() -> bool {
    return false;
}

fn broadcast8(v: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(v, v, v, v, v, v, v, v);
}

fn sum8(v: f32) -> f32 {
    return v;
}
