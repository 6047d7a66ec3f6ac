// q, k and v = W·x for one token in one dispatch: the three projections of a block's
// normed input, rows [0, rows0) from W0 into Y0, then W1 into Y1, then W2 into Y2. Each
// tensor keeps its own GGUF type: the host appends three copies of the block decoders
// with their names suffixed _0, _1, _2 (reading W0, W1, W2), X and `xval` from
// matvec_x_storage.wgsl or matvec_x_uniform.wgsl, `row_total` from matvec_reduce_*.wgsl.

struct Params {
    rows0: u32,
    rows1: u32,
    rows2: u32,
    cols: u32,        // weights per row, the same for all three
    row_bytes0: u32,
    row_bytes1: u32,
    row_bytes2: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> W0: array<u32>;        // [cols, rows0] q
@group(0) @binding(5) var<storage, read> W1: array<u32>;        // [cols, rows1] k
@group(0) @binding(6) var<storage, read> W2: array<u32>;        // [cols, rows2] v
@group(0) @binding(2) var<storage, read_write> Y0: array<f32>;  // [rows0]
@group(0) @binding(7) var<storage, read_write> Y1: array<f32>;  // [rows1]
@group(0) @binding(8) var<storage, read_write> Y2: array<f32>;  // [rows2]
@group(0) @binding(3) var<uniform> P: Params;

const WG: u32 = 64u;
override TPR: u32 = 8u;

alias acc_t = f32;

fn acc_zero() -> acc_t {
    return 0.0;
}

// This thread's share (blocks t, t + TPR, …) of row `row` of the three tensors together.
fn row_part(row: u32, t: u32) -> f32 {
    var acc = 0.0;
    if (row < P.rows0) {
        for (var blk = t; blk < P.cols / BLOCK_WEIGHTS_0; blk += TPR) {
            acc += block_dot_0(row * P.row_bytes0 + blk * BLOCK_BYTES_0, blk * BLOCK_WEIGHTS_0);
        }
    } else if (row < P.rows0 + P.rows1) {
        let r = row - P.rows0;
        for (var blk = t; blk < P.cols / BLOCK_WEIGHTS_1; blk += TPR) {
            acc += block_dot_1(r * P.row_bytes1 + blk * BLOCK_BYTES_1, blk * BLOCK_WEIGHTS_1);
        }
    } else if (row < P.rows0 + P.rows1 + P.rows2) {
        let r = row - P.rows0 - P.rows1;
        for (var blk = t; blk < P.cols / BLOCK_WEIGHTS_2; blk += TPR) {
            acc += block_dot_2(r * P.row_bytes2 + blk * BLOCK_BYTES_2, blk * BLOCK_WEIGHTS_2);
        }
    }
    return acc;
}

fn store(row: u32, v: f32) {
    if (row < P.rows0) {
        Y0[row] = v;
    } else if (row < P.rows0 + P.rows1) {
        Y1[row - P.rows0] = v;
    } else {
        Y2[row - P.rows0 - P.rows1] = v;
    }
}

@compute @workgroup_size(64)
fn main(ids: Ids) {
    let rows = P.rows0 + P.rows1 + P.rows2;
    let group = ids.wid.x + ids.wid.y * ids.nwg.x;
    let row = group * (WG / TPR) + ids.lid / TPR;
    let t = ids.lid % TPR;
    let total = row_total(ids, t, row_part(row, t));
    if (t == 0u && row < rows) {
        store(row, total);
    }
}
