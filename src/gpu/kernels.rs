//! Shader assembly and the pipeline cache. Each kernel is one file in `shaders/`; the
//! matrix kernels are prefixed with `common.wgsl` and the block decoder of the weight
//! type (`shaders/quant/<type>.wgsl`). Pipelines are built once per (kernel, type).

use std::collections::HashMap;

use super::checks::ShaderChecks;
use super::context::GpuContext;
use crate::error::{Error, Result};
use crate::model::{Activation, KvType};
use crate::quant::GgmlType;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const KSCALE: &str = include_str!("../../shaders/quant/kscale.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const ACT: &str = include_str!("../../shaders/act.wgsl");
const MATVEC_ROWS: &str = include_str!("../../shaders/matvec_rows.wgsl");
const ACC_F32: &str = include_str!("../../shaders/acc_f32.wgsl");
const EMBED: &str = include_str!("../../shaders/embed.wgsl");
const MATMUL_MAIN: &str =
    concat!(include_str!("../../shaders/matmul_main.wgsl"), include_str!("../../shaders/xsum.wgsl"));

/// A type's block decoders, with split.wgsl's helpers where the type is uploaded split.
fn quant_source(ty: GgmlType) -> String {
    let file = quant_file(ty).to_string();
    match super::layout::split_scale_bytes(ty) {
        Some(_) => format!("{}\n{file}", include_str!("../../shaders/quant/split.wgsl")),
        None => file,
    }
}

fn quant_file(ty: GgmlType) -> &'static str {
    use GgmlType::*;
    match ty {
        F32 => include_str!("../../shaders/quant/f32.wgsl"),
        F16 => include_str!("../../shaders/quant/f16.wgsl"),
        BF16 => include_str!("../../shaders/quant/bf16.wgsl"),
        Q4_0 => include_str!("../../shaders/quant/q4_0.wgsl"),
        Q4_1 => include_str!("../../shaders/quant/q4_1.wgsl"),
        Q5_0 => include_str!("../../shaders/quant/q5_0.wgsl"),
        Q5_1 => include_str!("../../shaders/quant/q5_1.wgsl"),
        Q8_0 => include_str!("../../shaders/quant/q8_0.wgsl"),
        Q2K => include_str!("../../shaders/quant/q2_k.wgsl"),
        Q3K => include_str!("../../shaders/quant/q3_k.wgsl"),
        Q4K => include_str!("../../shaders/quant/q4_k.wgsl"),
        Q5K => include_str!("../../shaders/quant/q5_k.wgsl"),
        Q6K => include_str!("../../shaders/quant/q6_k.wgsl"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// One token, with X in the buffer kind `MatvecX` says, a row's lanes added up as
    /// `Reduce` says, and the row's sum finished as `Finish` says.
    Matvec(GgmlType, MatvecX, Finish, Reduce, MatvecShape, XNorm),
    /// q, k and v of one token in one dispatch (each tensor of its own type).
    MatvecQkv([GgmlType; 3], MatvecX, Reduce, MatvecShape, XNorm),
    /// A gated FFN's gate and up projections of one token in one dispatch, the activation
    /// applied (each tensor of its own type).
    MatvecGateUp([GgmlType; 2], MatvecX, Reduce, MatvecShape, Activation, XNorm),
    /// Several tokens at once (prompt processing), with X reaching each thread as `MatmulX` says.
    Matmul(GgmlType, MatmulX),
    Embed(GgmlType),
    EmbedBatch(GgmlType),
    RmsNorm,
    RmsNormInplace,
    /// A row normalised in place and added into the residual stream.
    RmsNormAdd,
    /// RoPE of q and k, and the append of k and v to the cache of that type.
    Rope(KvType),
    /// Flash-decoding attention over a cache of that type, with (query heads per
    /// workgroup, value dims per thread and head) as its override constants; with `true`,
    /// one decoding token's RoPE, q/k norms and cache append fused in (`main_rope`).
    Attention(KvType, u32, u32, bool),
    /// The combination of attention's splits.
    AttentionReduce,
    Glu,
    Add,
    Softcap,
    /// Each chunk of the logits sorted, its best candidates kept (topk.wgsl `chunk`).
    TopkChunk,
    /// The chunks' candidates merged into the best ones (topk.wgsl `merge`).
    TopkMerge,
    /// Token-major chunk → column-major, before each prompt matmul.
    Transpose,
    /// The plain f32 copy the profiler measures the adapter's ceiling with.
    Stream,
}

/// A matvec's geometry, its override constants: threads per workgroup (`WG`, a power of
/// two up to 64), lanes per row (`TPR`, a power of two up to `wg`) and rows per slot of
/// lanes (`R`, 1 to `MATVEC_MAX_ROWS`). Chosen per adapter class, or per matrix by the tuner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MatvecShape {
    pub wg: u32,
    pub tpr: u32,
    pub rows: u32,
}

impl MatvecShape {
    /// Rows one workgroup covers.
    pub fn rows_per_group(self) -> u32 {
        self.wg / self.tpr * self.rows
    }

    /// Whether the kernels can be built this way.
    pub fn is_valid(self) -> bool {
        let pow2 = |v: u32| v.is_power_of_two();
        pow2(self.wg)
            && self.wg <= WG
            && pow2(self.tpr)
            && self.tpr <= self.wg
            && (1..=MATVEC_MAX_ROWS).contains(&self.rows)
    }
}

impl std::fmt::Display for MatvecShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.wg, self.tpr, self.rows)
    }
}

