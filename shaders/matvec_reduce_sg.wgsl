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

var<workgroup> partial: array<f32, 64>;

// The row's total, in the row's first lane (t == 0).
fn row_total(ids: Ids, t: u32, acc: f32) -> f32 {
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
    var total = 0.0;
    if (t == 0u) {
        let first = ids.lid / SG;
        for (var i = 0u; i < TPR / SG; i++) {
            total += partial[first + i];
        }
    }
    // The next row's sums may not overwrite these before they are read.
    workgroupBarrier();
    return total;
}
