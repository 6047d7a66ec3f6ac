// A gated FFN's gate and up projections of one token in one dispatch, with the
// activation fused: Y[r] = act(W0[r]·x) · (W1[r]·x). Each thread owns the same rows of
// both tensors, so a row's two sums meet in the thread that finishes it; one dispatch
// instead of two saves the fixed cost of one (~55 µs on lavapipe, where it is mostly
// waking the driver's worker threads). Each tensor keeps its own GGUF type: the host
// appends two copies of the block decoders and of matvec_rows.wgsl with their names
// suffixed _0 and _1 (reading W0 and W1), X, `load_x` and `xval` from
// matvec_x_storage.wgsl or matvec_x_uniform.wgsl, `row_total` from matvec_reduce_*.wgsl,
// the fused norm's hooks from matvec_norm_*.wgsl, and `gate_act` from act.wgsl.

struct Params {
    rows: u32,        // rows of each tensor (the FFN width)
    cols: u32,        // weights per row, the same for both
    row_bytes0: u32,
    row_bytes1: u32,
}

@group(0) @binding(0) var<storage, read> W0: array<u32>;       // [cols, rows] gate, any GGUF type
@group(0) @binding(5) var<storage, read> W1: array<u32>;       // [cols, rows] up, any GGUF type
// W0 and W1 again, 16 bytes at a time (see matvec.wgsl's Wv).
@group(0) @binding(12) var<storage, read> W0v: array<vec4<u32>>;  // as W0
@group(0) @binding(13) var<storage, read> W1v: array<vec4<u32>>;  // as W1
const WV: bool = true;  // decoders read W 16 bytes at a time (common.wgsl)
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;  // [rows] act(gate) · up
@group(0) @binding(3) var<uniform> P: Params;

override WG: u32 = 64u;
override TPR: u32 = 8u;
override R: u32 = 1u;
const RMAX: u32 = 16u;
// 0 for SiLU, 1 for GELU (tanh approximation), as in matvec_glu.wgsl.
override ACT: u32 = 0u;

@compute @workgroup_size(WG)
fn main(ids: Ids) {
    set_lane(ids);
    let slots = WG / TPR;
    // Workgroups beyond 65535 continue in the y dimension of the dispatch.
    let group = ids.wid.x + ids.wid.y * ids.nwg.x;
    let first = group * slots * R + ids.lid / TPR;
    let t = ids.lid % TPR;
    let gate = rows_dot_0(first, slots, t, P.rows, P.cols, P.row_bytes0);
    // Both walks load all of x: a fused norm counts its squares once.
    norm_reset();
    let up = rows_dot_1(first, slots, t, P.rows, P.cols, P.row_bytes1);
    // The first row's two sums and a fused norm's Σ x² added up together.
    let first_sums = row_total4(ids, t, vec4<f32>(gate[0], up[0], norm_ss(), 0.0));
    let scale = norm_scale(first_sums.z);
    norm_store(ids, group, t, scale);
    for (var r = 0u; r < R; r++) {
        let row = first + r * slots;
        var sums = first_sums.xy;
        if (r > 0u) {
            sums = row_total4(ids, t, vec4<f32>(gate[r], up[r], 0.0, 0.0)).xy;
        }
        let g = sums.x * scale;
        let u = sums.y * scale;
        if (t == 0u && row < P.rows) {
            Y[row] = gate_act(g, ACT) * u;
        }
    }
}
