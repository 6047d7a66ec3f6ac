//! Tokens in, a stream of tokens out — independent of which executor runs the model.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::tokenizer::Tokenizer;

/// Runs the model one position at a time over its own KV cache.
pub trait Executor {
    /// Which device runs it, for the user.
    fn name(&self) -> String;
    /// Positions the KV cache can hold.
    fn n_ctx(&self) -> usize;
    /// Forget every cached position.
    fn reset(&mut self);
    /// Keep the first `n` cached positions and forget the rest, so that a conversation's
    /// next turn computes only what it does not share with the last.
    fn rewind(&mut self, n: usize) -> Result<()>;
    /// Positions the cache holds.
    fn n_pos(&self) -> usize;
    /// Sequences the cache holds, each with a context of `n_ctx` (1 unless the executor
    /// was loaded with `Config::with_seqs`).
    fn n_seq(&self) -> usize {
        1
    }
    /// Make sequence `s` the one that `forward`, `prefill`, `logits_from`, `reset`,
    /// `rewind` and `n_pos` act on.
    fn select_seq(&mut self, s: usize) -> Result<()> {
        match s {
            0 => Ok(()),
            _ => Err(Error::Usage(format!("sequence {s} asked for, but the cache holds one"))),
        }
    }
    /// Make the current sequence's cache the first `n` positions of sequence `from`'s
    /// (which must hold that many), leaving `from` as it was: a prompt that begins as
    /// another sequence's did (a shared system prompt) then computes only the rest.
    /// Executors with one sequence cannot.
    fn copy_prefix(&mut self, from: usize, n: usize) -> Result<()> {
        Err(Error::Usage(format!("this executor cannot copy {n} positions of sequence {from} into another")))
    }
    /// One token each of distinct sequences `(sequence, token)`, each at its sequence's
    /// next position: the logits after each, row after row ([items.len(), n_vocab]).
    /// Executors that run them together (one pass over the weights) override this; the
    /// result for a sequence must not depend on what else is in the batch.
    fn decode_batch(&mut self, items: &[(usize, u32)]) -> Result<Vec<f32>> {
        decode_one_by_one(self, items)
    }
    /// Process `token` at position `pos` (which must be the next free one) and return
    /// the logits over the vocabulary for the token that follows.
    fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32]>;
    /// Process `token` at `pos` and return the best `k` (id, logit) pairs of its logits,
    /// best first (`sampler::top_of`'s order). Executors that find them where the logits
    /// are, to read back less, override this.
    fn forward_top(&mut self, token: u32, pos: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        Ok(crate::sampler::top_of(self.forward(token, pos)?, k))
    }
    /// Process several tokens starting at `pos` and return the logits after the last.
    /// Executors that can batch prompt processing override this.
    fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<&[f32]> {
        let (last, rest) = tokens.split_last().ok_or_else(|| Error::Usage("no tokens to process".into()))?;
        for (i, &t) in rest.iter().enumerate() {
            self.forward(t, pos + i)?;
        }
        self.forward(*last, pos + rest.len())
    }
    /// Process `tokens` starting at `pos` and return the logits after each token from
    /// index `from` on, row after row ([tokens.len() - from, n_vocab]) — perplexity needs
    /// every position's prediction. Executors with a batched path override this.
    fn logits_from(&mut self, tokens: &[u32], pos: usize, from: usize) -> Result<Vec<f32>> {
        logits_one_by_one(self, tokens, pos, from)
    }
}

/// `Executor::decode_batch` one `forward` at a time, sequence after sequence (the
/// current sequence is the last one's afterwards).
pub fn decode_one_by_one<E: Executor + ?Sized>(e: &mut E, items: &[(usize, u32)]) -> Result<Vec<f32>> {
    if items.is_empty() {
        return Err(Error::Usage("no tokens to process".into()));
    }
    let mut out = Vec::new();
    for (i, &(s, token)) in items.iter().enumerate() {
        if items[..i].iter().any(|&(o, _)| o == s) {
            return Err(Error::Usage(format!("sequence {s} appears twice in one batch")));
        }
        e.select_seq(s)?;
        let pos = e.n_pos();
        if pos >= e.n_ctx() {
            return Err(Error::Context(format!("sequence {s} has filled its context of {}", e.n_ctx())));
        }
        out.extend_from_slice(e.forward(token, pos)?);
    }
    Ok(out)
}