/// How one decoding step of several sequences runs (`Executor::decode_batch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batching {
    /// All tokens through the prompt program at once: every weight read once for the batch.
    Together,
    /// Each sequence's token through the decoding program in turn.
    Apart,
}

impl Batching {
    /// Together on GPUs, where decoding is bound by reading the weights; apart on CPU
    /// adapters, which are bound by arithmetic: on lavapipe (AMD EPYC, 2026-12-02) eight
    /// SmolLM2 sequences together decode at 53-65 tokens/s in all against 22-33 for one
    /// apart, but one alone through the prompt program at 8-9 (see README). A sequence's
    /// tokens come from the same kernels whatever else runs, either way, so its answer
    /// does not depend on its neighbours. `LANTERNA_BATCH=together|apart`.
    pub fn for_class(class: AdapterClass) -> Self {
        match std::env::var("LANTERNA_BATCH").as_deref() {
            Ok("together") => Batching::Together,
            Ok("apart") => Batching::Apart,
            _ if class == AdapterClass::Gpu => Batching::Together,
            _ => Batching::Apart,
        }
    }
}

/// What a decoding step reads back for the sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readback {
    /// The whole vocabulary's logits.
    Logits,
    /// The best candidates the sampler needs (`Sampler::needs`), found on the GPU; the
    /// vocabulary only where it needs it all (sampling with top-k 0) or more than `topk::TOPK_MAX`.
    TopK,
}

impl Readback {
    /// Candidates on GPUs, where the vocabulary crosses the bus every token; the logits on
    /// CPU adapters, where a copy is a memcpy and the sort passes cost more than it
    /// (see README). `LANTERNA_READBACK=logits|topk` overrides it.
    pub fn for_class(class: AdapterClass) -> Self {
        match std::env::var("LANTERNA_READBACK").as_deref() {
            Ok("logits") => Readback::Logits,
            Ok("topk") => Readback::TopK,
            _ if class == AdapterClass::Gpu => Readback::TopK,
            _ => Readback::Logits,
        }
    }
}

/// The most splits of the visible positions a decoding attention takes (the partials
/// buffer is sized for them).
pub const ATTN_MAX_SPLITS: usize = 32;
/// attention.wgsl's limits: HEADS * head_dim queries in workgroup memory, HEADS * RV
/// accumulators per thread.
const ATTN_QMAX: u32 = 1024;
const ATTN_HMAX: u32 = 16;
/// The widest head attention's fused RoPE path holds in workgroup memory (NEW_MAX).
pub const ATTN_NEW_MAX: u32 = 512;
/// Workgroups an automatic split aims at: a few per compute unit of a large GPU.
const ATTN_TARGET_GROUPS: u32 = 128;

/// How attention spreads over workgroups (see attention.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnChoice {
    /// The query heads of a KV group share a workgroup (each key and value read once per
    /// group), or take one each (more workgroups, for CPU adapters' threads).
    pub share_group: bool,
    /// Splits of the visible positions when decoding; None: enough to make about
    /// ATTN_TARGET_GROUPS workgroups.
    pub splits: Option<u32>,
}

impl AttnChoice {
    /// Every adapter shares a group's keys and values (on lavapipe too: SmolLM2's attention
    /// 217 µs against 299 µs a head per workgroup); GPUs split the positions to fill their
    /// units, CPU adapters do not (the reduce pass cost lavapipe 235 µs more on Gemma-3 than
    /// the split saved). Forced by `LANTERNA_ATTN_HEADS=group|one`, `LANTERNA_ATTN_SPLITS=N`.
    pub fn for_class(class: AdapterClass) -> Self {
        let gpu = class == AdapterClass::Gpu;
        let share_group = std::env::var("LANTERNA_ATTN_HEADS").as_deref() != Ok("one");
        let env_splits = std::env::var("LANTERNA_ATTN_SPLITS").ok().and_then(|v| v.parse::<u32>().ok());
        let splits = env_splits.map(|n| n.clamp(1, ATTN_MAX_SPLITS as u32)).or(if gpu { None } else { Some(1) });
        AttnChoice { share_group, splits }
    }

    /// Query heads per workgroup for a group of `group` heads: the largest divisor of the
    /// group within the kernel's limits when shared, else 1.
    pub fn heads(self, group: u32, head_dim: u32, rv: u32) -> u32 {
        let fits = |d: u32| d * head_dim <= ATTN_QMAX && d * rv <= ATTN_HMAX;
        match self.share_group {
            true => (1..=group).rev().find(|&d| group.is_multiple_of(d) && fits(d)).unwrap_or(1),
            false => 1,
        }
    }

    /// Splits for a decoding dispatch of `groups` workgroups per split.
    pub fn splits(self, groups: u32) -> u32 {
        let auto = || (ATTN_TARGET_GROUPS / groups.max(1)).max(1);
        self.splits.unwrap_or_else(auto).clamp(1, ATTN_MAX_SPLITS as u32)
    }

    /// The limits a model's heads must keep to (head widths up to 1024).
    pub fn check(head_dim: u32, rv: u32) -> crate::error::Result<()> {
        if head_dim > ATTN_QMAX || rv > ATTN_HMAX {
            let msg = format!("attention supports heads up to {ATTN_QMAX} wide, not {head_dim}");
            return Err(crate::error::Error::Usage(msg));
        }
        Ok(())
    }

