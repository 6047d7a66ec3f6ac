//! Uniform blocks of the WGSL kernels, byte-for-byte: each struct mirrors the `Params`
//! (or `Step`) struct of its shader, with a compile-time size check.

use bytemuck::{Pod, Zeroable};

/// Tokens one step can hold: a prompt chunk (`plan::DEFAULT_UBATCH`) or one token each of
/// that many sequences.
pub const STEP_TOKENS: usize = 64;

/// Per-token values every kernel that needs them reads from one shared uniform buffer.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct Step {
    pub token: u32,
    pub pos: u32,
    /// Positions the step's first token sees, itself included (pos + 1).
    pub n_pos: u32,
    /// Tokens in this step: 1 when decoding, the chunk size in prompt processing.
    pub n_tokens: u32,
    /// Per token k: [its position, the first cache row of its sequence, 0, 0]. RoPE and
    /// attention read these, so the tokens of one step may belong to different sequences,
    /// each with its own region of the KV cache (continuous batching).
    pub rows: [[u32; 4]; STEP_TOKENS],
}
const _: () = assert!(std::mem::size_of::<Step>() == 16 + 16 * STEP_TOKENS);

impl Default for Step {
    fn default() -> Self {
        Step::zeroed()
    }
}

impl Step {
    /// `n` consecutive tokens of one sequence from `pos` (the first is `token`), whose
    /// cache rows start at `base`.
    pub fn run(token: u32, pos: usize, n: usize, base: usize) -> Step {
        let mut s = Step { token, pos: pos as u32, n_pos: pos as u32 + 1, n_tokens: n as u32, ..Step::default() };
        for (k, row) in s.rows.iter_mut().take(n).enumerate() {
            *row = [(pos + k) as u32, base as u32, 0, 0];
        }
        s
    }

    /// One token of each of several sequences: (position, first cache row) per token.
    pub fn batch(rows: &[(usize, usize)]) -> Step {
        let first = rows.first().copied().unwrap_or_default();
        let mut s = Step::run(0, first.0, 0, first.1);
        s.n_tokens = rows.len() as u32;
        for (row, &(pos, base)) in s.rows.iter_mut().zip(rows) {
            *row = [pos as u32, base as u32, 0, 0];
        }
        s
    }
}

/// shaders/matvec.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct MatvecParams {
    pub rows: u32,
    pub cols: u32,
    pub row_bytes: u32,
    pub out_offset: u32,
}
const _: () = assert!(std::mem::size_of::<MatvecParams>() == 16);

/// shaders/matvec_qkv.wgsl
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatvecQkvParams {
    pub rows: [u32; 3],
    pub cols: u32,
    pub row_bytes: [u32; 3],
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<MatvecQkvParams>() == 32);

/// shaders/matvec_norm_rms.wgsl
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FusedNormParams {
    pub eps: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<FusedNormParams>() == 16);

/// shaders/matvec_gate_up.wgsl
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatvecGateUpParams {
    /// Rows of each tensor (the FFN width).
    pub rows: u32,
    pub cols: u32,
    /// Bytes per row of the gate and of the up tensor.
    pub row_bytes: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<MatvecGateUpParams>() == 16);

/// shaders/matmul.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct MatmulParams {
    pub rows: u32,
    pub cols: u32,
    pub row_bytes: u32,
    pub out_offset: u32,
    pub out_stride: u32,
    /// vec4s per column of the column-major chunk (chunk size / 4), or per token of the
    /// token-major one that matmul_rows.wgsl reads (cols / 4).
    pub x_stride: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<MatmulParams>() == 32);

/// shaders/transpose.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct TransposeParams {
    pub cols: u32,
    pub tokens: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<TransposeParams>() == 16);

/// shaders/embed.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct EmbedParams {
    pub row_start: u32,
    pub rows: u32,
    pub cols: u32,
    pub row_bytes: u32,
    pub scale: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<EmbedParams>() == 32);

/// shaders/rms_norm.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct NormParams {
    pub rows: u32,
    pub cols: u32,
    pub eps: f32,
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<NormParams>() == 16);

/// shaders/rope.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct RopeParams {
    pub n_heads: u32,
    pub head_dim: u32,
    pub n_rot: u32,
    pub neox: u32,
    /// Heads of the second buffer (K), rotated in the same dispatch; 0: none.
    pub n_heads_k: u32,
    /// Values per token appended to the V cache (0: none).
    pub v_dim: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<RopeParams>() == 32);

/// shaders/attention.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct AttnParams {
    pub group: u32,
    pub head_dim: u32,
    pub head_dim_v: u32,
    pub k_stride: u32,
    pub v_stride: u32,
    /// Workgroups along the visible positions (1: the output is written without a reduce pass).
    pub splits: u32,
    pub window: u32,
    pub scale: f32,
    /// Scores become softcap·tanh(s/softcap) when > 0 (Gemma 2).
    pub softcap: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<AttnParams>() == 48);

/// attention.wgsl's `RopeFuse`: the RoPE and norms `main_rope` does before attending.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct RopeFuseParams {
    pub n_rot: u32,
    /// 1: pairs (i, i + n_rot/2); 0: pairs (2i, 2i + 1).
    pub neox: u32,
    /// 1: every query and key head is RMS-normalised first.
    pub qk_norm: u32,
    pub eps: f32,
}
const _: () = assert!(std::mem::size_of::<RopeFuseParams>() == 16);

/// shaders/topk.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, Default)]
pub struct TopkParams {
    pub n: u32,
    /// Candidates kept (a power of two).
    pub kp: u32,
    pub n_chunks: u32,
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<TopkParams>() == 16);

/// shaders/softcap.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct SoftcapParams {
    pub n: u32,
    pub cap: f32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<SoftcapParams>() == 16);

/// shaders/glu.wgsl and shaders/add.wgsl
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct EltParams {
    pub n: u32,
    /// glu: 0 SiLU, 1 GELU-tanh. add: the period of y (0: none, n: a bias per token).
    pub act: u32,
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<EltParams>() == 16);
