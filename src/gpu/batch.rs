//! Continuous batching on the GPU: one token each of several sequences in one step. The
//! prompt program already reads every weight once for a chunk of tokens; the Step uniform
//! gives each token its own position and its sequence's region of the KV cache, so the
//! same program runs a batch of sequences, and the all-token LM head gives each its logits.
//! A token's arithmetic is the same whatever else is in the batch (matmul columns, RoPE
//! and attention rows are independent, and chunks never split attention), so a sequence's
//! answer does not depend on its neighbours.

use super::buffers::copy_within;
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

    /// The current sequence's cache becomes the first `n` positions of sequence `from`'s:
    /// every layer's K and V rows copied on the GPU, through the chunk buffer (`xt`).
    pub(super) fn copy_seq_prefix(&mut self, from: usize, n: usize) -> Result<()> {
        if from >= self.n_seq() {
            return Err(Error::Usage(format!("sequence {from} asked for, but the cache holds {}", self.n_seq())));
        }
        if n > self.n_pos[from] {
            return Err(Error::Context(format!(
                "cannot copy {n} positions: sequence {from} holds {}",
                self.n_pos[from]
            )));
        }
        let to = self.seq;
        if from != to && n > 0 {
            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
            let kv_bytes = self.cfg.kv_type.bytes();
            for (caches, width) in [(&self.bufs.k_cache, self.cfg.k_dim()), (&self.bufs.v_cache, self.cfg.v_dim())] {
                let row = (width * kv_bytes) as u64;
                if !row.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) {
                    return Err(Error::Usage(format!("cache rows of {row} bytes cannot be copied in whole words")));
                }
                let (src, dst) = ((from * self.n_ctx) as u64 * row, (to * self.n_ctx) as u64 * row);
                for cache in caches {
                    copy_within(&mut enc, cache, src, dst, n as u64 * row, &self.bufs.xt);
                }
            }
            self.ctx.submit(enc.finish(), "the cache copy")?;
        }
        self.n_pos[to] = n;
        Ok(())
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