    fn describe(self) -> String {
        let heads = if self.share_group { "the query heads of a KV group" } else { "one query head" };
        let splits = self.splits.map_or("splits filling the GPU".to_string(), |n| format!("{n} split(s)"));
        format!("{heads} per workgroup, {splits}")
    }
}

/// How the prompt matmul's threads get the eight token values of a column of X.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulX {
    /// One row a thread, which loads them itself (two vec4 loads): works everywhere.
    Vec4,
    /// One row a thread; one load per subgroup lane and broadcasts: needs subgroups of at
    /// least 8 lanes.
    Subgroup,
    /// Several rows a thread, sharing each unit of columns' x, loaded as in `Subgroup`
    /// (matmul_rows.wgsl): CPU adapters, for the 32-weight block types.
    Rows,
}

/// What a matvec does with a row's sum: ops fused into the projection, so that each
/// saves a dispatch (and on lavapipe the fixed cost of one, ~55 µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Finish {
    /// y = sum.
    Store,
    /// y = act(y) · sum: the up projection with the gated activation (y holds the gate).
    Glu(Activation),
    /// y = sum and z += sum: an output projection with the residual add.
    Add,
}

impl Finish {
    fn suffix(self) -> &'static str {
        match self {
            Finish::Store => "",
            Finish::Glu(_) => "+glu",
            Finish::Add => "+add",
        }
    }

    fn source(self) -> String {
        match self {
            Finish::Store => include_str!("../../shaders/matvec_store.wgsl").into(),
            Finish::Glu(_) => format!("{ACT}\n{}", include_str!("../../shaders/matvec_glu.wgsl")),
            Finish::Add => include_str!("../../shaders/matvec_add.wgsl").into(),
        }
    }
}

/// Whether a decoding matvec takes X as it is or RMS-normalises it itself (the norm
/// fused in front of the projections of its output: one dispatch fewer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XNorm {
    None,
    Rms,
}

impl XNorm {
    fn prefix(self) -> &'static str {
        match self {
            XNorm::None => "",
            XNorm::Rms => "rms_",
        }
    }

    fn source(self) -> &'static str {
        match self {
            XNorm::None => include_str!("../../shaders/matvec_norm_none.wgsl"),
            XNorm::Rms => include_str!("../../shaders/matvec_norm_rms.wgsl"),
        }
    }
}

/// How the lanes of a matvec row add up their partial sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// Through workgroup memory, a barrier per halving: any adapter.
    Workgroup,
    /// Subgroup shuffles within a subgroup (no barrier when a row fits in one), workgroup
    /// memory beyond: adapters with subgroups of one fixed size.
    Subgroup,
}

impl Reduce {
    /// Subgroups where the adapter has them at one fixed size (the shader is built for it);
    /// `LANTERNA_MATVEC_REDUCE=workgroup|subgroup` overrides it (subgroup only where possible).
    pub fn for_adapter(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Self {
        let possible = features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size
            && info.subgroup_min_size.is_power_of_two();
        match std::env::var("LANTERNA_MATVEC_REDUCE").as_deref() {
            Ok("workgroup") => Reduce::Workgroup,
            _ if possible => Reduce::Subgroup,
            _ => Reduce::Workgroup,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Reduce::Workgroup => include_str!("../../shaders/matvec_reduce_wg.wgsl"),
            Reduce::Subgroup => include_str!("../../shaders/matvec_reduce_sg.wgsl"),
        }
    }
}

/// Where the decoding matvec reads X from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatvecX {
    /// A storage buffer: any width; right where lanes split a row (GPUs).
    Storage,
    /// A 64 KiB uniform buffer (`UNIFORM_X_BYTES`), for inputs that fit: on CPU adapters,
    /// one lane per row, it made lavapipe's matvecs 1.2–3.9× faster (`cargo bench --bench matvec`).
    Uniform,
}

/// The size of a uniform X binding (the array in matvec_x_uniform.wgsl).
pub const UNIFORM_X_BYTES: u64 = 65536;

impl MatvecX {
    /// Uniform where one lane owns a row and the adapter binds 64 KiB uniform buffers;
    /// `LANTERNA_MATVEC_X=storage|uniform` overrides it (uniform only where possible).
    pub fn for_adapter(limits: &wgpu::Limits, tpr: u32) -> Self {
        let possible = limits.max_uniform_buffer_binding_size >= UNIFORM_X_BYTES;
        match std::env::var("LANTERNA_MATVEC_X").as_deref() {
            Ok("storage") => MatvecX::Storage,
            Ok("uniform") if possible => MatvecX::Uniform,
            _ if possible && tpr == 1 => MatvecX::Uniform,
            _ => MatvecX::Storage,
        }
    }
}

impl MatmulX {
    /// Subgroup broadcasts where the device has subgroups of 8 or more lanes (on lavapipe
    /// they make the prompt matmul about four times faster), and on CPU adapters several
    /// rows a thread as well (`Rows`, for the types `rows_pays` names).
    /// `LANTERNA_MATMUL_X=vec4|subgroup|rows` overrides it (the last two only where possible).
    pub fn for_adapter(class: AdapterClass, info: &wgpu::AdapterInfo, features: wgpu::Features) -> Self {
        let possible = features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8;
        match std::env::var("LANTERNA_MATMUL_X").as_deref() {
            Ok("vec4") => MatmulX::Vec4,
            Ok("subgroup") if possible => MatmulX::Subgroup,
            Ok("rows") if possible => MatmulX::Rows,
            _ if possible && class == AdapterClass::Cpu => MatmulX::Rows,
            _ if possible => MatmulX::Subgroup,
            _ => MatmulX::Vec4,
        }
    }

