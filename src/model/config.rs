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

/// How sliding-window layers fall in an architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Windows {
    /// No layer has a window (llama.cpp ignores Phi-3's window key).
    Never,
    /// Every layer, when the file sets `attention.sliding_window` (Mistral-style llama).
    Every,
    /// Even layers local, odd layers global (Gemma 2: llama.cpp's period 2).
    EvenLayers,
    /// Every `attention.sliding_window_pattern`-th layer global (default 6), the others local
    /// with their own RoPE base `rope.freq_base_swa` and no scaling (Gemma 3).
    Pattern,
}

/// What sets one architecture apart, as llama.cpp builds its graph (src/models/<arch>.cpp).
/// The executors read none of this directly: it becomes `Config`'s fields.
#[derive(Clone, Copy, Debug)]
pub struct ArchInfo {
    pub arch: Arch,
    /// `general.architecture` in the file.
    pub name: &'static str,
    /// The models it covers, for people.
    pub family: &'static str,
    pub rope_style: RopeStyle,
    pub act: Activation,
    /// The token embedding is scaled by sqrt(n_embd).
    pub embd_sqrt: bool,
    /// Per-head RMS norms of q and k before RoPE.
    pub qk_norm: bool,
    /// RMS norms on the attention and FFN outputs before the residual adds.
    pub post_norms: bool,
    /// Attention scores and logits are soft-capped (from the file's values).
    pub softcaps: bool,
    pub windows: Windows,
    /// The layer count of the one size whose queries llama.cpp scales by 1/sqrt(n_embd/n_head)
    /// rather than 1/sqrt(head_dim) (the 27B Gemmas).
    pub wide_query_scale_at: Option<usize>,
}

const fn info(
    arch: Arch,
    name: &'static str,
    family: &'static str,
    rope_style: RopeStyle,
    act: Activation,
) -> ArchInfo {
    ArchInfo {
        arch,
        name,
        family,
        rope_style,
        act,
        embd_sqrt: false,
        qk_norm: false,
        post_norms: false,
        softcaps: false,
        windows: Windows::Never,
        wide_query_scale_at: None,
    }
}

/// Every supported architecture: `SUPPORTED`, `from_name`, `family` and `Config::from_gguf` read this.
pub const ARCHS: [ArchInfo; 7] = {
    use Activation::*;
    use RopeStyle::*;
    let gemma = info(Arch::Gemma, "gemma", "Gemma", Neox, GeluTanh);
    [
        ArchInfo {
            windows: Windows::Every,
            ..info(Arch::Llama, "llama", "Llama (Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2)", Norm, Silu)
        },
        info(Arch::Qwen2, "qwen2", "Qwen 2", Neox, Silu),
        ArchInfo { qk_norm: true, ..info(Arch::Qwen3, "qwen3", "Qwen 3", Neox, Silu) },
        ArchInfo { embd_sqrt: true, ..gemma },
        ArchInfo {
            arch: Arch::Gemma2,
            name: "gemma2",
            family: "Gemma 2",
            embd_sqrt: true,
            post_norms: true,
            softcaps: true,
            windows: Windows::EvenLayers,
            wide_query_scale_at: Some(46),
            ..gemma
        },
        ArchInfo {
            arch: Arch::Gemma3,
            name: "gemma3",
            family: "Gemma 3",
            embd_sqrt: true,
            qk_norm: true,
            post_norms: true,
            windows: Windows::Pattern,
            wide_query_scale_at: Some(62),
            ..gemma
        },
        info(Arch::Phi3, "phi3", "Phi-3", Neox, Silu),
    ]
};

impl Arch {
    pub const SUPPORTED: [&'static str; ARCHS.len()] = {
        let mut names = [""; ARCHS.len()];
        let mut i = 0;
        while i < ARCHS.len() {
            names[i] = ARCHS[i].name;
            i += 1;
        }
        names
    };

    pub fn from_name(name: &str) -> Result<Arch> {
        let found = ARCHS.iter().find(|a| a.name == name).map(|a| a.arch);
        found.ok_or_else(|| Error::UnsupportedArch { arch: name.to_string(), supported: Arch::SUPPORTED.join(", ") })
    }

    pub fn info(self) -> &'static ArchInfo {
        // Every Arch has a row; the fallback is never taken.
        ARCHS.iter().find(|a| a.arch == self).unwrap_or(&ARCHS[0])
    }

    pub fn family(self) -> &'static str {
        self.info().family
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

/// How the KV cache keeps keys and values. Both executors store what this says (the CPU
/// reference rounds to f16 where the GPU packs halves), so they stay comparable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvType {
    #[default]
    F32,
    /// Half the bytes: two values per 32-bit word (WGSL's pack2x16float, no f16 feature needed).
    F16,
}

