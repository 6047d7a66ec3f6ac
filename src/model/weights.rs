//! Which tensors the model uses, with their expected shapes. Generic over how a tensor
//! is held, so the CPU executor (f32 vectors) and the GPU executor (quantized buffers)
//! load the same definition. Shapes are ggml order: [row length, rows].

use super::config::{Arch, Config};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};

pub struct LayerWeights<W> {
    pub attn_norm: W,              // [n_embd] F32
    pub attn_q: W,                 // [n_embd, n_head*head_dim]
    pub attn_k: W,                 // [n_embd, n_head_kv*head_dim]
    pub attn_v: W,                 // [n_embd, n_head_kv*head_dim_v]
    pub attn_q_bias: Option<W>,    // [n_head*head_dim] (Qwen 2)
    pub attn_k_bias: Option<W>,    // [n_head_kv*head_dim]
    pub attn_v_bias: Option<W>,    // [n_head_kv*head_dim_v]
    pub attn_output: W,            // [n_head*head_dim_v, n_embd]
    pub attn_q_norm: Option<W>,    // [head_dim] (Qwen 3, Gemma 3)
    pub attn_k_norm: Option<W>,    // [head_dim]
    pub post_attn_norm: Option<W>, // [n_embd] (Gemma 2/3)
    pub ffn_norm: W,               // [n_embd]
    pub ffn_gate: W,               // [n_embd, n_ff]
    pub ffn_up: W,                 // [n_embd, n_ff]
    pub ffn_down: W,               // [n_ff, n_embd]
    pub post_ffn_norm: Option<W>,  // [n_embd] (Gemma 2/3)
}

pub struct ModelWeights<W> {
    pub token_embd: W, // [n_embd, n_vocab]
    pub layers: Vec<LayerWeights<W>>,
    pub output_norm: W, // [n_embd]
    /// [n_embd, n_vocab]; None when the output projection is tied to `token_embd`.
    pub output: Option<W>,
}

/// Look up a tensor and check its shape before it is handed to the executor.
fn expect<'a>(g: &'a GgufFile, name: &str, shape: &[usize]) -> Result<&'a TensorInfo> {
    let t = g.tensor(name).ok_or_else(|| Error::tensor(name, "missing from the file"))?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    if dims != shape {
        return Err(Error::tensor(name, format!("shape {dims:?}, expected {shape:?}")));
    }
    Ok(t)
}

/// Rows `start..start + rows` of a 2-D tensor as a tensor of its own: the rows of a
/// fused tensor (Phi-3's attn_qkv, gate+up) are contiguous bytes, so each part is
/// uploaded or dequantized on its own without copying the whole.
pub fn row_view(t: &TensorInfo, start: usize, rows: usize, part: &str) -> TensorInfo {
    let row_bytes = t.n_bytes / t.n_rows() as u64;
    TensorInfo {
        name: format!("{}[{part}]", t.name),
        dims: vec![t.dims[0], rows as u64],
        ty: t.ty,
        offset: t.offset + start as u64 * row_bytes,
        n_elements: t.dims[0] * rows as u64,
        n_bytes: row_bytes * rows as u64,
    }
}

/// Hands tensors (checked) to the executor's loader.
struct Loader<'a, F> {
    g: &'a GgufFile,
    load: F,
}

impl<W, F: FnMut(&TensorInfo) -> Result<W>> Loader<'_, F> {
    fn req(&mut self, name: &str, shape: &[usize]) -> Result<W> {
        let t = expect(self.g, name, shape)?;
        (self.load)(t)
    }

    /// An optional tensor: loaded if present, required if `wanted`.
    fn opt(&mut self, name: &str, shape: &[usize], wanted: bool) -> Result<Option<W>> {
        if wanted || self.g.tensor(name).is_some() {
            Ok(Some(self.req(name, shape)?))
        } else {
            Ok(None)
        }
    }

    /// Consecutive row ranges of one fused tensor, each loaded as a tensor of its own.
    fn split<const N: usize>(&mut self, name: &str, cols: usize, parts: [(usize, &str); N]) -> Result<[W; N]> {
        let total: usize = parts.iter().map(|p| p.0).sum();
        let t = expect(self.g, name, &[cols, total])?;
        let mut start = 0;
        let mut out = Vec::with_capacity(N);
        for (rows, part) in parts {
            out.push((self.load)(&row_view(t, start, rows, part))?);
            start += rows;
        }
        out.try_into().map_err(|_| Error::tensor(name, "split"))
    }
}