    /// Whether `Rows` runs a type: on lavapipe it cut the 32-weight block types' matmul to
    /// about half (Q4_0, Q4_1, Q8_0) and made the K-quants' and floats' slower (their one-row
    /// matmul already costs only 1.5-3× a single-token matvec), and eight copies of a
    /// K-quant decoder over eight tokens take lavapipe minutes to compile.
    pub fn rows_pays(ty: GgmlType) -> bool {
        ty.block_size() == 32
    }

    /// Rows of a weight one workgroup of this variant covers.
    pub fn rows_per_group(self) -> u32 {
        match self {
            MatmulX::Rows => MATMUL_ROWS_WG * MATMUL_ROWS_PER_THREAD,
            MatmulX::Vec4 | MatmulX::Subgroup => WG,
        }
    }
}

impl Kernel {
    /// (binding of a weight tensor, binding of its 16-byte view) for each weight tensor whose
    /// decoder reads the view: W, W0, W1, W2 lie at 0, 0, 5, 6 and the views (matvec.wgsl's
    /// `Wv`, W0v, W1v, W2v) at 12, 12, 13, 14. An entry point's layout holds only the
    /// bindings it reads, so no others may be bound; embed's never call block_dot.
    pub fn weight_views(self) -> Vec<(u32, u32)> {
        const WEIGHTS: [u32; 3] = [0, 5, 6];
        let types: Vec<GgmlType> = match self {
            Kernel::Matvec(t, ..) | Kernel::Matmul(t, _) => vec![t],
            Kernel::MatvecQkv(t, ..) => t.to_vec(),
            Kernel::MatvecGateUp(t, ..) => t.to_vec(),
            _ => Vec::new(),
        };
        (0..types.len()).filter(|&i| reads_vec4(types[i])).map(|i| (WEIGHTS[i], 12 + i as u32)).collect()
    }

    pub fn name(self) -> String {
        match self {
            Kernel::Matvec(t, x, f, r, _, n) => {
                let u = if x == MatvecX::Uniform { "u_" } else { "" };
                let sg = if r == Reduce::Subgroup { "sg_" } else { "" };
                format!("matvec_{u}{sg}{}{}{}", n.prefix(), t.name().to_lowercase(), f.suffix())
            }
            Kernel::MatvecQkv(t, x, r, _, n) => {
                let u = if x == MatvecX::Uniform { "u_" } else { "" };
                let u = if r == Reduce::Subgroup { format!("{u}sg_") } else { u.to_string() };
                let names: Vec<String> = t.iter().map(|t| t.name().to_lowercase()).collect();
                format!("matvec_qkv_{u}{}{}", n.prefix(), names.join("_"))
            }
            Kernel::MatvecGateUp(t, x, r, _, _, n) => {
                let u = if x == MatvecX::Uniform { "u_" } else { "" };
                let u = if r == Reduce::Subgroup { format!("{u}sg_") } else { u.to_string() };
                let names: Vec<String> = t.iter().map(|t| t.name().to_lowercase()).collect();
                format!("matvec_gate_up_{u}{}{}", n.prefix(), names.join("_"))
            }
            Kernel::Matmul(t, MatmulX::Vec4) => format!("matmul_{}", t.name().to_lowercase()),
            Kernel::Matmul(t, MatmulX::Subgroup) => format!("matmul_sg_{}", t.name().to_lowercase()),
            Kernel::Matmul(t, MatmulX::Rows) => format!("matmul_rows_{}", t.name().to_lowercase()),
            Kernel::Embed(t) => format!("embed_{}", t.name().to_lowercase()),
            Kernel::EmbedBatch(t) => format!("embed_batch_{}", t.name().to_lowercase()),
            Kernel::RmsNorm => "rms_norm".into(),
            Kernel::RmsNormInplace => "rms_norm_inplace".into(),
            Kernel::RmsNormAdd => "rms_norm_add".into(),
            Kernel::Rope(kv) => format!("rope{}", kv_suffix(kv)),
            Kernel::Attention(kv, heads, _, false) => format!("attention_h{heads}{}", kv_suffix(kv)),
            Kernel::Attention(kv, heads, _, true) => format!("attention_rope_h{heads}{}", kv_suffix(kv)),
            Kernel::AttentionReduce => "attention_reduce".into(),
            Kernel::Glu => "glu".into(),
            Kernel::Add => "add".into(),
            Kernel::Softcap => "softcap".into(),
            Kernel::TopkChunk => "topk_chunk".into(),
            Kernel::TopkMerge => "topk_merge".into(),
            Kernel::Transpose => "transpose".into(),
            Kernel::Stream => "stream_f32".into(),
        }
    }

