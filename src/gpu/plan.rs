//! The GPU memory plan: every buffer the GPU executor will create for a model at a context
//! size, computed from the file and the configuration alone — before anything is uploaded —
//! so that a model that cannot fit the adapter is refused with the figures, and `info` can
//! show where the bytes go. `GpuModel::load_on` allocates exactly these buffers (a test
//! counts them).

use super::buffers::x_buffer_floats;
use super::kernels::ATTN_MAX_SPLITS;
use super::params::Step;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{Act, Config, ModelWeights};
use crate::quant::GgmlType;

/// Tokens per prompt chunk (the `ubatch`), at most.
pub const DEFAULT_UBATCH: usize = 64;
const _: () = assert!(DEFAULT_UBATCH <= super::params::STEP_TOKENS);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Weights,
    KvCache,
    Activations,
    /// Prompt-chunk scratch, RoPE tables, token ids, logits and their readback.
    Other,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Weights => "weights",
            Category::KvCache => "KV cache",
            Category::Activations => "activations",
            Category::Other => "tables, logits, scratch",
        }
    }
}

/// Buffers of one kind: `count` buffers, `bytes` in all, the largest `largest` bytes.
#[derive(Clone, Debug)]
pub struct PlanItem {
    pub what: String,
    pub category: Category,
    pub count: u64,
    pub bytes: u64,
    pub largest: u64,
    /// The largest buffer is bound whole as one storage binding (weights are split by rows
    /// instead, so for them `largest` is one row).
    pub bound_whole: bool,
    /// Bytes of the largest buffer per context position (0: independent of the context).
    pub per_position: u64,
    pub ty: Option<GgmlType>,
    /// Weights (elements) of a weight item; 0 otherwise.
    pub elements: u64,
}

pub struct MemoryPlan {
    pub n_ctx: usize,
    pub ubatch: usize,
    pub items: Vec<PlanItem>,
}

/// Floats of each activation buffer for steps of `tokens` tokens (`Act::LAYER`, then the
/// attention partials), as `state.rs` allocates them.
pub fn activation_floats(c: &Config, tokens: usize) -> Vec<(&'static str, usize)> {
    let layer = Act::LAYER.iter().map(|a| (a.name(), tokens * a.width(c)));
    // Decoding's activations are `x_buffer`s (a matvec may bind them as uniform): padded.
    let layer = layer.map(|(n, f)| (n, if tokens == 1 { x_buffer_floats(f) } else { f }));
    // Flash-decoding's per-split partial outputs (decoding only: a chunk never splits).
    let partials = if tokens == 1 { c.n_head * ATTN_MAX_SPLITS * (c.head_dim_v + 2) } else { 1 };
    // Decoding's queries and keys as the attention with the RoPE fused in rotates them.
    let (rq, rk) = if tokens == 1 { (c.n_head * c.head_dim, c.n_head_kv * c.head_dim) } else { (1, 1) };
    layer.chain([("partials", partials), ("rotated q", rq), ("rotated k", rk)]).collect()
}

/// The prompt chunk size for a context: 64, or less for a tiny context (a multiple of 8).
pub fn ubatch_for(n_ctx: usize) -> usize {
    DEFAULT_UBATCH.min(n_ctx.div_ceil(8) * 8)
}

