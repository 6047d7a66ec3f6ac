//! The sampler's candidates found on the GPU: a decoding step reads back the best k
//! (logit, id) pairs (shaders/topk.wgsl) instead of the whole vocabulary. The CPU twin is
//! `sampler::top_of`; the order is the same (higher logit first, lower id on ties).

use super::buffers::staging_buffer;
use super::builder::Builder;
use super::context::GpuContext;
use super::kernels::{uniform, Dispatch};
use super::params::TopkParams;
use crate::error::{Error, Result};

/// The most candidates one step can ask for; a sampler that needs more reads the whole
/// vocabulary (half of topk.wgsl's SEG, so a merge round always takes new candidates).
pub const TOPK_MAX: usize = 128;
/// Logits per `chunk` workgroup (topk.wgsl's SEG).
const SEG: u32 = 2048;

/// Buffers and dispatches of the top-k passes over one logits buffer, made once at load.
pub struct TopK {
    dispatches: [Dispatch; 2],
    params: wgpu::Buffer,
    /// [TOPK_MAX] (key, id) pairs, best first.
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    n: u32,
    n_chunks: u32,
}

impl TopK {
    /// The passes over `logits` ([n] f32).
    pub fn new(b: &mut Builder<'_>, logits: &wgpu::Buffer, n: u32) -> Result<Self> {
        let n_chunks = n.div_ceil(SEG);
        let pair_buffer = |label: &str, pairs: u64, usage: wgpu::BufferUsages| {
            b.ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pairs * 8,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let cand = pair_buffer("topk candidates", n_chunks as u64 * TOPK_MAX as u64, wgpu::BufferUsages::empty());
        let out = pair_buffer("topk out", TOPK_MAX as u64, wgpu::BufferUsages::COPY_SRC);
        let params = uniform(b.ctx, "topk params", &TopkParams { n, kp: 1, n_chunks, _pad: 0 });
        let dispatches = b.topk(logits, &cand, &out, &params, (n, n_chunks))?;
        let staging = staging_buffer(b.ctx, "topk staging", TOPK_MAX as u64 * 8);
        Ok(TopK { dispatches, params, out, staging, n, n_chunks })
    }

    /// Candidates recorded for a request of `k` (a power of two, the shader sorts in those).
    pub fn kept(k: usize) -> usize {
        k.max(1).next_power_of_two()
    }

    /// Record the passes for the best `k` (at most TOPK_MAX) and their copy into the
    /// staging buffer, after the step that wrote the logits.
    pub fn record(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, k: usize) -> Result<()> {
        if k == 0 || k > TOPK_MAX {
            return Err(Error::Usage(format!("the GPU finds 1 to {TOPK_MAX} candidates, not {k}")));
        }
        let kp = Self::kept(k) as u32;
        let p = TopkParams { n: self.n, kp, n_chunks: self.n_chunks, _pad: 0 };
        ctx.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&p));
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in &self.dispatches {
                d.record(&mut pass);
            }
        }
        enc.copy_buffer_to_buffer(&self.out, 0, &self.staging, 0, kp as u64 * 8);
        Ok(())
    }

    /// Wait for the recorded passes and return the best `k` (id, logit), best first.
    pub fn read(&self, ctx: &GpuContext, k: usize) -> Result<Vec<(u32, f32)>> {
        let mut words = vec![0f32; Self::kept(k) * 2];
        super::buffers::read_staging(ctx, &self.staging, &mut words)?;
        let pairs = words.chunks_exact(2).map(|w| (w[1].to_bits(), logit_of_key(w[0].to_bits())));
        Ok(pairs.take(k.min(self.n as usize)).collect())
    }
}

/// The inverse of topk.wgsl's `key`: positive floats had their sign bit set, negative
/// ones all bits flipped (NaN became 0 and comes back as a NaN).
fn logit_of_key(key: u32) -> f32 {
    f32::from_bits(if key & 0x8000_0000 != 0 { key ^ 0x8000_0000 } else { !key })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shader's `key`, for the round trip.
    fn key(v: f32) -> u32 {
        if v.is_nan() {
            return 0;
        }
        let b = v.to_bits();
        if b & 0x8000_0000 != 0 {
            !b
        } else {
            b | 0x8000_0000
        }
    }

    #[test]
    fn keys_order_as_the_floats_and_come_back() {
        let vals = [f32::NEG_INFINITY, -3.0e38f32, -2.0, -1e-30, -0.0, 0.0, 1e-30, 0.75, 3.0e38, f32::INFINITY];
        for w in vals.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} {}", w[0], w[1]);
        }
        for v in vals {
            assert_eq!(logit_of_key(key(v)).to_bits(), v.to_bits());
        }
        assert!(logit_of_key(key(f32::NAN)).is_nan());
        assert!(key(f32::NAN) < key(f32::NEG_INFINITY));
    }
}