    fn source(self) -> (String, &'static str) {
        let quant = |ty: GgmlType, main: &str| format!("{COMMON}\n{KSCALE}\n{}\n{main}", quant_source(ty));
        match self {
            Kernel::Matvec(t, x, f, r, _, n) => {
                let (xs, rs, ns) = (matvec_x_source(x), r.source(), n.source());
                let main = format!("{MATVEC_ROWS}\n{}", include_str!("../../shaders/matvec.wgsl"));
                (format!("{ACC_F32}\n{}\n{xs}\n{}\n{rs}\n{ns}", quant(t, &main), f.source()), "main")
            }
            Kernel::MatvecQkv(types, x, r, _, n) => {
                let decoders: Vec<String> = types
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| suffixed(&format!("{COMMON}\n{KSCALE}\n{}\n{MATVEC_ROWS}", quant_source(t)), i))
                    .collect();
                let main = include_str!("../../shaders/matvec_qkv.wgsl");
                let (xs, rs, ns) = (matvec_x_source(x), r.source(), n.source());
                (format!("{ACC_F32}\n{}\n{main}\n{xs}\n{rs}\n{ns}", decoders.join("\n")), "main")
            }
            Kernel::MatvecGateUp(types, x, r, _, _, n) => {
                let decoders: Vec<String> = types
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| suffixed(&format!("{COMMON}\n{KSCALE}\n{}\n{MATVEC_ROWS}", quant_source(t)), i))
                    .collect();
                let main = include_str!("../../shaders/matvec_gate_up.wgsl");
                let (xs, rs, ns) = (matvec_x_source(x), r.source(), n.source());
                (format!("{ACC_F32}\n{}\n{main}\n{xs}\n{rs}\n{ns}\n{ACT}", decoders.join("\n")), "main")
            }
            Kernel::Matmul(t, x) => {
                let main = match x {
                    MatmulX::Vec4 => MATMUL_MAIN.to_string() + include_str!("../../shaders/matmul_x_vec4.wgsl"),
                    MatmulX::Subgroup => MATMUL_MAIN.to_string() + include_str!("../../shaders/matmul_x_subgroup.wgsl"),
                    MatmulX::Rows => include_str!("../../shaders/matmul_rows.wgsl").to_string(),
                };
                (format!("{}\n{main}", quant(t, include_str!("../../shaders/matmul.wgsl"))), "main")
            }
            Kernel::Embed(t) => (format!("{ACC_F32}\n{}", quant(t, EMBED)), "main"),
            Kernel::EmbedBatch(t) => (format!("{ACC_F32}\n{}", quant(t, EMBED)), "main_batch"),
            Kernel::RmsNorm => (format!("{REDUCE}\n{}", include_str!("../../shaders/rms_norm.wgsl")), "main"),
            Kernel::RmsNormInplace => {
                (format!("{REDUCE}\n{}", include_str!("../../shaders/rms_norm.wgsl")), "main_inplace")
            }
            Kernel::RmsNormAdd => (format!("{REDUCE}\n{}", include_str!("../../shaders/rms_norm.wgsl")), "main_add"),
            Kernel::Rope(_) => (include_str!("../../shaders/rope.wgsl").into(), "main"),
            Kernel::Attention(.., false) => (include_str!("../../shaders/attention.wgsl").into(), "main"),
            Kernel::Attention(.., true) => (include_str!("../../shaders/attention.wgsl").into(), "main_rope"),
            Kernel::AttentionReduce => (include_str!("../../shaders/attention.wgsl").into(), "reduce"),
            Kernel::Glu => (format!("{ACT}\n{}", include_str!("../../shaders/glu.wgsl")), "main"),
            Kernel::Add => (include_str!("../../shaders/add.wgsl").into(), "main"),
            Kernel::Softcap => (include_str!("../../shaders/softcap.wgsl").into(), "main"),
            Kernel::TopkChunk => (include_str!("../../shaders/topk.wgsl").into(), "chunk"),
            Kernel::TopkMerge => (include_str!("../../shaders/topk.wgsl").into(), "merge"),
            Kernel::Transpose => (include_str!("../../shaders/transpose.wgsl").into(), "main"),
            Kernel::Stream => (include_str!("../../shaders/stream.wgsl").into(), "main"),
        }
    }
}

/// Kernels over an f16 cache are named as such in profiles ("attention_sg_kv16").
fn kv_suffix(kv: KvType) -> &'static str {
    match kv {
        KvType::F32 => "",
        KvType::F16 => "_kv16",
    }
}

fn matvec_x_source(x: MatvecX) -> &'static str {
    match x {
        MatvecX::Storage => {
            concat!(include_str!("../../shaders/matvec_x_storage.wgsl"), include_str!("../../shaders/xsum.wgsl"))
        }
        MatvecX::Uniform => include_str!("../../shaders/matvec_x_uniform.wgsl"),
    }
}

/// Whether `ty`'s block_dot reads its weights through `Wv`, the same buffer 16 bytes at a
/// time, besides `W` (gpu_kernels runs every type through every kernel that decodes, so a
/// binding too many or too few fails there).
pub fn reads_vec4(ty: GgmlType) -> bool {
    quant_file(ty).contains("Wv[")
}

