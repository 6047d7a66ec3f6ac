// q, k and v = W·x for one token in one dispatch: the three projections of a block's
// normed input, W0 into Y0, W1 into Y1, W2 into Y2. Each tensor keeps its own GGUF type:
// the host appends three copies of the block decoders and of matvec_rows.wgsl with their
// names suffixed _0, _1, _2 (reading W0, W1, W2), X, `load_x` and `xval` from
// matvec_x_storage.wgsl or matvec_x_uniform.wgsl, `row_total` from matvec_reduce_*.wgsl,
// the fused norm's hooks from matvec_norm_*.wgsl.
// The first workgroups do q's rows, the next k's, the last v's, so that a workgroup's
// rows are all of one tensor (one block size, one loop) as in matvec.wgsl.

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
// W0, W1, W2 again, 16 bytes at a time (see matvec.wgsl's Wv).
@group(0) @binding(12) var<storage, read> W0v: array<vec4<u32>>;  // as W0
@group(0) @binding(13) var<storage, read> W1v: array<vec4<u32>>;  // as W1
@group(0) @binding(14) var<storage, read> W2v: array<vec4<u32>>;  // as W2
const WV: bool = true;  // decoders read W 16 bytes at a time (common.wgsl)
@group(0) @binding(2) var<storage, read_write> Y0: array<f32>;  // [rows0]
@group(0) @binding(7) var<storage, read_write> Y1: array<f32>;  // [rows1]
@group(0) @binding(8) var<storage, read_write> Y2: array<f32>;  // [rows2]
@group(0) @binding(3) var<uniform> P: Params;

override WG: u32 = 64u;
override TPR: u32 = 8u;
override R: u32 = 1u;
const RMAX: u32 = 16u;

fn store(tensor: u32, row: u32, v: f32) {
    if (tensor == 0u) {
        Y0[row] = v;
    } else if (tensor == 1u) {
        Y1[row] = v;
    } else {
        Y2[row] = v;
    }
}

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    set_lane(ids);
    let slots = WG / TPR;
    let per_group = slots * R;
    let g0 = (P.rows0 + per_group - 1u) / per_group;
    let g1 = (P.rows1 + per_group - 1u) / per_group;
    var group = ids.wid.x + ids.wid.y * ids.nwg.x;
    var tensor = 0u;
    var rows = P.rows0;
    if (group >= g0 + g1) {
        tensor = 2u;
        rows = P.rows2;
        group -= g0 + g1;
    } else if (group >= g0) {
        tensor = 1u;
        rows = P.rows1;
        group -= g0;
    }
    let first = group * per_group + ids.lid / TPR;
    let t = ids.lid % TPR;
    var acc: array<f32, RMAX>;
    if (tensor == 0u) {
        acc = rows_dot_0(first, slots, t, rows, P.cols, P.row_bytes0);
    } else if (tensor == 1u) {
        acc = rows_dot_1(first, slots, t, rows, P.cols, P.row_bytes1);
    } else {
        acc = rows_dot_2(first, slots, t, rows, P.cols, P.row_bytes2);
    }
    let first_sums = row_total4(ids, t, vec4<f32>(acc[0], norm_ss(), 0.0, 0.0));
    let scale = norm_scale(first_sums.y);
    norm_store(ids, ids.wid.x + ids.wid.y * ids.nwg.x, t, scale);
    for (var r = 0u; r < R; r++) {
        let row = first + r * slots;
        var total = first_sums.x;
        if (r > 0u) {
            total = row_total(ids, t, acc[r]);
        }
        if (t == 0u && row < rows) {
            store(tensor, row, total * scale);
        }
    }
}