/// Distinct RoPE tables (one per (base, scale) pair of the layers).
pub fn rope_tables(c: &Config) -> usize {
    let mut keys: Vec<(u32, u32)> = c.layers.iter().map(|p| (p.rope_base.to_bits(), p.rope_scale.to_bits())).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

/// Bytes of an f32 buffer of `n` floats as `f32_buffer` makes it (never empty).
fn f32_bytes(n: usize) -> u64 {
    (n.max(1) * 4) as u64
}

/// `count` buffers of `each` bytes, each bound whole.
fn item(what: String, category: Category, count: u64, each: u64, per_position: u64) -> PlanItem {
    PlanItem {
        what,
        category,
        count,
        bytes: count * each,
        largest: each,
        bound_whole: true,
        per_position,
        ty: None,
        elements: 0,
    }
}

/// Weights by type, as the loader hands them over (fused tensors as their parts), largest first.
fn weight_items(g: &GgufFile, c: &Config) -> Result<Vec<PlanItem>> {
    let mut weights: Vec<PlanItem> = Vec::new();
    ModelWeights::load(c, g, |t| {
        let row =
            t.ty.row_bytes(t.row_len() as u64)
                .ok_or_else(|| Error::tensor(&t.name, "row is not a whole number of blocks"))?;
        match weights.iter_mut().find(|w| w.ty == Some(t.ty)) {
            Some(w) => {
                w.count += 1;
                w.bytes += t.n_bytes;
                w.elements += t.n_elements;
                w.largest = w.largest.max(row);
            }
            None => weights.push(PlanItem {
                what: format!("{} weights", t.ty),
                category: Category::Weights,
                count: 1,
                bytes: t.n_bytes,
                largest: row,
                bound_whole: false,
                per_position: 0,
                ty: Some(t.ty),
                elements: t.n_elements,
            }),
        }
        Ok(())
    })?;
    weights.sort_by_key(|w| std::cmp::Reverse(w.bytes));
    Ok(weights)
}

/// The KV cache and the activations of a decoding step and of a prompt chunk.
fn step_items(c: &Config, n_ctx: usize, ubatch: usize) -> Vec<PlanItem> {
    let n_layer = c.n_layer as u64;
    let mut items = Vec::new();
    for (what, width) in [("K cache, one buffer per layer", c.k_dim()), ("V cache, one buffer per layer", c.v_dim())] {
        // A position of the context costs a row in every sequence's region.
        let per_pos = (c.n_seq * width * c.kv_type.bytes()) as u64;
        let seqs = if c.n_seq > 1 { format!(", {} sequences", c.n_seq) } else { String::new() };
        let what = format!("{what} ({}{seqs})", c.kv_type.name());
        items.push(item(what, Category::KvCache, n_layer, n_ctx as u64 * per_pos, per_pos));
    }
    for (tokens, step) in [(1, "decoding"), (ubatch, "prompt chunk")] {
        for (name, floats) in activation_floats(c, tokens) {
            let what = format!("{name} ({step}, {tokens} tokens)");
            items.push(item(what, Category::Activations, 1, f32_bytes(floats), 0));
        }
    }
    items
}

/// Prompt-chunk scratch, RoPE tables, token ids, logits and their readback.
/// topk.rs's candidate buffer: TOPK_MAX (key, id) pairs per 2048 logits.
fn topk_candidate_bytes(n_vocab: usize) -> u64 {
    (n_vocab.div_ceil(2048) * super::topk::TOPK_MAX * 8) as u64
}

fn other_items(c: &Config, n_ctx: usize, ubatch: usize) -> Vec<PlanItem> {
    let widest = c.n_embd.max(c.n_head * c.head_dim_v).max(c.n_ff);
    let (n_tables, table) = (rope_tables(c) as u64, f32_bytes(n_ctx * c.n_rot));
    let mut staging = item("logits readback".into(), Category::Other, 1, (c.n_vocab * 4).max(4) as u64, 0);
    staging.bound_whole = false;
    let topk_bytes = (super::topk::TOPK_MAX * 8) as u64;
    let mut topk_out = item("top-k result and its readback".into(), Category::Other, 2, topk_bytes, 0);
    topk_out.bound_whole = false;
    vec![
        item("prompt chunk, column-major".into(), Category::Other, 1, f32_bytes(widest * ubatch), 0),
        item("chunk token ids".into(), Category::Other, 1, (ubatch * 4) as u64, 0),
        // Each token's position and cache row: the one uniform block larger than a few words.
        item("step uniform (token positions)".into(), Category::Other, 1, std::mem::size_of::<Step>() as u64, 0),
        item("RoPE cos/sin tables".into(), Category::Other, n_tables, table, (c.n_rot * 4) as u64),
        item("logits".into(), Category::Other, 1, f32_bytes(c.n_vocab), 0),
        staging,
        // Where a step reads back candidates (GPUs): each chunk's best, then the best.
        item("top-k candidates".into(), Category::Other, 1, topk_candidate_bytes(c.n_vocab), 0),
        topk_out,
    ]
}

impl MemoryPlan {
    pub fn new(g: &GgufFile, c: &Config, n_ctx: usize) -> Result<Self> {
        let ubatch = ubatch_for(n_ctx);
        let mut items = weight_items(g, c)?;
        items.extend(step_items(c, n_ctx, ubatch));
        items.extend(other_items(c, n_ctx, ubatch));
        Ok(MemoryPlan { n_ctx, ubatch, items })
    }

    pub fn total(&self) -> u64 {
        self.items.iter().map(|i| i.bytes).sum()
    }

    /// Bytes that grow with the context, per position (all buffers together).
    pub fn per_position(&self) -> u64 {
        self.items.iter().map(|i| i.per_position * i.count).sum()
    }

    /// The largest context whose whole plan fits in `memory` bytes (None: not even 1).
    pub fn max_ctx_for_memory(&self, memory: u64) -> Option<usize> {
        let per = self.per_position().max(1);
        let fixed = self.total().saturating_sub(per * self.n_ctx as u64);
        (memory > fixed).then(|| ((memory - fixed) / per) as usize).filter(|&n| n > 0)
    }

    /// The total if every quantized or 16-bit weight matrix were stored as `ty` instead
    /// (F32 tensors — norms and other vectors — stay as they are, as quantizers keep them).
    pub fn total_with_weights_as(&self, ty: GgmlType) -> u64 {
        let per_weight = ty.type_size() as f64 / ty.block_size() as f64;
        self.items
            .iter()
            .map(|i| match i.ty {
                Some(t) if t != GgmlType::F32 => (i.elements as f64 * per_weight).ceil() as u64,
                _ => i.bytes,
            })
            .sum()
    }

    pub fn by_category(&self, c: Category) -> u64 {
        self.items.iter().filter(|i| i.category == c).map(|i| i.bytes).sum()
    }

    /// Refuse a plan whose total exceeds the adapter's memory (where the backend reports
    /// it), naming both figures and what would fit: a smaller context, other weight types.
    pub fn check_memory(&self, memory: Option<u64>, adapter: &str) -> Result<()> {
        let total = self.total();
        let Some(mem) = memory.filter(|&m| total > m) else { return Ok(()) };
        Err(Error::DoesNotFit(format!(
            "need {}, {adapter} offers {} — try {}",
            human_bytes(total),
            human_bytes(mem),
            self.alternatives(mem)
        )))
    }

    /// What would fit in `memory`: the largest smaller context, and totals with smaller
    /// weight types, as "--ctx N; Q8_0 weights: X; …".
    pub fn alternatives(&self, memory: u64) -> String {
        let mut alt = Vec::new();
        match self.max_ctx_for_memory(memory) {
            Some(c) if c < self.n_ctx => alt.push(format!("--ctx {c}")),
            _ => {}
        }
        for ty in [GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q4_0] {
            let t = self.total_with_weights_as(ty);
            if t < self.total() {
                alt.push(format!("{} weights: {}", ty.name(), human_bytes(t)));
            }
        }
        if alt.is_empty() {
            "a smaller model".into()
        } else {
            alt.join("; ")
        }
    }

    /// Refuse, before anything is uploaded, a plan with a buffer larger than the adapter
    /// allows; the error names the buffer, both figures, and the largest context that
    /// would fit when the context is what makes it too large.
    pub fn check(&self, limits: &wgpu::Limits, adapter: &str) -> Result<()> {
        let cap = |it: &PlanItem| {
            if it.bound_whole && limits.max_storage_buffer_binding_size < limits.max_buffer_size {
                (limits.max_storage_buffer_binding_size, "max_storage_buffer_binding_size")
            } else {
                (limits.max_buffer_size, "max_buffer_size")
            }
        };
        let Some(it) = self.items.iter().find(|it| it.largest > cap(it).0) else { return Ok(()) };
        let (limit, limit_name) = cap(it);
        let what =
            if it.category == Category::Weights { format!("one row of the {}", it.what) } else { it.what.clone() };
        let hint = if it.per_position > 0 {
            // The largest context every context-sized buffer allows.
            let max_ctx = self
                .items
                .iter()
                .filter(|i| i.per_position > 0)
                .map(|i| {
                    let fixed = i.largest.saturating_sub(i.per_position * self.n_ctx as u64);
                    cap(i).0.saturating_sub(fixed) / i.per_position
                })
                .min()
                .unwrap_or(0);
            let max_ctx = if max_ctx >= 256 { max_ctx / 256 * 256 } else { max_ctx };
            format!("the context of {} is what makes it large — try --ctx {max_ctx}", self.n_ctx)
        } else if it.category == Category::Weights {
            "a file with a smaller quantization or a narrower model may fit".into()
        } else {
            "this model is too large for the adapter".into()
        };
        Err(Error::DoesNotFit(format!(
            "{what} needs {} in one buffer, but {adapter} allows {} ({limit_name}); {hint}",
            human_bytes(it.largest),
            human_bytes(limit)
        )))
    }
}

pub fn human_bytes(b: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = b as f64;
    if f >= KIB * KIB * KIB {
        format!("{:.2} GiB", f / (KIB * KIB * KIB))
    } else if f >= KIB * KIB {
        format!("{:.1} MiB", f / (KIB * KIB))
    } else if f >= KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(category: Category, bytes: u64, per_position: u64, ty: Option<GgmlType>, elements: u64) -> PlanItem {
        PlanItem {
            what: "x".into(),
            category,
            count: 1,
            bytes,
            largest: bytes,
            bound_whole: true,
            per_position,
            ty,
            elements,
        }
    }

    fn plan() -> MemoryPlan {
        // 1000 positions of a 100-byte-per-position cache, 3200 bytes of Q8_0 weights
        // (3200 / 34 * 32 ≈ 3011 weights), 500 bytes of F32 norms.
        MemoryPlan {
            n_ctx: 1000,
            ubatch: 64,
            items: vec![
                item(Category::Weights, 3400, 0, Some(GgmlType::Q8_0), 3200),
                item(Category::Weights, 500, 0, Some(GgmlType::F32), 125),
                item(Category::KvCache, 100_000, 100, None, 0),
            ],
        }
    }

    #[test]
    fn largest_context_for_a_memory_size() {
        let p = plan();
        assert_eq!(p.total(), 103_900);
        // 3900 fixed bytes, 100 per position: 50_000 bytes hold 461 positions.
        assert_eq!(p.max_ctx_for_memory(50_000), Some(461));
        assert_eq!(p.max_ctx_for_memory(3_900), None);
    }

    #[test]
    fn totals_with_other_weight_types_keep_f32_vectors() {
        let p = plan();
        // Q4_0: 18 bytes per 32 weights → 3200 weights take 1800 bytes; F32 norms stay 500.
        assert_eq!(p.total_with_weights_as(GgmlType::Q4_0), 1800 + 500 + 100_000);
    }

    #[test]
    fn a_plan_larger_than_memory_is_refused_with_what_would_fit() {
        let p = plan();
        assert!(p.check_memory(Some(200_000), "gpu").is_ok() && p.check_memory(None, "gpu").is_ok());
        let e = p.check_memory(Some(50_000), "gpu").unwrap_err().to_string();
        assert!(
            e.contains("need 101.5 KiB, gpu offers 48.8 KiB")
                && e.contains("try --ctx 461")
                && e.contains("Q4_0 weights: 99.9 KiB"),
            "{e}"
        );
    }

    #[test]
    fn a_buffer_past_the_binding_limit_is_refused_with_a_context_that_fits() {
        let p = plan();
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 60_000,
            max_buffer_size: 1 << 30,
            ..wgpu::Limits::default()
        };
        let e = p.check(&limits, "test adapter").unwrap_err().to_string();
        // 600 positions fit in 60 000 bytes; the hint rounds down to a multiple of 256.
        assert!(
            e.contains("needs 97.7 KiB in one buffer") && e.contains("allows 58.6 KiB") && e.contains("try --ctx 512"),
            "{e}"
        );
    }
}
