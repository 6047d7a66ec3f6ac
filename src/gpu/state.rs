//! Every buffer a step reads or writes besides the weights, created once at load with
//! the sizes of the memory plan (`plan.rs`): activations for decoding and for prompt
//! chunks, the KV cache, the RoPE tables, the chunk's token ids, the logits.

use super::buffers::{f32_buffer, f32_buffer_init, staging_buffer, x_buffer};
use super::context::GpuContext;
use super::plan::{activation_floats, ubatch_for};
use crate::cpu::ops::rope_cos_sin;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{rope_factors, Act, Acts, Config, LayerPlan};

/// The activations of a step of up to `tokens` tokens, reused by every layer.
pub struct StepActs {
    /// [tokens, width] per activation
    pub acts: Acts<wgpu::Buffer>,
    /// [n_head, ATTN_MAX_SPLITS, head_dim_v + 2] flash-decoding's partial outputs
    /// (decoding; a chunk's is a placeholder, chunks never split).
    pub partials: wgpu::Buffer,
    /// [n_head, head_dim] and [n_head_kv, head_dim]: decoding's queries and keys as the
    /// attention with the RoPE fused in rotates them (a chunk's are placeholders).
    pub rotated: (wgpu::Buffer, wgpu::Buffer),
}

impl StepActs {
    fn new(ctx: &GpuContext, c: &Config, tokens: usize) -> Self {
        // Sizes from the memory plan, so that the plan and the allocation cannot drift.
        let floats = activation_floats(c, tokens);
        let size = |name: &str| floats.iter().find(|(n, _)| *n == name).map_or(1, |&(_, f)| f);
        // Decoding's activations can be a matvec's X: buffers that can be bound as uniform.
        // The chunk's are labelled apart (their sizes can coincide with decoding's).
        let make = |name: &str| match tokens {
            1 => x_buffer(ctx, name, size(name)),
            _ => f32_buffer(ctx, &format!("chunk {name}"), size(name)),
        };
        let acts = Acts::new(|a: Act| make(a.name()));
        // Labelled as `make` does, so that the memory plan's test tells them apart.
        let other = |name: &str| {
            let label = if tokens == 1 { name.to_string() } else { format!("chunk {name}") };
            f32_buffer(ctx, &label, size(name))
        };
        let (partials, rotated) = (other("partials"), (other("rotated q"), other("rotated k")));
        StepActs { acts, partials, rotated }
    }

    pub fn get(&self, a: Act) -> Option<&wgpu::Buffer> {
        self.acts.get(a)
    }
}

/// [n_ctx, n_rot/2, 2] (cos, sin) f32 for every position, one per distinct (RoPE base,
/// scale) of the layers, computed by the CPU twin's own function so that both executors
/// rotate by identical angles.
pub struct RopeTables(Vec<((u32, u32), wgpu::Buffer)>);

impl RopeTables {
    fn new(ctx: &GpuContext, g: &GgufFile, c: &Config, n_ctx: usize) -> Result<Self> {
        let freq_factors = rope_factors(g, c, n_ctx)?;
        let mut tables: Vec<((u32, u32), wgpu::Buffer)> = Vec::new();
        for plan in &c.layers {
            if tables.iter().any(|(k, _)| *k == key(plan)) {
                continue;
            }
            let mut data = Vec::with_capacity(n_ctx * c.n_rot);
            for pos in 0..n_ctx {
                let ff = freq_factors.as_deref();
                for (cos, sin) in rope_cos_sin(c.n_rot, pos, plan.rope_base, plan.rope_scale, ff, c.rope_attn_factor) {
                    data.extend([cos, sin]);
                }
            }
            tables.push((key(plan), f32_buffer_init(ctx, "rope_table", &data)));
        }
        Ok(RopeTables(tables))
    }

    /// The table a layer with this plan reads.
    pub fn for_layer(&self, plan: &LayerPlan) -> Result<&wgpu::Buffer> {
        let found = self.0.iter().find(|(k, _)| *k == key(plan));
        found.map(|(_, b)| b).ok_or_else(|| Error::Gpu(format!("no RoPE table for base {}", plan.rope_base)))
    }
}

fn key(plan: &LayerPlan) -> (u32, u32) {
    (plan.rope_base.to_bits(), plan.rope_scale.to_bits())
}

pub struct StepBuffers {
    /// One token (decoding).
    pub decode: StepActs,
    /// A prompt chunk of up to `ubatch` tokens.
    pub batch: StepActs,
    pub ubatch: usize,
    /// [ubatch] u32 token ids of the current chunk.
    pub tokens: wgpu::Buffer,
    /// [widest matmul input, ubatch] the column-major chunk the matmuls read.
    pub xt: wgpu::Buffer,
    /// Per layer: [n_seq * n_ctx, k_dim] and [n_seq * n_ctx, v_dim], f32 or f16 pairs
    /// (`Config::kv_type`); sequence s's rows start at s * n_ctx.
    pub k_cache: Vec<wgpu::Buffer>,
    pub v_cache: Vec<wgpu::Buffer>,
    pub rope: RopeTables,
    /// [n_vocab] the decoding step's logits, and where they are read back from.
    pub logits: wgpu::Buffer,
    pub staging: wgpu::Buffer,
}

impl StepBuffers {
    pub fn new(ctx: &GpuContext, g: &GgufFile, c: &Config, n_ctx: usize) -> Result<Self> {
        let ubatch = ubatch_for(n_ctx);
        let decode = StepActs::new(ctx, c, 1);
        let batch = StepActs::new(ctx, c, ubatch);
        let logits = f32_buffer(ctx, "logits", c.n_vocab);
        let tokens = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("chunk tokens"),
            size: (ubatch * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let widest = c.n_embd.max(c.n_head * c.head_dim_v).max(c.n_ff);
        let xt = f32_buffer(ctx, "chunk column-major", widest * ubatch);
        let cache = |what: &str, width: usize| -> Vec<wgpu::Buffer> {
            // As many 32-bit words as the cache type needs (f16: two values per word).
            let words = c.n_seq * n_ctx * width * c.kv_type.bytes() / 4;
            (0..c.n_layer).map(|il| f32_buffer(ctx, &format!("blk.{il}.{what}"), words)).collect()
        };
        let (k_cache, v_cache) = (cache("k_cache", c.k_dim()), cache("v_cache", c.v_dim()));
        let rope = RopeTables::new(ctx, g, c, n_ctx)?;
        let staging = staging_buffer(ctx, "logits staging", (c.n_vocab * 4) as u64);
        Ok(StepBuffers { decode, batch, ubatch, tokens, xt, k_cache, v_cache, rope, logits, staging })
    }
}
