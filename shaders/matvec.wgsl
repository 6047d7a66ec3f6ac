// y[out_offset + r] = Σ_c W[r, c] · x[c]. W stays in its GGUF encoding and is decoded
// block by block (block_dot from the quant/<type>.wgsl included before this file, summed
// over a thread's rows by matvec_rows.wgsl). X, `load_x` and `xval` come from
// matvec_x_storage.wgsl or matvec_x_uniform.wgsl, what becomes of a row's sum (`finish`)
// from matvec_store.wgsl, matvec_glu.wgsl or matvec_add.wgsl, how a row's lanes add up
// (`Ids`, `row_total`) from matvec_reduce_wg.wgsl or matvec_reduce_sg.wgsl, and whether
// an RMS norm of X is fused in from matvec_norm_none.wgsl or matvec_norm_rms.wgsl.
//
// A workgroup of WG threads has WG/TPR slots of TPR lanes; each slot owns R rows and its
// lanes split each row's units. On CPU-like adapters (lavapipe) one lane per row and
// several rows per lane is fastest (every x loaded once serves R rows); GPUs want many
// lanes per row, so that a row's loads coalesce, and one row per slot. The decoders
// accumulate in acc_f32.wgsl's acc_t.

struct Params {
    rows: u32,        // rows in this part of the tensor
    cols: u32,        // weights per row
    row_bytes: u32,   // bytes per row in W
    out_offset: u32,  // first output index of this part
}

@group(0) @binding(0) var<storage, read> W: array<u32>;        // [cols, rows] any GGUF type
// W again, 16 bytes at a time: the decoders of types whose quants lie on 16 bytes read them
// in one load (on lavapipe every load is a per-lane gather, so fewer, wider ones pay).
@group(0) @binding(12) var<storage, read> Wv: array<vec4<u32>>;  // [cols, rows] as W
const WV: bool = true;  // decoders read W 16 bytes at a time (common.wgsl)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;  // [out_offset + rows]
@group(0) @binding(3) var<uniform> P: Params;

// Threads per workgroup (at most 64), lanes per row (a power of two dividing WG), rows
// per slot (at most RMAX).
override WG: u32 = 64u;
override TPR: u32 = 8u;
override R: u32 = 1u;
const RMAX: u32 = 16u;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    set_lane(ids);
    let slots = WG / TPR;
    // Workgroups beyond 65535 continue in the y dimension of the dispatch.
    let group = ids.wid.x + ids.wid.y * ids.nwg.x;
    let first = group * slots * R + ids.lid / TPR;
    let t = ids.lid % TPR;
    let acc = rows_dot(first, slots, t, P.rows, P.cols, P.row_bytes);
    // The first row's sum and a fused RMS norm's Σ x² added up together; the norm's scale
    // is exactly 1 without one (matvec_norm_*.wgsl).
    let first_sums = row_total4(ids, t, vec4<f32>(acc[0], norm_ss(), 0.0, 0.0));
    let scale = norm_scale(first_sums.y);
    norm_store(ids, group, t, scale);
    for (var r = 0u; r < R; r++) {
        let row = first + r * slots;
        var total = first_sums.x;
        if (r > 0u) {
            total = row_total(ids, t, acc[r]);
        }
        if (t == 0u && row < P.rows) {
            finish(P.out_offset + row, total * scale);
        }
    }
}