impl KvType {
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
        }
    }

    /// `v` as the cache keeps it.
    pub fn round(self, v: f32) -> f32 {
        match self {
            KvType::F32 => v,
            KvType::F16 => half::f16::from_f32(v).to_f32(),
        }
    }
}

/// The gate activation of the gated FFN: `down(act(gate·x) * up·x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// How the KV cache keeps values (not in the file: `--kv-type`).
    pub kv_type: KvType,
    /// Sequences the KV cache holds, each its own full context (not in the file: the
    /// server's `--parallel`; 1 elsewhere).
    pub n_seq: usize,
}

fn key(arch: &str, k: &str) -> String {
    format!("{arch}.{k}")
}

/// The shape numbers every architecture has, checked.
struct Dims {
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_head_kv: usize,
    n_ff: usize,
    head_dim: usize,
    head_dim_v: usize,
    n_rot: usize,
}

/// Reads `{arch}.*` metadata keys.
struct Meta<'a> {
    g: &'a GgufFile,
    name: &'a str,
}

impl Meta<'_> {
    fn key(&self, k: &str) -> String {
        key(self.name, k)
    }
    fn u(&self, k: &str) -> Result<usize> {
        Ok(self.g.get_u64(&self.key(k))? as usize)
    }
    fn u_or(&self, k: &str, default: usize) -> Result<usize> {
        Ok(self.g.get_u64_or(&self.key(k), default as u64)? as usize)
    }
    fn f_opt(&self, k: &str) -> Result<Option<f32>> {
        self.g.get_f32_opt(&self.key(k))
    }
    fn bad(&self, k: &str, msg: impl Into<String>) -> Error {
        Error::metadata(self.key(k), msg)
    }

    fn dims(&self) -> Result<Dims> {
        let (n_embd, n_layer, n_head) =
            (self.u("embedding_length")?, self.u("block_count")?, self.u("attention.head_count")?);
        let n_head_kv = self.u_or("attention.head_count_kv", n_head)?;
        let n_ff = self.u("feed_forward_length")?;
        if n_embd == 0 || n_layer == 0 || n_head == 0 || n_head_kv == 0 || n_ff == 0 {
            let msg = "embedding_length, block_count, head counts and feed_forward_length must be positive";
            return Err(Error::metadata(format!("{}.*", self.name), msg));
        }
        if n_head % n_head_kv != 0 {
            return Err(self.bad("attention.head_count_kv", format!("{n_head_kv} does not divide head_count {n_head}")));
        }
        if n_layer > 4096 || n_head > 4096 || n_embd > 1 << 20 {
            return Err(Error::metadata(format!("{}.*", self.name), "implausibly large hyperparameters"));
        }
        let head_dim = match self.g.get(&self.key("attention.key_length")) {
            Some(_) => self.u("attention.key_length")?,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => return Err(self.bad("embedding_length", format!("{n_embd} is not divisible by attention.head_count {n_head}, and the file gives no attention.key_length"))),
        };
        let head_dim_v = self.u_or("attention.value_length", head_dim)?;
        if head_dim == 0 || head_dim % 2 != 0 || head_dim_v == 0 {
            return Err(self.bad("attention.key_length", format!("head width {head_dim} must be positive and even")));
        }
        let n_rot = self.u_or("rope.dimension_count", head_dim)?;
        if n_rot > head_dim || !n_rot.is_multiple_of(2) {
            let msg = format!("{n_rot} must be even and at most the head width {head_dim}");
            return Err(self.bad("rope.dimension_count", msg));
        }
        Ok(Dims { n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, head_dim_v, n_rot })
    }

    /// The vocabulary size: every token needs a row of token_embd.weight and a logit, and
    /// (as llama.cpp) no logit may stand for a token the tokenizer cannot print.
    fn n_vocab(&self) -> Result<usize> {
        let n_tokens = self.g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).map(|a| a.len());
        let n_vocab = match self.g.get(&self.key("vocab_size")) {
            Some(_) => self.u("vocab_size")?,
            None => self.g.get_array("tokenizer.ggml.tokens")?.len(),
        };
        if let Some(n) = n_tokens.filter(|&n| n != n_vocab) {
            let msg = format!(
                "{n} tokens, but the model's vocabulary ({}, the rows of token_embd.weight) has {n_vocab}",
                self.key("vocab_size")
            );
            return Err(Error::metadata("tokenizer.ggml.tokens", msg));
        }
        Ok(n_vocab)
    }

    /// The global layers' RoPE: base and position multiplier.
    fn rope(&self) -> Result<LayerPlan> {
        let rope_base = self.f_opt("rope.freq_base")?.unwrap_or(10000.0);
        let rope_scale = match self.g.get(&self.key("rope.scaling.type")).and_then(|v| v.as_str()) {
            Some("linear") | None => match self.f_opt("rope.scaling.factor")? {
                Some(f) if f > 0.0 => 1.0 / f,
                _ => 1.0,
            },
            Some("none") => 1.0,
            Some(other) => return Err(self.bad("rope.scaling.type", format!("'{other}' scaling is not supported"))),
        };
        Ok(LayerPlan { window: None, rope_base, rope_scale })
    }

    /// Each layer's window and RoPE, as the architecture places sliding windows.
    fn layers(&self, windows: Windows, n_layer: usize) -> Result<Vec<LayerPlan>> {
        let plain = self.rope()?;
        let window = self.u_or("attention.sliding_window", 0)?;
        let local = LayerPlan { window: (window > 0).then_some(window), ..plain.clone() };
        Ok(match windows {
            Windows::Never => vec![plain; n_layer],
            Windows::Every => vec![local; n_layer],
            Windows::EvenLayers => (0..n_layer).map(|il| if il % 2 == 0 { &local } else { &plain }.clone()).collect(),
            Windows::Pattern => {
                let pattern = self.u_or("attention.sliding_window_pattern", 6)?;
                let swa_base = self.f_opt("rope.freq_base_swa")?.unwrap_or(10000.0);
                let swa = LayerPlan { window: Some(window), rope_base: swa_base, rope_scale: 1.0 };
                let is_local = |il: usize| window > 0 && (pattern == 0 || il % pattern < pattern - 1);
                (0..n_layer).map(|il| if is_local(il) { &swa } else { &plain }.clone()).collect()
            }
        })
    }

    fn softcap(&self, on: bool, k: &str) -> Result<Option<f32>> {
        Ok(if on { self.f_opt(k)?.filter(|&c| c > 0.0) } else { None })
    }
}

