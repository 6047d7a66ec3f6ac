//! Which tensors the model uses, with their expected shapes. Generic over how a tensor
//! is held, so the CPU executor (f32 vectors) and the GPU executor (quantized buffers)
//! load the same definition. Shapes are ggml order: [row length, rows].

use super::config::Config;
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo};

pub struct LayerWeights<W> {
    pub attn_norm: W,           // [n_embd] F32
    pub attn_q: W,              // [n_embd, n_head*head_dim]
    pub attn_k: W,              // [n_embd, n_head_kv*head_dim]
    pub attn_v: W,              // [n_embd, n_head_kv*head_dim_v]
    pub attn_output: W,         // [n_head*head_dim_v, n_embd]
    pub attn_q_norm: Option<W>, // [head_dim] (Gemma 3)
    pub attn_k_norm: Option<W>, // [head_dim] (Gemma 3)
    pub post_attn_norm: Option<W>, // [n_embd] (Gemma 3)
    pub ffn_norm: W,            // [n_embd]
    pub ffn_gate: W,            // [n_embd, n_ff]
    pub ffn_up: W,              // [n_embd, n_ff]
    pub ffn_down: W,            // [n_ff, n_embd]
    pub post_ffn_norm: Option<W>, // [n_embd] (Gemma 3)
}

pub struct ModelWeights<W> {
    pub token_embd: W,     // [n_embd, n_vocab]
    pub layers: Vec<LayerWeights<W>>,
    pub output_norm: W,    // [n_embd]
    /// [n_embd, n_vocab]; None when the output projection is tied to `token_embd`.
    pub output: Option<W>,
    /// [n_rot/2] per-dimension RoPE frequency divisors (Llama 3.1), if present.
    pub rope_freqs: Option<W>,
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

impl<W> ModelWeights<W> {
    /// Resolve every tensor of the model and hand each to `load`.
    pub fn load(cfg: &Config, g: &GgufFile, mut load: impl FnMut(&TensorInfo) -> Result<W>) -> Result<Self> {
        let e = cfg.n_embd;
        let mut req = |name: &str, shape: &[usize]| -> Result<W> { load(expect(g, name, shape)?) };
        let token_embd = req("token_embd.weight", &[e, cfg.n_vocab])?;
        let output_norm = req("output_norm.weight", &[e])?;
        let output = match g.tensor("output.weight") {
            Some(_) => Some(req("output.weight", &[e, cfg.n_vocab])?),
            None => None,
        };
        let rope_freqs = match g.tensor("rope_freqs.weight") {
            Some(_) => Some(req("rope_freqs.weight", &[cfg.n_rot / 2])?),
            None => None,
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for il in 0..cfg.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            let gemma = cfg.qk_norm;
            layers.push(LayerWeights {
                attn_norm: req(&n("attn_norm"), &[e])?,
                attn_q: req(&n("attn_q"), &[e, cfg.q_dim()])?,
                attn_k: req(&n("attn_k"), &[e, cfg.k_dim()])?,
                attn_v: req(&n("attn_v"), &[e, cfg.v_dim()])?,
                attn_output: req(&n("attn_output"), &[cfg.n_head * cfg.head_dim_v, e])?,
                attn_q_norm: if gemma { Some(req(&n("attn_q_norm"), &[cfg.head_dim])?) } else { None },
                attn_k_norm: if gemma { Some(req(&n("attn_k_norm"), &[cfg.head_dim])?) } else { None },
                post_attn_norm: if cfg.post_norms { Some(req(&n("post_attention_norm"), &[e])?) } else { None },
                ffn_norm: req(&n("ffn_norm"), &[e])?,
                ffn_gate: req(&n("ffn_gate"), &[e, cfg.n_ff])?,
                ffn_up: req(&n("ffn_up"), &[e, cfg.n_ff])?,
                ffn_down: req(&n("ffn_down"), &[cfg.n_ff, e])?,
                post_ffn_norm: if cfg.post_norms { Some(req(&n("post_ffw_norm"), &[e])?) } else { None },
            });
        }
        Ok(ModelWeights { token_embd, layers, output_norm, output, rope_freqs })
    }

    /// The LM head: `output`, or the token embedding when tied.
    pub fn lm_head(&self) -> &W {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }
}