/// A copy of WGSL block decoders whose names do not clash with other copies: every
/// function and constant it declares gets the suffix `_n`, and the weights it reads, `W`,
/// become `Wn`. Names it uses but does not declare (`xval`, `acc_t`, builtins) stay.
pub fn suffixed(src: &str, n: usize) -> String {
    let words = |s: &str| -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_alphabetic() || b[i] == b'_' {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push((start, i));
            } else {
                i += 1;
            }
        }
        out
    };
    let spans = words(src);
    let declared: std::collections::HashSet<&str> = spans
        .windows(2)
        .filter(|w| matches!(&src[w[0].0..w[0].1], "fn" | "const" | "struct"))
        .map(|w| &src[w[1].0..w[1].1])
        .collect();
    let mut out = String::with_capacity(src.len() + 256);
    let mut last = 0;
    for &(a, b) in &spans {
        let word = &src[a..b];
        let member = a > 0 && src.as_bytes()[a - 1] == b'.';
        // `W[i]`, and `arrayLength(&W)` in split.wgsl; `Wv[i]`, W 16 bytes at a time.
        let renamed = if word == "W" && (src[b..].starts_with('[') || src[b..].starts_with(')')) {
            Some(format!("W{n}"))
        } else if word == "Wv" && src[b..].starts_with('[') {
            Some(format!("W{n}v"))
        } else if declared.contains(word) && !member {
            Some(format!("{word}_{n}"))
        } else {
            None
        };
        if let Some(r) = renamed {
            out.push_str(&src[last..a]);
            out.push_str(&r);
            last = b;
        }
    }
    out.push_str(&src[last..]);
    out
}

/// Threads per workgroup of every kernel (the `@workgroup_size` in the shaders).
pub const WG: u32 = 64;
/// matmul_rows.wgsl's workgroup (`RW`) and rows per thread (`R`, at most 8): 128 rows a
/// workgroup, as the CPU adapters' matvec (`MatvecShape::default_for`).
pub const MATMUL_ROWS_WG: u32 = 16;
pub const MATMUL_ROWS_PER_THREAD: u32 = 8;

pub struct Kernels {
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    pub max_groups: u32,
    /// The matvec geometry of every matrix the tuner has not measured (see
    /// `MatvecShape::default_for`).
    pub matvec: MatvecShape,
    /// The tuner's choice per matrix (`tune_key`), and where it came from.
    pub tuned: HashMap<String, MatvecShape>,
    pub tuned_from: String,
    /// The prompt matmul's variant (see `MatmulX::for_adapter`; `matmul_x_for` per type).
    pub matmul_x: MatmulX,
    /// Where decoding matvecs read X from, for inputs made by `buffers::x_buffer`.
    pub matvec_x: MatvecX,
    /// How a matvec row's lanes add up, and the subgroup size a subgroup reduction is built for.
    pub matvec_reduce: Reduce,
    pub subgroup_size: u32,
    /// What a decoding step reads back for the sampler.
    pub readback: Readback,
    /// How a step of several sequences runs.
    pub batching: Batching,
    /// How attention spreads over workgroups.
    pub attention: AttnChoice,
    /// The kind of adapter the choices above were made for, and why.
    pub class: AdapterClass,
    pub class_from: &'static str,
    /// Whether naga's runtime checks wrap the kernels, and why.
    pub checks: ShaderChecks,
    pub checks_from: &'static str,
}

/// The kind of adapter every per-adapter choice is made for: a GPU (many lanes per matvec
/// row, X from storage) or a CPU adapter such as lavapipe (one lane per row, X from a
/// uniform buffer). `LANTERNA_ADAPTER_CLASS=gpu|cpu` makes the choices as for that kind,
/// so that a GPU's configuration runs, and is tested, on lavapipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterClass {
    Gpu,
    Cpu,
}

impl AdapterClass {
    /// The adapter's own kind, or the one `LANTERNA_ADAPTER_CLASS` names.
    pub fn of(info: &wgpu::AdapterInfo) -> Result<(Self, &'static str)> {
        match std::env::var("LANTERNA_ADAPTER_CLASS").as_deref() {
            Ok("gpu") => Ok((AdapterClass::Gpu, "LANTERNA_ADAPTER_CLASS")),
            Ok("cpu") => Ok((AdapterClass::Cpu, "LANTERNA_ADAPTER_CLASS")),
            Ok(other) => Err(Error::Usage(format!("LANTERNA_ADAPTER_CLASS={other}: expected gpu or cpu"))),
            Err(_) if info.device_type == wgpu::DeviceType::Cpu => Ok((AdapterClass::Cpu, "the adapter's type")),
            Err(_) => Ok((AdapterClass::Gpu, "the adapter's type")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AdapterClass::Gpu => "gpu",
            AdapterClass::Cpu => "cpu",
        }
    }
}

/// Rows per lane group most a matvec thread can own (`RMAX` in matvec.wgsl).
pub const MATVEC_MAX_ROWS: u32 = 16;

impl MatvecShape {
    /// The matvec geometry for a class of adapter. CPU adapters (lavapipe) run a
    /// workgroup's invocations as SIMD lanes on one core: one lane per row (no reduction, no
    /// barriers), 8 rows per lane so that each x loaded serves 8 rows, workgroups of 16 (128
    /// rows), small enough that a 576-row matrix still spreads over the cores (SmolLM2's
    /// matvecs ran about 2× faster on lavapipe than with one row per lane). GPUs: 32 lanes
    /// per row so that a row's loads coalesce, one row per slot, workgroups of 64.
    /// `LANTERNA_MATVEC_TPR`, `_ROWS` and `_WG` override each part (invalid values are ignored).
    pub fn default_for(class: AdapterClass) -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        let (wg, tpr, rows) = match class {
            AdapterClass::Cpu => (16, 1, 8),
            AdapterClass::Gpu => (WG, 32, 1),
        };
        let pow2 = |v: &u32| v.is_power_of_two() && *v <= WG;
        let tpr = env("LANTERNA_MATVEC_TPR").filter(pow2).unwrap_or(tpr);
        let rows = env("LANTERNA_MATVEC_ROWS").filter(|r| (1..=MATVEC_MAX_ROWS).contains(r)).unwrap_or(rows);
        let wg = env("LANTERNA_MATVEC_WG").filter(pow2).unwrap_or(wg);
        MatvecShape { wg: wg.max(tpr), tpr, rows }
    }
}

