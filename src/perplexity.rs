//! Perplexity as llama.cpp's `llama-perplexity` computes it: the text is tokenized once
//! (with BOS where the model adds one), cut into non-overlapping chunks of `n_ctx` tokens,
//! each chunk starts from an empty cache with its first token replaced by BOS, and only
//! the second half of each chunk is scored (so every scored token has at least n_ctx/2
//! tokens of context): the logits at position j predict token j + 1 for
//! j = n_ctx/2 .. n_ctx - 2. PPL = exp(mean NLL), and its ± is llama.cpp's
//! PPL · sqrt(var(NLL) / (N - 1)).

use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::tokenizer::Tokenizer;

/// Running totals over the scored tokens.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nll {
    pub sum: f64,
    pub sum_sq: f64,
    pub count: usize,
}

impl Nll {
    pub fn add(&mut self, nll: f64) {
        self.sum += nll;
        self.sum_sq += nll * nll;
        self.count += 1;
    }

    pub fn ppl(&self) -> f64 {
        (self.sum / self.count.max(1) as f64).exp()
    }

    /// llama.cpp's uncertainty of the estimate (0 with fewer than two tokens).
    pub fn ppl_error(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = self.sum_sq / n - mean * mean;
        if var > 0.0 {
            (var / (n - 1.0)).sqrt() * self.ppl()
        } else {
            0.0
        }
    }
}

/// -log softmax(logits)[target], in f64 as llama.cpp does.
pub fn nll_of(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    -((logits[target as usize] as f64 - max) - sum.ln())
}

pub struct Perplexity {
    pub n_tokens: usize,
    pub n_chunks: usize,
    /// PPL after each chunk (cumulative), as llama.cpp prints `[k]value`.
    pub running: Vec<f64>,
    pub nll: Nll,
}

/// Score `text` in chunks of `n_ctx` tokens; `on_chunk(k, running_ppl)` after each chunk.
pub fn perplexity(
    exec: &mut dyn Executor,
    tok: &Tokenizer,
    text: &str,
    n_ctx: usize,
    max_chunks: Option<usize>,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    if n_ctx < 4 {
        return Err(Error::Usage(format!("-c {n_ctx} is too small: the context must hold at least 4 tokens")));
    }
    if n_ctx > exec.n_ctx() {
        return Err(Error::Context(format!(
            "chunks of {n_ctx} tokens need a context of {n_ctx}, but this one holds {}",
            exec.n_ctx()
        )));
    }
    let tokens = tok.encode(text)?;
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(m) = max_chunks {
        n_chunks = n_chunks.min(m);
    }
    if n_chunks == 0 {
        return Err(Error::Usage(format!(
            "the text is {} tokens, fewer than one chunk of {n_ctx}; use a smaller -c or a longer text",
            tokens.len()
        )));
    }
    let first = n_ctx / 2;
    let mut nll = Nll::default();
    let mut running = Vec::with_capacity(n_chunks);
    for k in 0..n_chunks {
        let mut chunk = tokens[k * n_ctx..(k + 1) * n_ctx].to_vec();
        if let (true, Some(bos)) = (tok.add_bos, tok.bos) {
            chunk[0] = bos;
        }
        exec.reset();
        let logits = exec.logits_from(&chunk, 0, first)?;
        let n_vocab = logits.len() / (n_ctx - first);
        for j in first..n_ctx - 1 {
            let row = &logits[(j - first) * n_vocab..(j - first + 1) * n_vocab];
            nll.add(nll_of(row, chunk[j + 1]));
        }
        running.push(nll.ppl());
        on_chunk(k, nll.ppl());
    }
    Ok(Perplexity { n_tokens: tokens.len(), n_chunks, running, nll })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let l = vec![0.5f32; 1000];
        assert!((nll_of(&l, 3) - (1000f64).ln()).abs() < 1e-9);
    }

    #[test]
    fn ppl_and_error_follow_llama_cpp_formula() {
        let mut n = Nll::default();
        for v in [1.0, 2.0, 3.0, 4.0] {
            n.add(v);
        }
        // mean 2.5, population variance 1.25, error = sqrt(1.25 / 3) * e^2.5
        assert!((n.ppl() - 2.5f64.exp()).abs() < 1e-12);
        assert!((n.ppl_error() - (1.25f64 / 3.0).sqrt() * 2.5f64.exp()).abs() < 1e-9);
    }
}