/// `Executor::logits_from` one `forward` at a time: the default, and what a batched
/// executor falls back to when it must see every token (profiling, capture).
pub fn logits_one_by_one<E: Executor + ?Sized>(e: &mut E, tokens: &[u32], pos: usize, from: usize) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for (i, &t) in tokens.iter().enumerate() {
        let l = e.forward(t, pos + i)?;
        if i >= from {
            out.extend_from_slice(l);
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_tokens` were generated.
    Length,
    /// An end-of-generation token was sampled.
    Eos,
    /// The user asked to stop (Ctrl-C; `crate::interrupt`).
    Interrupted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Length => "length",
            StopReason::Eos => "eos",
            StopReason::Interrupted => "interrupted",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Generation {
    pub prompt_tokens: Vec<u32>,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    /// Logits at the last prompt position.
    pub first_logits: Vec<f32>,
    /// Top-1 minus top-2 logit at each sampling step (how close the choice was).
    pub margins: Vec<f32>,
    pub prompt_ms: f64,
    /// Time of the forward passes after the prompt.
    pub decode_ms: f64,
    pub decode_steps: usize,
}

impl Generation {
    pub fn prompt_tokens_per_s(&self) -> f64 {
        self.prompt_tokens.len() as f64 / (self.prompt_ms / 1e3).max(1e-9)
    }
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.decode_steps as f64 / (self.decode_ms / 1e3).max(1e-9)
    }
}

/// Largest minus second-largest value.
pub fn top2_margin(logits: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &v in logits {
        if v > a {
            b = a;
            a = v;
        } else if v > b {
            b = v;
        }
    }
    a - b
}

/// What a step gives the sampler: the whole logits, or its best (id, logit) pairs.
enum Scores {
    Logits(Vec<f32>),
    Top(Vec<(u32, f32)>),
}

impl Scores {
    /// Top-1 minus top-2 logit.
    fn margin(&self) -> f32 {
        match self {
            Scores::Logits(l) => top2_margin(l),
            Scores::Top(t) => match t.as_slice() {
                [a, b, ..] => a.1 - b.1,
                _ => f32::INFINITY,
            },
        }
    }
}

/// Generate up to `max_tokens` after `prompt` from an empty cache, calling `on_token` as
/// each is chosen.
pub fn generate(
    exec: &mut dyn Executor,
    tok: &Tokenizer,
    sampler: &mut Sampler,
    prompt: &[u32],
    max_tokens: usize,
    ignore_eos: bool,
    on_token: impl FnMut(u32) -> Result<()>,
) -> Result<Generation> {
    exec.reset();
    generate_from(exec, tok, sampler, (prompt, 0), max_tokens, ignore_eos, on_token)
}

/// `generate` keeping the first `reuse` positions of the cache, which must hold the first
/// `reuse` tokens of `prompt` (a conversation's earlier turns): only the rest is prefilled.
/// At least the prompt's last token is always run, for its logits.
pub fn generate_from(
    exec: &mut dyn Executor,
    tok: &Tokenizer,
    sampler: &mut Sampler,
    (prompt, reuse): (&[u32], usize),
    max_tokens: usize,
    ignore_eos: bool,
    mut on_token: impl FnMut(u32) -> Result<()>,
) -> Result<Generation> {
    if prompt.is_empty() {
        return Err(Error::Usage("the prompt is empty (no tokens to start from)".into()));
    }
    let need = prompt.len() + max_tokens;
    if need > exec.n_ctx() {
        return Err(Error::Context(format!(
            "the prompt ({} tokens) plus {max_tokens} tokens to generate needs {need} positions, but the context holds {}; use a larger --ctx or a smaller -n",
            prompt.len(),
            exec.n_ctx()
        )));
    }
    let reuse = reuse.min(prompt.len() - 1).min(exec.n_pos());
    exec.rewind(reuse)?;
    let t0 = Instant::now();
    let logits: Vec<f32> = exec.prefill(&prompt[reuse..], reuse)?.to_vec();
    let prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
    let first_logits = logits.clone();

    let mut history = prompt.to_vec();
    let mut tokens = Vec::new();
    let mut margins = Vec::new();
    let mut stop = StopReason::Length;
    let mut decode_ms = 0.0;
    let mut decode_steps = 0;
    // After the prompt, a step hands the sampler the best candidates it needs (two at
    // least, for the margin) rather than the vocabulary, where the sampler allows.
    let mut scores = Scores::Logits(logits);
    while tokens.len() < max_tokens {
        if crate::interrupt::requested() {
            stop = StopReason::Interrupted;
            break;
        }
        margins.push(scores.margin());
        let next = match &scores {
            Scores::Logits(l) => sampler.sample(l, &history),
            Scores::Top(t) => sampler.sample_from(t, &history),
        };
        tokens.push(next);
        history.push(next);
        on_token(next)?;
        if !ignore_eos && tok.is_eog(next) {
            stop = StopReason::Eos;
            break;
        }
        if tokens.len() == max_tokens {
            break;
        }
        let t = Instant::now();
        let pos = history.len() - 1;
        match (sampler.needs(&history), &mut scores) {
            (Some(k), _) => scores = Scores::Top(exec.forward_top(next, pos, k.max(2))?),
            // The vocabulary's logits into the buffer the last step filled, not a new one.
            (None, Scores::Logits(l)) => l.copy_from_slice(exec.forward(next, pos)?),
            (None, _) => scores = Scores::Logits(exec.forward(next, pos)?.to_vec()),
        }
        decode_ms += t.elapsed().as_secs_f64() * 1e3;
        decode_steps += 1;
    }
    Ok(Generation {
        prompt_tokens: prompt.to_vec(),
        tokens,
        stop,
        first_logits,
        margins,
        prompt_ms,
        decode_ms,
        decode_steps,
    })
}