impl Kernels {
    /// The prompt matmul variant a weight type runs: `Rows` only for the types it pays for
    /// (`MatmulX::rows_pays`), subgroups for the others.
    pub fn matmul_x_for(&self, ty: GgmlType) -> MatmulX {
        match self.matmul_x {
            MatmulX::Rows if !MatmulX::rows_pays(ty) => MatmulX::Subgroup,
            x => x,
        }
    }

    /// The geometry of the matvec with tuning key `key`: the tuner's, else the default.
    pub fn matvec_shape(&self, key: &str) -> MatvecShape {
        self.tuned.get(key).copied().unwrap_or(self.matvec)
    }

    fn tuning_note(&self) -> String {
        if self.tuned.is_empty() {
            " (defaults, not tuned)".into()
        } else {
            format!(" by default, {} matrices tuned ({})", self.tuned.len(), self.tuned_from)
        }
    }

    pub fn new(limits: &wgpu::Limits) -> Self {
        Kernels {
            pipelines: HashMap::new(),
            max_groups: limits.max_compute_workgroups_per_dimension,
            matvec: MatvecShape { wg: WG, tpr: 8, rows: 1 },
            tuned: HashMap::new(),
            tuned_from: String::new(),
            matmul_x: MatmulX::Vec4,
            matvec_x: MatvecX::Storage,
            matvec_reduce: Reduce::Workgroup,
            subgroup_size: 0,
            readback: Readback::Logits,
            batching: Batching::Apart,
            attention: AttnChoice { share_group: true, splits: Some(1) },
            class: AdapterClass::Gpu,
            class_from: "the defaults",
            checks: ShaderChecks::On,
            checks_from: "the defaults",
        }
    }

    /// The kernel variants that suit the device best (or the class `LANTERNA_ADAPTER_CLASS` names).
    pub fn for_device(ctx: &GpuContext) -> Result<Self> {
        Self::for_adapter(&ctx.info, &ctx.limits, ctx.features)
    }

    /// What `for_device` would choose on an adapter with this info, limits and features.
    pub fn for_adapter(info: &wgpu::AdapterInfo, limits: &wgpu::Limits, features: wgpu::Features) -> Result<Self> {
        let (class, why) = AdapterClass::of(info)?;
        let matvec = MatvecShape::default_for(class);
        let (checks, checks_from) = ShaderChecks::for_adapter(info)?;
        Ok(Kernels {
            checks,
            checks_from,
            class,
            class_from: why,
            matvec,
            matmul_x: MatmulX::for_adapter(class, info, features),
            matvec_x: MatvecX::for_adapter(limits, matvec.tpr),
            matvec_reduce: Reduce::for_adapter(info, features),
            subgroup_size: info.subgroup_min_size,
            readback: Readback::for_class(class),
            batching: Batching::for_class(class),
            attention: AttnChoice::for_class(class),
            ..Self::new(limits)
        })
    }

    /// The configuration in use and where it came from, for people.
    pub fn describe(&self) -> String {
        format!(
            "{} class (from {}): matvec threads/lanes per row/rows per lane group {}{}, added up by {:?}, X from {:?}; matmul X {}; attention: {}; reads back {:?}; sequences batched {:?}; naga's runtime checks {:?} (from {})",
            self.class.name(),
            self.class_from,
            self.matvec,
            self.tuning_note(),
            self.matvec_reduce,
            self.matvec_x,
            match self.matmul_x {
                MatmulX::Rows => "Rows (32-weight block types; Subgroup for the others)".to_string(),
                x => format!("{x:?}"),
            },
            self.attention.describe(),
            self.readback,
            self.batching,
            self.checks,
            self.checks_from
        )
    }

