// matmul.wgsl's main where each thread owns one row: a workgroup of 64 rows, eight tokens
// per workgroup in y.

@compute @workgroup_size(64)
fn main(ids: Ids) {
    set_lane(ids);
    let row = ids.wid.x * 64u + ids.lid;
    t0 = ids.wid.y * 8u;
    let live = row < P.rows;
    let nb = P.cols / BLOCK_WEIGHTS;
    let base = min(row, P.rows - 1u) * P.row_bytes;
    var acc = acc_zero();
    for (var blk = 0u; blk < nb; blk++) {
        acc += block_dot(base + blk * BLOCK_BYTES, blk * BLOCK_WEIGHTS);
    }
    for (var k = 0u; k < 8u; k++) {
        let t = t0 + k;
        if (live && t < S.n_tokens) {
            Y[t * P.out_stride + P.out_offset + row] = acc[k / 4u][k % 4u];
        }
    }
}