impl<W> ModelWeights<W> {
    /// Resolve every tensor of the model and hand each to `load`.
    pub fn load(cfg: &Config, g: &GgufFile, load: impl FnMut(&TensorInfo) -> Result<W>) -> Result<Self> {
        let e = cfg.n_embd;
        let mut l = Loader { g, load };
        let token_embd = l.req("token_embd.weight", &[e, cfg.n_vocab])?;
        let output_norm = l.req("output_norm.weight", &[e])?;
        let output = l.opt("output.weight", &[e, cfg.n_vocab], false)?;
        let (qd, kd, vd) = (cfg.q_dim(), cfg.k_dim(), cfg.v_dim());
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for il in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            let b = |s: &str| format!("blk.{il}.{s}.bias");
            let [attn_q, attn_k, attn_v] = if g.tensor(&n("attn_qkv")).is_some() {
                // Phi-3: one [n_embd, q+k+v] tensor, q rows then k rows then v rows.
                l.split(&n("attn_qkv"), e, [(qd, "q"), (kd, "k"), (vd, "v")])?
            } else {
                [l.req(&n("attn_q"), &[e, qd])?, l.req(&n("attn_k"), &[e, kd])?, l.req(&n("attn_v"), &[e, vd])?]
            };
            let [ffn_gate, ffn_up] = if cfg.arch == Arch::Phi3 && g.tensor(&n("ffn_gate")).is_none() {
                // Phi-3: ffn_up is [n_embd, 2*n_ff], gate rows first (llama.cpp: swiglu of the first half).
                l.split(&n("ffn_up"), e, [(cfg.n_ff, "gate"), (cfg.n_ff, "up")])?
            } else {
                [l.req(&n("ffn_gate"), &[e, cfg.n_ff])?, l.req(&n("ffn_up"), &[e, cfg.n_ff])?]
            };
            layers.push(LayerWeights {
                attn_norm: l.req(&n("attn_norm"), &[e])?,
                attn_q,
                attn_k,
                attn_v,
                attn_q_bias: l.opt(&b("attn_q"), &[qd], false)?,
                attn_k_bias: l.opt(&b("attn_k"), &[kd], false)?,
                attn_v_bias: l.opt(&b("attn_v"), &[vd], false)?,
                attn_output: l.req(&n("attn_output"), &[cfg.n_head * cfg.head_dim_v, e])?,
                attn_q_norm: l.opt(&n("attn_q_norm"), &[cfg.head_dim], cfg.qk_norm)?,
                attn_k_norm: l.opt(&n("attn_k_norm"), &[cfg.head_dim], cfg.qk_norm)?,
                post_attn_norm: l.opt(&n("post_attention_norm"), &[e], cfg.post_norms)?,
                ffn_norm: l.req(&n("ffn_norm"), &[e])?,
                ffn_gate,
                ffn_up,
                ffn_down: l.req(&n("ffn_down"), &[cfg.n_ff, e])?,
                post_ffn_norm: l.opt(&n("post_ffw_norm"), &[e], cfg.post_norms)?,
            });
        }
        Ok(ModelWeights { token_embd, layers, output_norm, output })
    }

    /// The LM head: `output`, or the token embedding when tied.
    pub fn lm_head(&self) -> &W {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}

/// Per-dimension RoPE frequency divisors, if the model has them: Llama 3.1's
/// `rope_freqs`, or Phi-3's LongRoPE factors (short ones while the context stays within
/// the original training context, long ones beyond it, as llama.cpp chooses).
pub fn rope_factors(g: &GgufFile, cfg: &Config, n_ctx: usize) -> Result<Option<Vec<f32>>> {
    let name = if g.tensor("rope_freqs.weight").is_some() {
        "rope_freqs.weight"
    } else if g.tensor("rope_factors_long.weight").is_some() && n_ctx > cfg.n_ctx_orig {
        "rope_factors_long.weight"
    } else if g.tensor("rope_factors_short.weight").is_some() {
        "rope_factors_short.weight"
    } else {
        return Ok(None);
    };
    Ok(Some(g.dequantize(expect(g, name, &[cfg.n_rot / 2])?)?))
}
