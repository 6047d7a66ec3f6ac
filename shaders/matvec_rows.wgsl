// A matvec thread's partial sums of its R rows: rows first + r·slots (r < R) of a tensor
// of `rows` rows, over the units u = t, t + TPR, … of each row (a unit is one block, or
// 32 weights of the one-weight float "blocks" where X is cached; see unit_of). The x of a
// unit is loaded once (load_x) and used for all R rows, which is what makes a thread
// owning several rows cheaper per weight than one owning one. The host appends the block
// decoder before this file; matvec_qkv appends three suffixed copies of both.

fn rows_dot(first: u32, slots: u32, t: u32, rows: u32, cols: u32, row_bytes: u32) -> array<f32, RMAX> {
    var acc: array<f32, RMAX>;
    let unit = unit_of(BLOCK_WEIGHTS);
    let per = unit / BLOCK_WEIGHTS;   // blocks per unit: a constant once inlined
    let nb = cols / BLOCK_WEIGHTS;
    for (var u = t; u * per < nb; u += TPR) {
        let xo = load_x(u * unit, unit);
        // A unit of whole blocks runs a loop of constant length (unrolled, constant x
        // indices); only the last unit of a float row whose length is no multiple of 32 does not.
        // A unit of one block is always whole: `per == 1u` folds away the second copy of
        // the decoder, which lavapipe's JIT would otherwise compile too (for K-quants the
        // largest part of a cold first run, see README).
        let n = min(per, nb - u * per);
        for (var r = 0u; r < R; r++) {
            let row = first + r * slots;
            if (row < rows) {
                let b = row * row_bytes + u * per * BLOCK_BYTES;
                var s = 0.0;
                if (per == 1u || n == per) {
                    for (var k = 0u; k < per; k++) {
                        s += block_dot(b + k * BLOCK_BYTES, xo + k * BLOCK_WEIGHTS);
                    }
                } else {
                    for (var k = 0u; k < n; k++) {
                        s += block_dot(b + k * BLOCK_BYTES, xo + k * BLOCK_WEIGHTS);
                    }
                }
                acc[r] += s;
            }
        }
    }
    return acc;
}
