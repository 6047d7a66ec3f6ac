// matvec's sum of a row's TPR partial sums with subgroup shuffles, where the adapter has
// subgroups: a row's lanes are an aligned run of the subgroup, so a butterfly of
// log2(TPR) shuffles adds them with no barrier (a GPU's 32-lane subgroup holds a whole
// row). Wider rows than the subgroup add the subgroups' sums in workgroup memory. SG is
// the adapter's subgroup size, set by the host (only adapters with one fixed size).

override SG: u32 = 32u;

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sid: u32,
}

// The row's total, in the row's first lane (t == 0).
fn row_total(ids: Ids, t: u32, acc: f32) -> f32 {
    return row_total4(ids, t, vec4<f32>(acc, 0.0, 0.0, 0.0)).x;
}

var<workgroup> partial: array<vec4<f32>, 64>;

// row_total of four sums at once (one barrier pair where a row spans subgroups, however
// many of the four are used): a row's first sum and a fused norm's x², gate and up.
fn row_total4(ids: Ids, t: u32, acc: vec4<f32>) -> vec4<f32> {
    var v = acc;
    for (var m = min(TPR, SG) / 2u; m > 0u; m >>= 1u) {
        v += subgroupShuffleXor(v, m);
    }
    if (TPR <= SG) {
        return v;
    }
    if (ids.sid == 0u) {
        partial[ids.lid / SG] = v;
    }
    workgroupBarrier();
    var total = vec4<f32>(0.0);
    if (t == 0u) {
        let first = ids.lid / SG;
        for (var i = 0u; i < TPR / SG; i++) {
            total += partial[first + i];
        }
    }
    workgroupBarrier();
    return total;
}

// This lane's place among the first eight of its subgroup (matvec_x_uniform's load_x).
var<private> lane: u32;

fn set_lane(ids: Ids) {
    lane = ids.sid % 8u;
}

// Whether every lane of a subgroup walks the same units (one lane per row) and the first
// eight lanes are there to share X (a workgroup of at least eight).
fn can_broadcast() -> bool {
    return TPR == 1u && SG >= 8u && WG >= 8u;
}

// Lanes 0..7's values of `v`, in every lane.
fn broadcast8(v: vec4<f32>) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u),
        subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
}

// The sum of `v` over this lane's group of eight (lanes sharing X by broadcast8).
fn sum8(v: f32) -> f32 {
    var s = v;
    for (var m = 4u; m > 0u; m >>= 1u) {
        s += subgroupShuffleXor(s, m);
    }
    return s;
}