impl Config {
    pub fn from_gguf(g: &GgufFile) -> Result<Config> {
        let name = g.get_str("general.architecture")?;
        let a = Arch::from_name(name)?.info();
        let m = Meta { g, name };
        let d = m.dims()?;
        let n_ctx_train = m.u_or("context_length", 2048)?;
        let rms_eps = g.get_f32(&m.key("attention.layer_norm_rms_epsilon"))?;
        let scale_dim = if a.wide_query_scale_at == Some(d.n_layer) { d.n_embd / d.n_head } else { d.head_dim };
        Ok(Config {
            arch: a.arch,
            n_vocab: m.n_vocab()?,
            n_embd: d.n_embd,
            n_layer: d.n_layer,
            n_head: d.n_head,
            n_head_kv: d.n_head_kv,
            head_dim: d.head_dim,
            head_dim_v: d.head_dim_v,
            n_ff: d.n_ff,
            n_ctx_train,
            rms_eps,
            n_rot: d.n_rot,
            rope_style: a.rope_style,
            attn_scale: 1.0 / (scale_dim as f32).sqrt(),
            embd_scale: if a.embd_sqrt { (d.n_embd as f32).sqrt() } else { 1.0 },
            act: a.act,
            qk_norm: a.qk_norm,
            post_norms: a.post_norms,
            attn_softcap: m.softcap(a.softcaps, "attn_logit_softcapping")?,
            final_softcap: m.softcap(a.softcaps, "final_logit_softcapping")?,
            rope_attn_factor: m.f_opt("rope.scaling.attn_factor")?.unwrap_or(1.0),
            n_ctx_orig: m.u_or("rope.scaling.original_context_length", n_ctx_train)?,
            layers: m.layers(a.windows, d.n_layer)?,
            kv_type: KvType::F32,
            n_seq: 1,
        })
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// Width of all key heads together.
    /// The same model with its KV cache kept as `kv`; f16 packs two values per word, so
    /// the cached rows must have an even width.
    pub fn with_kv_type(mut self, kv: KvType) -> Result<Config> {
        if kv == KvType::F16 && (self.k_dim() % 2 == 1 || self.v_dim() % 2 == 1) {
            let msg = format!(
                "an f16 KV cache needs even K and V widths; this model's are {} and {}",
                self.k_dim(),
                self.v_dim()
            );
            return Err(Error::Usage(msg));
        }
        self.kv_type = kv;
        Ok(self)
    }

    /// The same model with a KV cache for `n` sequences at once.
    pub fn with_seqs(mut self, n: usize) -> Result<Config> {
        if n == 0 {
            return Err(Error::Usage("the cache must hold at least one sequence".into()));
        }
        self.n_seq = n;
        Ok(self)
    }

    pub fn k_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// Width of all value heads together.
    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }
}
