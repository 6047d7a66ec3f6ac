// y[out_offset + r] = Σ_c W[r, c] · x[c]. W stays in its GGUF encoding and is decoded
// block by block (block_dot from the quant/<type>.wgsl included before this file).
// X and `xval` come from matvec_x_storage.wgsl or matvec_x_uniform.wgsl, and what becomes of
// a row's sum (`finish`) from matvec_store.wgsl, matvec_glu.wgsl or matvec_add.wgsl, and how a
// row's lanes add up (`Ids`, `row_total`) from matvec_reduce_wg.wgsl or matvec_reduce_sg.wgsl.
// A workgroup of 64 threads handles 64/TPR rows with TPR threads per row: on CPU-like
// adapters (lavapipe) few threads per row and many rows per workgroup is fastest, and
// the K-quant rows of these models have only a handful of 256-weight blocks anyway.

struct Params {
    rows: u32,        // rows in this part of the tensor
    cols: u32,        // weights per row
    row_bytes: u32,   // bytes per row in W
    out_offset: u32,  // first output index of this part
}

@group(0) @binding(0) var<storage, read> W: array<u32>;        // [cols, rows] any GGUF type
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;  // [out_offset + rows]
@group(0) @binding(3) var<uniform> P: Params;

const WG: u32 = 64u;
// Threads per row (a power of two dividing 64).
override TPR: u32 = 8u;

// The block decoders accumulate in acc_t: one f32 here, four tokens at once in matmul.
alias acc_t = f32;

fn acc_zero() -> acc_t {
    return 0.0;
}

@compute @workgroup_size(64)
fn main(ids: Ids) {
    let rows_per_wg = WG / TPR;
    // Workgroups beyond 65535 continue in the y dimension of the dispatch.
    let group = ids.wid.x + ids.wid.y * ids.nwg.x;
    let row = group * rows_per_wg + ids.lid / TPR;
    let t = ids.lid % TPR;
    var acc = 0.0;
    if (row < P.rows) {
        let nb = P.cols / BLOCK_WEIGHTS;
        let base = row * P.row_bytes;
        for (var blk = t; blk < nb; blk += TPR) {
            acc += block_dot(base + blk * BLOCK_BYTES, blk * BLOCK_WEIGHTS);
        }
    }
    let total = row_total(ids, t, acc);
    if (t == 0u && row < P.rows) {
        finish(P.out_offset + row, total);
    }
}