    /// The pipeline of a kernel, compiled on first use; a WGSL or validation error
    /// becomes an error naming the kernel.
    pub fn get(&mut self, device: &wgpu::Device, k: Kernel) -> Result<&wgpu::ComputePipeline> {
        if !self.pipelines.contains_key(&k) {
            let (src, entry) = k.source();
            let constants: Vec<(&str, f64)> = match k {
                Kernel::Matvec(_, _, f, r, shape, _) => self.matvec_constants(r, Some(f), shape),
                Kernel::MatvecQkv(_, _, r, shape, _) => self.matvec_constants(r, None, shape),
                Kernel::MatvecGateUp(_, _, r, shape, act, _) => self.matvec_constants(r, Some(Finish::Glu(act)), shape),
                Kernel::Rope(kv) => vec![("KV_F16", (kv == KvType::F16) as u32 as f64)],
                Kernel::Matmul(_, MatmulX::Rows) => {
                    vec![("RW", MATMUL_ROWS_WG as f64), ("R", MATMUL_ROWS_PER_THREAD as f64)]
                }
                Kernel::Attention(kv, heads, rv, _) => {
                    vec![("KV_F16", (kv == KvType::F16) as u32 as f64), ("HEADS", heads as f64), ("RV", rv as f64)]
                }
                _ => Vec::new(),
            };
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = self.checks.module(device, &k.name(), src);
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&k.name()),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::Kernel { kernel: k.name(), msg: e.to_string() });
            }
            self.pipelines.insert(k, p);
        }
        Ok(&self.pipelines[&k])
    }

    /// A matvec's override constants: lanes per row, the subgroup size its reduction is
    /// built for, the fused activation.
    fn matvec_constants(&self, r: Reduce, f: Option<Finish>, shape: MatvecShape) -> Vec<(&'static str, f64)> {
        let mut c = vec![("TPR", shape.tpr as f64), ("R", shape.rows as f64), ("WG", shape.wg as f64)];
        if r == Reduce::Subgroup {
            c.push(("SG", self.subgroup_size as f64));
        }
        if let Some(Finish::Glu(act)) = f {
            c.push(("ACT", (act == Activation::GeluTanh) as u32 as f64));
        }
        c
    }

    /// Workgroup counts for `n` workgroups, spilling into y past the per-dimension limit.
    pub fn groups(&self, n: u32) -> Groups {
        if n <= self.max_groups {
            Groups::Fixed(n.max(1), 1, 1)
        } else {
            Groups::Fixed(self.max_groups, n.div_ceil(self.max_groups), 1)
        }
    }
}

pub fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, v: &T) -> wgpu::Buffer {
    ctx.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(v),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// A bind group for `pipeline` with `buffers` at bindings 0, 1, 2, …
pub fn bind(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let layout = pipeline.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> =
        buffers.iter().map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() }).collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout: &layout, entries: &entries })
}

/// Bytes a dispatch moves through memory, from the shapes and types it works on
/// (each input read once, each output written once): the profiler's GB/s.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub read: u64,
    pub written: u64,
    /// Extra bytes read per cached position (attention over the KV cache).
    pub read_per_pos: u64,
}

impl Traffic {
    pub fn at(&self, n_pos: u32) -> (u64, u64) {
        (self.read + self.read_per_pos * n_pos as u64, self.written)
    }
}

/// Workgroup counts of a dispatch, fixed or growing with the tokens of the step.
#[derive(Clone, Copy, Debug)]
pub enum Groups {
    Fixed(u32, u32, u32),
    /// (x, ceil(n_tokens / per), 1): one y row per token (or per `per` tokens).
    PerToken {
        x: u32,
        per: u32,
    },
    /// ceil(n_tokens * per_token / per_group) workgroups, spilled into y past the limit.
    Flat {
        per_token: u32,
        per_group: u32,
        max: u32,
    },
}

impl Groups {
    pub fn at(&self, n_tokens: u32) -> (u32, u32, u32) {
        match *self {
            Groups::Fixed(x, y, z) => (x, y, z),
            Groups::PerToken { x, per } => (x, n_tokens.div_ceil(per).max(1), 1),
            Groups::Flat { per_token, per_group, max } => {
                let n = (n_tokens * per_token).div_ceil(per_group).max(1);
                if n <= max {
                    (n, 1, 1)
                } else {
                    (max, n.div_ceil(max), 1)
                }
            }
        }
    }
}

/// One dispatch, recorded once at load and replayed every token.
pub struct Dispatch {
    pub kernel: Kernel,
    /// What it computes, for profiles and errors: "blk.3.attn_q".
    pub label: String,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub groups: Groups,
    pub traffic: Traffic,
    /// The buffer it writes and how many floats: what `compare` captures and what a
    /// deliberate perturbation modifies.
    pub output: Option<(wgpu::Buffer, u32)>,
    /// The matrix a matvec works on, as the tuner names it (`builder::tune_key`).
    pub tune_key: Option<String>,
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.record_n(pass, 1);
    }

    /// Record for a step of `n_tokens` tokens.
    pub fn record_n(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: u32) {
        let (x, y, z) = self.groups.at(n_tokens);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixed_renames_declarations_and_both_views_of_the_weights() {
        let src =
            "const A: u32 = 1u;\nfn f(i: u32) -> u32 { return W[i] + Wv[i].x + A + arrayLength(&W) + g(i) + s.W; }";
        let out = suffixed(src, 2);
        assert!(out.contains("const A_2:") && out.contains("fn f_2("), "{out}");
        assert!(out.contains("W2[i]") && out.contains("W2v[i].x") && out.contains("arrayLength(&W2)"), "{out}");
        // Names used but not declared here, and members, stay.
        assert!(out.contains("+ A_2 +") && out.contains("g(i)") && out.contains("s.W;"), "{out}");
    }

    #[test]
    fn the_decoders_that_read_16_bytes_at_a_time_are_the_aligned_ones() {
        use GgmlType::*;
        for ty in GgmlType::ALL {
            // Wv needs every block's quants on 16 bytes: the split Q4_0/Q4_1/Q8_0 bodies,
            // Q4_K's 144-byte blocks and the split Q6_K's 208-byte bodies.
            assert_eq!(reads_vec4(ty), matches!(ty, Q4_0 | Q4_1 | Q8_0 | Q4K | Q6K), "{ty}");
        }
    }
}
