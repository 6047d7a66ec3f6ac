//! Hyperparameters and the layer recipe, read from GGUF metadata alone.

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2
    Llama,
    /// Qwen 2 / 2.5: q/k/v biases
    Qwen2,
    /// Qwen 3: per-head q/k RMS norms
    Qwen3,
    /// Gemma 1: GELU, scaled embeddings, tied output
    Gemma,
    /// Gemma 2: soft-capping, alternating sliding-window layers, post-norms
    Gemma2,
    /// Gemma 3: q/k norms, post-norms, local/global layers with their own RoPE bases
    Gemma3,
    /// Phi-3: fused QKV and gate/up tensors
    Phi3,
}

impl Arch {
    pub const SUPPORTED: &'static [&'static str] = &["llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"];

    pub fn from_name(name: &str) -> Result<Arch> {
        match name {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "qwen3" => Ok(Arch::Qwen3),
            "gemma" => Ok(Arch::Gemma),
            "gemma2" => Ok(Arch::Gemma2),
            "gemma3" => Ok(Arch::Gemma3),
            "phi3" => Ok(Arch::Phi3),
            _ => Err(Error::UnsupportedArch { arch: name.to_string(), supported: Arch::SUPPORTED.join(", ") }),
        }
    }

    pub fn family(self) -> &'static str {
        match self {
            Arch::Llama => "Llama (Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2)",
            Arch::Qwen2 => "Qwen 2",
            Arch::Qwen3 => "Qwen 3",
            Arch::Gemma => "Gemma",
            Arch::Gemma2 => "Gemma 2",
            Arch::Gemma3 => "Gemma 3",
            Arch::Phi3 => "Phi-3",
        }
    }
}

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (x[2i], x[2i+1]): ggml's "normal" mode, used by `llama`.
    Norm,
    /// Halves (x[i], x[i + n_rot/2]): ggml's NEOX mode, used by Gemma, Qwen, Phi-3.
    Neox,
}

/// The gate activation of the gated FFN: `down(act(gate·x) * up·x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// tanh-approximated GELU
    GeluTanh,
}

/// What one layer does beyond the common pre-norm attention + gated FFN block.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    /// Keys at distance >= window from the query are masked (sliding-window layer).
    pub window: Option<usize>,
    pub rope_base: f32,
    /// Position multiplier (1 / linear scaling factor).
    pub rope_scale: f32,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Width of one query/key head.
    pub head_dim: usize,
    /// Width of one value head.
    pub head_dim_v: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    /// Leading dimensions of each head that RoPE rotates.
    pub n_rot: usize,
    pub rope_style: RopeStyle,
    /// Multiplies q·k before the softmax.
    pub attn_scale: f32,
    /// Multiplies the token embedding (Gemma: sqrt(n_embd)).
    pub embd_scale: f32,
    pub act: Activation,
    /// Per-head RMS norms of q and k before RoPE (Gemma 3).
    pub qk_norm: bool,
    /// RMS norms on the attention and FFN outputs before the residual add (Gemma 2/3).
    pub post_norms: bool,
    /// Attention scores become cap·tanh(s/cap) before the softmax (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// Logits become cap·tanh(l/cap) (Gemma 2).
    pub final_softcap: Option<f32>,
    /// Multiplies RoPE's cos and sin (LongRoPE / YaRN attention factor; 1 otherwise).
    pub rope_attn_factor: f32,
    /// Context the model was trained with before RoPE scaling (chooses Phi-3's LongRoPE factors).
    pub n_ctx_orig: usize,
    pub layers: Vec<LayerPlan>,
}

fn key(arch: &str, k: &str) -> String {
    format!("{arch}.{k}")
}

