//! The reference executor: the model in plain f32 on the CPU. Weights are dequantized
//! once at load (exactly as ggml's `dequantize_row_*`), activations and the KV cache
//! stay f32, so this path is the exact math of the file's weights.

pub mod ops;
mod step;
mod tensor;

pub use tensor::CpuTensor;

use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::gguf::GgufFile;
use crate::model::{recipe, rope_factors, Act, Acts, Captured, Config, ModelWeights};
use step::CpuStep;

/// A sequence's KV cache while another one runs.
#[derive(Clone, Default)]
struct Parked {
    k_cache: Vec<Vec<f32>>,
    v_cache: Vec<Vec<f32>>,
    n_pos: usize,
}

pub struct CpuModel {
    pub cfg: Config,
    pub w: ModelWeights<CpuTensor>,
    /// Per layer: `[pos, k_dim]` keys after RoPE.
    k_cache: Vec<Vec<f32>>,
    /// Per layer: `[pos, v_dim]` values.
    v_cache: Vec<Vec<f32>>,
    n_ctx: usize,
    n_pos: usize,
    /// The sequence the caches above belong to, and every other sequence's caches and
    /// positions, kept aside until `select_seq` swaps them in ([cfg.n_seq]).
    seq: usize,
    parked: Vec<Parked>,
    logits: Vec<f32>, // [n_vocab]
    /// When set, every forward step appends its intermediates here (for `compare`).
    pub capture: Option<Vec<Captured>>,
    /// [n_rot/2] RoPE frequency divisors (Llama 3.1, Phi-3 LongRoPE), if any.
    freq_factors: Option<Vec<f32>>,
    acts: Acts<Vec<f32>>,
}

impl CpuModel {
    pub fn load(g: &GgufFile, cfg: Config, n_ctx: usize) -> Result<Self> {
        let w = ModelWeights::load(&cfg, g, |t| {
            Ok(CpuTensor { data: g.dequantize(t)?, cols: t.row_len(), rows: t.n_rows() })
        })?;
        let n_layer = cfg.n_layer;
        let logits = vec![0.0; cfg.n_vocab];
        let freq_factors = rope_factors(g, &cfg, n_ctx)?;
        let acts = Acts::new(|a: Act| vec![0f32; a.width(&cfg)]);
        let empty = Parked { k_cache: vec![Vec::new(); n_layer], v_cache: vec![Vec::new(); n_layer], n_pos: 0 };
        Ok(CpuModel {
            parked: vec![empty; cfg.n_seq],
            seq: 0,
            cfg,
            w,
            k_cache: vec![Vec::new(); n_layer],
            v_cache: vec![Vec::new(); n_layer],
            n_ctx,
            n_pos: 0,
            logits,
            capture: None,
            freq_factors,
            acts,
        })
    }
}

impl Executor for CpuModel {
    fn name(&self) -> String {
        "cpu (f32 reference)".to_string()
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn reset(&mut self) {
        self.k_cache.iter_mut().chain(self.v_cache.iter_mut()).for_each(Vec::clear);
        self.n_pos = 0;
    }

    fn rewind(&mut self, n: usize) -> Result<()> {
        if n > self.n_pos {
            return Err(Error::Context(format!("cannot keep {n} positions: the cache holds {}", self.n_pos)));
        }
        let (kd, vd) = (self.cfg.k_dim(), self.cfg.v_dim());
        self.k_cache.iter_mut().for_each(|c| c.truncate(n * kd));
        self.v_cache.iter_mut().for_each(|c| c.truncate(n * vd));
        self.n_pos = n;
        Ok(())
    }

    fn n_pos(&self) -> usize {
        self.n_pos
    }

    fn n_seq(&self) -> usize {
        self.cfg.n_seq
    }

    /// The current sequence's caches go aside and `s`'s come in: no copying.
    fn select_seq(&mut self, s: usize) -> Result<()> {
        if s >= self.cfg.n_seq {
            return Err(Error::Usage(format!("sequence {s} asked for, but the cache holds {}", self.cfg.n_seq)));
        }
        if s != self.seq {
            let mine = Parked {
                k_cache: std::mem::take(&mut self.k_cache),
                v_cache: std::mem::take(&mut self.v_cache),
                n_pos: self.n_pos,
            };
            let theirs = std::mem::take(&mut self.parked[s]);
            self.parked[self.seq] = mine;
            (self.k_cache, self.v_cache, self.n_pos) = (theirs.k_cache, theirs.v_cache, theirs.n_pos);
            self.seq = s;
        }
        Ok(())
    }

    fn copy_prefix(&mut self, from: usize, n: usize) -> Result<()> {
        if from == self.seq {
            return self.rewind(n);
        }
        let src = self.parked.get(from).ok_or_else(|| {
            Error::Usage(format!("sequence {from} asked for, but the cache holds {}", self.cfg.n_seq))
        })?;
        if n > src.n_pos {
            return Err(Error::Context(format!("cannot copy {n} positions: sequence {from} holds {}", src.n_pos)));
        }
        let (kd, vd) = (self.cfg.k_dim(), self.cfg.v_dim());
        self.k_cache = src.k_cache.iter().map(|c| c[..n * kd].to_vec()).collect();
        self.v_cache = src.v_cache.iter().map(|c| c[..n * vd].to_vec()).collect();
        self.n_pos = n;
        Ok(())
    }

    fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32]> {
        self.step(&[token], pos, false)?;
        Ok(&self.logits)
    }

