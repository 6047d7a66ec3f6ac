//! Hyperparameters and the layer recipe, read from GGUF metadata alone.

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2
    Llama,
    /// Gemma 3
    Gemma3,
}

impl Arch {
    pub const SUPPORTED: &'static [&'static str] = &["llama", "gemma3"];

    pub fn from_name(name: &str) -> Result<Arch> {
        match name {
            "llama" => Ok(Arch::Llama),
            "gemma3" => Ok(Arch::Gemma3),
            _ => Err(Error::UnsupportedArch { arch: name.to_string(), supported: Arch::SUPPORTED.join(", ") }),
        }
    }

    pub fn family(self) -> &'static str {
        match self {
            Arch::Llama => "Llama (Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2)",
            Arch::Gemma3 => "Gemma 3",
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
            return Err(Error::metadata(format!("{name}.*"), "embedding_length, block_count, head counts and feed_forward_length must be positive"));
        }
        if n_head % n_head_kv != 0 {
            return Err(Error::metadata(key(&name, "attention.head_count_kv"), format!("{n_head_kv} does not divide head_count {n_head}")));
        }
        if n_layer > 4096 || n_head > 4096 || n_embd > 1 << 20 {
            return Err(Error::metadata(format!("{name}.*"), "implausibly large hyperparameters"));
        }
        let default_head = if n_embd % n_head == 0 { n_embd / n_head } else { 0 };
        let head_dim = g.get_u64_or(&key(&name, "attention.key_length"), default_head as u64)? as usize;
        let head_dim_v = g.get_u64_or(&key(&name, "attention.value_length"), head_dim as u64)? as usize;
        if head_dim == 0 || head_dim % 2 != 0 || head_dim_v == 0 {
            return Err(Error::metadata(key(&name, "attention.key_length"), format!("head width {head_dim} must be positive and even")));
        }
        let n_rot = g.get_u64_or(&key(&name, "rope.dimension_count"), head_dim as u64)? as usize;
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(Error::metadata(key(&name, "rope.dimension_count"), format!("{n_rot} must be even and at most the head width {head_dim}")));
        }
        let rms_eps = g.get_f32(&key(&name, "attention.layer_norm_rms_epsilon"))?;
        let n_vocab = match g.get(&key(&name, "vocab_size")) {
            Some(_) => u("vocab_size")?,
            None => g.get_array("tokenizer.ggml.tokens")?.len(),
        };

        let rope_base = g.get_f32_opt(&key(&name, "rope.freq_base"))?.unwrap_or(10000.0);
        let rope_scale = match g.get(&key(&name, "rope.scaling.type")).and_then(|v| v.as_str()) {
            Some("linear") | None => match g.get_f32_opt(&key(&name, "rope.scaling.factor"))? {
                Some(f) if f > 0.0 => 1.0 / f,
                _ => 1.0,
            },
            Some("none") => 1.0,
            Some(other) => return Err(Error::metadata(key(&name, "rope.scaling.type"), format!("'{other}' scaling is not supported"))),
        };

        let plain = LayerPlan { window: None, rope_base, rope_scale };
        let cfg = match arch {
            Arch::Llama => Config {
                arch,
                n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, head_dim_v, n_ff, n_ctx_train, rms_eps, n_rot,
                rope_style: RopeStyle::Norm,
                attn_scale: 1.0 / (head_dim as f32).sqrt(),
                embd_scale: 1.0,
                act: Activation::Silu,
                qk_norm: false,
                post_norms: false,
                layers: vec![plan_with_window(&plain, g.get_u64_or(&key(&name, "attention.sliding_window"), 0)?); n_layer],
            },
            Arch::Gemma3 => {
                // llama.cpp: sliding-window layers use their own RoPE base (10000 unless the
                // file says otherwise) and no scaling; every `pattern`-th layer is global.
                let window = g.get_u64_or(&key(&name, "attention.sliding_window"), 0)? as usize;
                let pattern = g.get_u64_or(&key(&name, "attention.sliding_window_pattern"), 6)? as usize;
                let swa_base = g.get_f32_opt(&key(&name, "rope.freq_base_swa"))?.unwrap_or(10000.0);
                let layers = (0..n_layer)
                    .map(|il| {
                        let swa = window > 0 && (pattern == 0 || il % pattern < pattern - 1);
                        if swa {
                            LayerPlan { window: Some(window), rope_base: swa_base, rope_scale: 1.0 }
                        } else {
                            plain.clone()
                        }
                    })
                    .collect();
                // llama.cpp scales queries by 1/sqrt(n_embd/n_head) for the 27B model
                // (62 layers) and by 1/sqrt(head_dim) for every other size.
                let scale_dim = if n_layer == 62 { n_embd / n_head } else { head_dim };
                Config {
                    arch,
                    n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, head_dim_v, n_ff, n_ctx_train, rms_eps, n_rot,
                    rope_style: RopeStyle::Neox,
                    attn_scale: 1.0 / (scale_dim as f32).sqrt(),
                    embd_scale: (n_embd as f32).sqrt(),
                    act: Activation::GeluTanh,
                    qk_norm: true,
                    post_norms: true,
                    layers,
                }
            }
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