impl Config {
    pub fn from_gguf(g: &GgufFile) -> Result<Config> {
        let name = g.get_str("general.architecture")?.to_string();
        let arch = Arch::from_name(&name)?;
        let u = |k: &str| -> Result<usize> { Ok(g.get_u64(&key(&name, k))? as usize) };
        let n_embd = u("embedding_length")?;
        let n_layer = u("block_count")?;
        let n_head = u("attention.head_count")?;
        let n_head_kv = g.get_u64_or(&key(&name, "attention.head_count_kv"), n_head as u64)? as usize;
        let n_ff = u("feed_forward_length")?;
        let n_ctx_train = g.get_u64_or(&key(&name, "context_length"), 2048)? as usize;
        if n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_ff == 0 {
            return Err(Error::metadata(
                format!("{name}.*"),
                "embedding_length, block_count, head counts and feed_forward_length must be positive",
            ));
        }
        if n_head % n_head_kv != 0 {
            return Err(Error::metadata(
                key(&name, "attention.head_count_kv"),
                format!("{n_head_kv} does not divide head_count {n_head}"),
            ));
        }
        if n_layer > 4096 || n_head > 4096 || n_embd > 1 << 20 {
            return Err(Error::metadata(format!("{name}.*"), "implausibly large hyperparameters"));
        }
        let head_dim = match g.get(&key(&name, "attention.key_length")) {
            Some(_) => u("attention.key_length")?,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(Error::metadata(
                    key(&name, "embedding_length"),
                    format!("{n_embd} is not divisible by attention.head_count {n_head}, and the file gives no attention.key_length"),
                ))
            }
        };
        let head_dim_v = g.get_u64_or(&key(&name, "attention.value_length"), head_dim as u64)? as usize;
        if head_dim == 0 || head_dim % 2 != 0 || head_dim_v == 0 {
            return Err(Error::metadata(
                key(&name, "attention.key_length"),
                format!("head width {head_dim} must be positive and even"),
            ));
        }
        let n_rot = g.get_u64_or(&key(&name, "rope.dimension_count"), head_dim as u64)? as usize;
        if n_rot > head_dim || !n_rot.is_multiple_of(2) {
            return Err(Error::metadata(
                key(&name, "rope.dimension_count"),
                format!("{n_rot} must be even and at most the head width {head_dim}"),
            ));
        }
        let rms_eps = g.get_f32(&key(&name, "attention.layer_norm_rms_epsilon"))?;
        let n_tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|a| a.len());
        let n_vocab = match g.get(&key(&name, "vocab_size")) {
            Some(_) => u("vocab_size")?,
            None => g.get_array("tokenizer.ggml.tokens")?.len(),
        };
        // As llama.cpp: every token needs a row of token_embd.weight and a logit, and no
        // logit may stand for a token the tokenizer cannot print.
        if let Some(n) = n_tokens.filter(|&n| n != n_vocab) {
            return Err(Error::metadata(
                "tokenizer.ggml.tokens",
                format!(
                    "{n} tokens, but the model's vocabulary ({}, the rows of token_embd.weight) has {n_vocab}",
                    key(&name, "vocab_size")
                ),
            ));
        }

        let rope_base = g.get_f32_opt(&key(&name, "rope.freq_base"))?.unwrap_or(10000.0);
        let rope_scale = match g.get(&key(&name, "rope.scaling.type")).and_then(|v| v.as_str()) {
            Some("linear") | None => match g.get_f32_opt(&key(&name, "rope.scaling.factor"))? {
                Some(f) if f > 0.0 => 1.0 / f,
                _ => 1.0,
            },
            Some("none") => 1.0,
            Some(other) => {
                return Err(Error::metadata(
                    key(&name, "rope.scaling.type"),
                    format!("'{other}' scaling is not supported"),
                ))
            }
        };

        let plain = LayerPlan { window: None, rope_base, rope_scale };
        // How each architecture differs, as llama.cpp builds its graph (src/models/<arch>.cpp).
        use Activation::*;
        use RopeStyle::*;
        let (rope_style, act, embd_sqrt, qk_norm, post_norms) = match arch {
            Arch::Llama => (Norm, Silu, false, false, false),
            Arch::Qwen2 | Arch::Phi3 => (Neox, Silu, false, false, false),
            Arch::Qwen3 => (Neox, Silu, false, true, false),
            Arch::Gemma => (Neox, GeluTanh, true, false, false),
            Arch::Gemma2 => (Neox, GeluTanh, true, false, true),
            Arch::Gemma3 => (Neox, GeluTanh, true, true, true),
        };
        let window = g.get_u64_or(&key(&name, "attention.sliding_window"), 0)? as usize;
        let layers: Vec<LayerPlan> =
            match arch {
                // Mistral-style models put a window on every layer when the file sets one.
                Arch::Llama => vec![plan_with_window(&plain, window as u64); n_layer],
                // Gemma 2 alternates: even layers local, odd layers global (llama.cpp's period 2).
                Arch::Gemma2 => (0..n_layer)
                    .map(|il| {
                        if window > 0 && il % 2 == 0 {
                            plan_with_window(&plain, window as u64)
                        } else {
                            plain.clone()
                        }
                    })
                    .collect(),
                Arch::Gemma3 => {
                    // Local layers use their own RoPE base (10000 unless the file says otherwise)
                    // and no scaling; every `pattern`-th layer is global (llama.cpp's default 6).
                    let pattern = g.get_u64_or(&key(&name, "attention.sliding_window_pattern"), 6)? as usize;
                    let swa_base = g.get_f32_opt(&key(&name, "rope.freq_base_swa"))?.unwrap_or(10000.0);
                    (0..n_layer)
                        .map(|il| {
                            let swa = window > 0 && (pattern == 0 || il % pattern < pattern - 1);
                            if swa {
                                LayerPlan { window: Some(window), rope_base: swa_base, rope_scale: 1.0 }
                            } else {
                                plain.clone()
                            }
                        })
                        .collect()
                }
                // Qwen, Phi-3 (llama.cpp ignores Phi-3's window key) and Gemma 1: no window.
                _ => vec![plain.clone(); n_layer],
            };
        // llama.cpp scales Gemma 2/3 queries by 1/sqrt(n_embd/n_head) for the 27B models
        // (46 and 62 layers) and by 1/sqrt(head_dim) for every other size and family.
        let scale_dim = match (arch, n_layer) {
            (Arch::Gemma2, 46) | (Arch::Gemma3, 62) => n_embd / n_head,
            _ => head_dim,
        };
        let softcap = |k: &str| -> Result<Option<f32>> { Ok(g.get_f32_opt(&key(&name, k))?.filter(|&c| c > 0.0)) };
        let cfg = Config {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ff,
            n_ctx_train,
            rms_eps,
            n_rot,
            rope_style,
            attn_scale: 1.0 / (scale_dim as f32).sqrt(),
            embd_scale: if embd_sqrt { (n_embd as f32).sqrt() } else { 1.0 },
            act,
            qk_norm,
            post_norms,
            attn_softcap: if arch == Arch::Gemma2 { softcap("attn_logit_softcapping")? } else { None },
            final_softcap: if arch == Arch::Gemma2 { softcap("final_logit_softcapping")? } else { None },
            rope_attn_factor: g.get_f32_opt(&key(&name, "rope.scaling.attn_factor"))?.unwrap_or(1.0),
            n_ctx_orig: g.get_u64_or(&key(&name, "rope.scaling.original_context_length"), n_ctx_train as u64)? as usize,
            layers,
        };
        Ok(cfg)
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// Width of all key heads together.
    pub fn k_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// Width of all value heads together.
    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }
}

fn plan_with_window(p: &LayerPlan, window: u64) -> LayerPlan {
    LayerPlan { window: (window > 0).then_some(window as usize), ..p.clone() }
}
