// Prompt processing: Y[t, out_offset + r] = Σ_c W[r, c] · X[t, c] for a chunk of tokens.
// A thread owns eight tokens of one row (matmul_main.wgsl) or of several (matmul_rows.wgsl):
// block_dot (from quant/<type>.wgsl) runs with acc_t = mat2x4<f32> (two columns of four
// tokens), so every weight block is decoded once for eight tokens. This file holds what
// both share; how a column of X reaches the thread (`xval`) comes from matmul_x_subgroup.wgsl
// or matmul_x_vec4.wgsl (with matmul_main.wgsl), or from matmul_rows.wgsl itself.
//
// No thread returns early: on lavapipe an early return puts every later load under an
// execution mask, and subgroup broadcasts need every lane of the subgroup.

struct Params {
    rows: u32,        // rows in this part of the tensor
    cols: u32,        // weights per row
    row_bytes: u32,
    out_offset: u32,  // first output column of this part
    out_stride: u32,  // floats per token in Y (all rows of the tensor)
    x_stride: u32,    // vec4s per column of X (chunk size / 4), or per token (matmul_rows)
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    token: u32,
    pos: u32,
    n_pos: u32,
    n_tokens: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;        // [cols, rows] any GGUF type
// W again, 16 bytes at a time (matvec.wgsl's Wv): here only Q4_K's block header is read
// so; the quants are read as words (WV below).
@group(0) @binding(12) var<storage, read> Wv: array<vec4<u32>>;  // [cols, rows] as W
const WV: bool = false;  // the decoders read words here (see common.wgsl)
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;  // [cols, chunk tokens] column-major
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;  // [tokens, out_stride]
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<uniform> S: Step;

alias acc_t = mat2x4<f32>;

fn acc_zero() -> acc_t {
    return mat2x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0));
}

// s + w · x for eight tokens, a multiply-add a four-token column (see acc_f32.wgsl).
fn acc_fma(w: f32, x: acc_t, s: acc_t) -> acc_t {
    let v = vec4<f32>(w);
    return mat2x4<f32>(fma(v, x[0], s[0]), fma(v, x[1], s[1]));
}

// First of this thread's eight tokens.
var<private> t0: u32;
