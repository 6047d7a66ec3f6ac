//! Continuous batching on the GPU: one token each of several sequences in one step. The
//! prompt program already reads every weight once for a chunk of tokens; the Step uniform
//! gives each token its own position and its sequence's region of the KV cache, so the
//! same program runs a batch of sequences, and the all-token LM head gives each its logits.
//! A token's arithmetic is the same whatever else is in the batch (matmul columns, RoPE
//! and attention rows are independent, and chunks never split attention), so a sequence's
//! answer does not depend on its neighbours.

use super::executor::GpuModel;
use super::params::Step;
use crate::error::{Error, Result};
use crate::generate::Executor;

impl GpuModel {
    /// [items.len(), n_vocab] logits after one token of each sequence `(sequence, token)`,
    /// each at its sequence's next position.
    pub(super) fn step_batch(&mut self, items: &[(usize, u32)]) -> Result<Vec<f32>> {
        self.check_batch(items)?;
        self.ensure_all_head()?;
        let mut out = Vec::with_capacity(items.len() * self.cfg.n_vocab);
        for part in items.chunks(self.ubatch) {
            let rows: Vec<(usize, usize)> = part.iter().map(|&(s, _)| (self.n_pos[s], s * self.n_ctx)).collect();
            let ids: Vec<u32> = part.iter().map(|&(_, t)| t).collect();
            let enc = self.layers_encoder(&ids, Step::batch(&rows))?;
            out.extend(self.finish_all_logits(enc, part.len())?);
            for &(s, _) in part {
                self.n_pos[s] += 1;
            }
        }
        Ok(out)
    }

    fn check_batch(&self, items: &[(usize, u32)]) -> Result<()> {
        if items.is_empty() {
            return Err(Error::Usage("no tokens to process".into()));
        }
        for (i, &(s, t)) in items.iter().enumerate() {
            if s >= self.n_seq() {
                return Err(Error::Usage(format!("sequence {s} asked for, but the cache holds {}", self.n_seq())));
            }
            if items[..i].iter().any(|&(o, _)| o == s) {
                return Err(Error::Usage(format!("sequence {s} appears twice in one batch")));
            }
            if self.n_pos[s] >= self.n_ctx {
                return Err(Error::Context(format!("sequence {s} has filled its context of {}", self.n_ctx)));
            }
            if t as usize >= self.cfg.n_vocab {
                return Err(Error::Usage(format!("token id {t} is outside the vocabulary of {}", self.cfg.n_vocab)));
            }
        }
        Ok(())
    }
}