    /// A prompt in chunks of `CHUNK` tokens (each weight read once per chunk); one token at a
    /// time when `compare` captures intermediates, which it does per token.
    fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<&[f32]> {
        if tokens.is_empty() {
            return Err(Error::Usage("no tokens to process".into()));
        }
        let chunk = if self.capture.is_some() { 1 } else { CHUNK };
        for (i, part) in tokens.chunks(chunk).enumerate() {
            self.step(part, pos + i * chunk, false)?;
        }
        Ok(&self.logits)
    }

    fn logits_from(&mut self, tokens: &[u32], pos: usize, from: usize) -> Result<Vec<f32>> {
        if self.capture.is_some() {
            return crate::generate::logits_one_by_one(self, tokens, pos, from);
        }
        let mut out = Vec::with_capacity(tokens.len().saturating_sub(from) * self.cfg.n_vocab);
        for (i, part) in tokens.chunks(CHUNK).enumerate() {
            let first = i * CHUNK;
            let wanted = (first + part.len()).saturating_sub(from.max(first));
            self.step(part, pos + first, wanted > 0)?;
            if wanted > 0 {
                out.extend_from_slice(&self.logits[(part.len() - wanted) * self.cfg.n_vocab..]);
            }
        }
        Ok(out)
    }
}

/// Tokens per step of a prompt: enough that a weight row serves many tokens while it is in
/// cache, few enough that the activations ([CHUNK, n_ff]) stay small.
const CHUNK: usize = 32;

impl CpuModel {
    /// Run `tokens` at positions pos, pos + 1, …; the logits of every token when `all_logits`
    /// ([n, n_vocab]), else of the last.
    fn step(&mut self, tokens: &[u32], pos: usize, all_logits: bool) -> Result<()> {
        let c = &self.cfg;
        let n = tokens.len();
        if pos != self.n_pos {
            return Err(Error::Context(format!("position {pos} given, but the cache holds {} positions", self.n_pos)));
        }
        if pos + n > self.n_ctx {
            return Err(Error::Context(format!("position {} is past the context size {}", pos + n - 1, self.n_ctx)));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= c.n_vocab) {
            return Err(Error::Usage(format!("token id {t} is outside the vocabulary of {}", c.n_vocab)));
        }
        for a in Act::LAYER {
            if let Some(b) = self.acts.get_mut(a) {
                b.resize(n * a.width(c), 0.0);
            }
        }
        self.logits.resize(if all_logits { n } else { 1 } * c.n_vocab, 0.0);
        let mut step = CpuStep {
            c,
            acts: &mut self.acts,
            logits: &mut self.logits,
            k_cache: &mut self.k_cache,
            v_cache: &mut self.v_cache,
            tokens,
            pos,
            all_logits,
            freq_factors: self.freq_factors.as_deref(),
            capture: self.capture.as_mut(),
        };
        recipe::forward(&mut step, c, &self.w)?;
        self.n_pos += n;
        Ok(())
    }
}
