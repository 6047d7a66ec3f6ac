//! The GPU executor: the model definition of `model/` recorded once as lists of
//! dispatches over buffers created at load — one list for decoding (one token per step)
//! and one for prompt processing (chunks of up to `ubatch` tokens, every weight read
//! once per chunk). Each step is one command encoder and one submit; the logits of the
//! step's last token are read back.

use std::time::Instant;

use super::buffers::{f32_buffer, f32_buffer_init, read_staging, staging_buffer, GpuTensor};
use super::builder::{Batch, Builder};
use super::context::{AdapterChoice, GpuContext};
use super::kernels::{Dispatch, Kernels};
use super::params::{AttnParams, Step};
use super::plan::{activation_floats, ubatch_for, MemoryPlan};
use crate::cpu::ops::rope_cos_sin;
use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::gguf::GgufFile;
use crate::model::{rope_factors, Config, ModelWeights};

/// Tokens per prompt-processing chunk (llama.cpp's ubatch); a multiple of MATMUL_TOKENS.
pub use super::plan::DEFAULT_UBATCH;

/// A run of dispatches in one compute pass, or a copy between passes.
pub enum Segment {
    Pass(Vec<Dispatch>),
    /// Append the step's K or V rows (`bytes` per token, in `src`) to a cache at `pos * bytes`.
    CopyKv {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        bytes: u64,
    },
    /// Copy the step's last token row (`bytes` long) of `src` to the start of `dst`.
    CopyLastRow {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        bytes: u64,
    },
}

/// Activation buffers for steps of up to `tokens` tokens, reused by every layer.
struct Acts {
    x: wgpu::Buffer,      // [tokens, n_embd] residual stream
    xn: wgpu::Buffer,     // [tokens, n_embd] normed input of a block
    q: wgpu::Buffer,      // [tokens, n_head * head_dim]
    k: wgpu::Buffer,      // [tokens, n_head_kv * head_dim]
    v: wgpu::Buffer,      // [tokens, n_head_kv * head_dim_v]
    att: wgpu::Buffer,    // [tokens, n_head * head_dim_v]
    o: wgpu::Buffer,      // [tokens, n_embd] block output
    gate: wgpu::Buffer,   // [tokens, n_ff]
    up: wgpu::Buffer,     // [tokens, n_ff]
    scores: wgpu::Buffer, // [tokens, n_head, n_ctx]
}

impl Acts {
    fn new(ctx: &GpuContext, c: &Config, tokens: usize, n_ctx: usize) -> Self {
        // Sizes from the memory plan, so that the plan and the allocation cannot drift.
        let [x, xn, q, k, v, att, o, gate, up, scores] =
            activation_floats(c, tokens, n_ctx).map(|(label, n)| f32_buffer(ctx, label, n));
        Acts { x, xn, q, k, v, att, o, gate, up, scores }
    }
}

/// Everything a recording needs besides the builder and the activations.
struct Model<'a> {
    c: &'a Config,
    w: &'a ModelWeights<GpuTensor>,
    k_cache: &'a [wgpu::Buffer],
    v_cache: &'a [wgpu::Buffer],
    /// (rope base bits, rope scale bits) → cos/sin table
    tables: &'a [((u32, u32), wgpu::Buffer)],
    n_ctx: usize,
}

/// Embedding and every layer, into `a`'s buffers; the passes and cache copies in order.
/// The last pass is left open in `pass` for the caller to finish.
fn record_layers(b: &mut Builder, m: &Model, a: &Acts, segments: &mut Vec<Segment>) -> Result<Vec<Dispatch>> {
    let c = m.c;
    let mut pass: Vec<Dispatch> = b.embed("token_embd", &m.w.token_embd, &a.x, c.embd_scale)?;
    let (e, eps) = (c.n_embd as u32, c.rms_eps);
    for (il, (lw, plan)) in m.w.layers.iter().zip(&c.layers).enumerate() {
        let l = |s: &str| format!("blk.{il}.{s}");
        pass.push(b.rms_norm(&l("attn_norm"), &a.x, &a.xn, &lw.attn_norm.parts[0].buffer, 1, e, eps)?);
        pass.extend(b.matvec(&l("attn_q"), &lw.attn_q, &a.xn, &a.q)?);
        pass.extend(b.matvec(&l("attn_k"), &lw.attn_k, &a.xn, &a.k)?);
        pass.extend(b.matvec(&l("attn_v"), &lw.attn_v, &a.xn, &a.v)?);
        for (name, out, bias, n) in [
            ("attn_q", &a.q, &lw.attn_q_bias, c.q_dim()),
            ("attn_k", &a.k, &lw.attn_k_bias, c.k_dim()),
            ("attn_v", &a.v, &lw.attn_v_bias, c.v_dim()),
        ] {
            if let Some(bias) = bias {
                pass.push(b.add_bias(&format!("{}+bias", l(name)), out, &bias.parts[0].buffer, n as u32)?);
            }
        }
        if let (Some(qn), Some(kn)) = (&lw.attn_q_norm, &lw.attn_k_norm) {
            pass.push(b.rms_norm_inplace(
                &l("attn_q_norm"),
                &a.q,
                &qn.parts[0].buffer,
                c.n_head as u32,
                c.head_dim as u32,
                eps,
            )?);
            pass.push(b.rms_norm_inplace(
                &l("attn_k_norm"),
                &a.k,
                &kn.parts[0].buffer,
                c.n_head_kv as u32,
                c.head_dim as u32,
                eps,
            )?);
        }
        let key = (plan.rope_base.to_bits(), plan.rope_scale.to_bits());
        let table = &m.tables.iter().find(|(k, _)| *k == key).ok_or_else(|| Error::Gpu("missing RoPE table".into()))?.1;
        let (hd, nr) = (c.head_dim as u32, c.n_rot as u32);
        pass.push(b.rope(&l("rope_q"), &a.q, table, c.n_head as u32, hd, nr, c.rope_style)?);
        pass.push(b.rope(&l("rope_k"), &a.k, table, c.n_head_kv as u32, hd, nr, c.rope_style)?);
        segments.push(Segment::Pass(std::mem::take(&mut pass)));
        segments.push(Segment::CopyKv { src: a.k.clone(), dst: m.k_cache[il].clone(), bytes: (c.k_dim() * 4) as u64 });
        segments.push(Segment::CopyKv { src: a.v.clone(), dst: m.v_cache[il].clone(), bytes: (c.v_dim() * 4) as u64 });

        let ap = AttnParams {
            group: (c.n_head / c.n_head_kv) as u32,
            head_dim: hd,
            head_dim_v: c.head_dim_v as u32,
            k_stride: c.k_dim() as u32,
            v_stride: c.v_dim() as u32,
            n_ctx: m.n_ctx as u32,
            window: plan.window.unwrap_or(0) as u32,
            scale: c.attn_scale,
            softcap: c.attn_softcap.unwrap_or(0.0),
            _pad: [0; 3],
        };
        pass.push(b.attention(
            &l("attention"),
            &a.q,
            &m.k_cache[il],
            &m.v_cache[il],
            &a.scores,
            &a.att,
            c.n_head as u32,
            ap,
        )?);
        pass.extend(b.matvec(&l("attn_output"), &lw.attn_output, &a.att, &a.o)?);
        if let Some(n) = &lw.post_attn_norm {
            pass.push(b.rms_norm(&l("post_attention_norm"), &a.o, &a.xn, &n.parts[0].buffer, 1, e, eps)?);
            pass.push(b.add(&l("attn_residual"), &a.x, &a.xn, e)?);
        } else {
            pass.push(b.add(&l("attn_residual"), &a.x, &a.o, e)?);
        }
        pass.push(b.rms_norm(&l("ffn_norm"), &a.x, &a.xn, &lw.ffn_norm.parts[0].buffer, 1, e, eps)?);
        pass.extend(b.matvec(&l("ffn_gate"), &lw.ffn_gate, &a.xn, &a.gate)?);
        pass.extend(b.matvec(&l("ffn_up"), &lw.ffn_up, &a.xn, &a.up)?);
        pass.push(b.glu(&l("ffn_glu"), &a.gate, &a.up, c.n_ff as u32, c.act)?);
        pass.extend(b.matvec(&l("ffn_down"), &lw.ffn_down, &a.gate, &a.o)?);
        if let Some(n) = &lw.post_ffn_norm {
            pass.push(b.rms_norm(&l("post_ffw_norm"), &a.o, &a.xn, &n.parts[0].buffer, 1, e, eps)?);
            pass.push(b.add(&l("ffn_residual"), &a.x, &a.xn, e)?);
        } else {
            pass.push(b.add(&l("ffn_residual"), &a.x, &a.o, e)?);
        }
    }
    Ok(pass)
}

/// Final norm and LM head on one token's residual stream `a.x`, into `logits`.
fn record_head(b: &mut Builder, m: &Model, a: &Acts, logits: &wgpu::Buffer) -> Result<Vec<Dispatch>> {
    let c = m.c;
    let mut pass = vec![b.rms_norm(
        "output_norm",
        &a.x,
        &a.xn,
        &m.w.output_norm.parts[0].buffer,
        1,
        c.n_embd as u32,
        c.rms_eps,
    )?];
    pass.extend(b.matvec("output", m.w.lm_head(), &a.xn, logits)?);
    if let Some(cap) = c.final_softcap {
        pass.push(b.softcap("output+softcap", logits, c.n_vocab as u32, cap)?);
    }
    Ok(pass)
}

/// Final norm and LM head over all tokens of a chunk, into [ubatch, n_vocab] logits.
struct AllHead {
    pass: Vec<Dispatch>,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
}

pub struct GpuModel {
    pub ctx: GpuContext,
    pub cfg: Config,
    pub weights: ModelWeights<GpuTensor>,
    pub(crate) step: wgpu::Buffer,
    /// The decoding step.
    pub segments: Vec<Segment>,
    /// The prompt-processing step (chunks of up to `ubatch` tokens): every layer.
    pub prefill_segments: Vec<Segment>,
    /// After the last chunk: its last row to the decoding buffers, final norm, LM head.
    pub prefill_tail: Vec<Segment>,
    pub ubatch: usize,
    /// [ubatch] u32 token ids of the current chunk.
    tokens: wgpu::Buffer,
    /// [ubatch, n_embd] the chunk's residual stream and its normed copy.
    batch_x: wgpu::Buffer,
    batch_xn: wgpu::Buffer,
    /// [widest matmul input, ubatch] the column-major chunk the matmuls read.
    xt: wgpu::Buffer,
    /// The LM head on every token of a chunk (perplexity), built on first use.
    all_head: Option<AllHead>,
    /// The logits buffer ([n_vocab]).
    pub(crate) acts_logits: wgpu::Buffer,
    pub(crate) profiler: Option<super::profile::Profiler>,
    pub(crate) capture: Option<super::capture::Capture>,
    pub(crate) kernels: Kernels,
    pub(crate) perturb_buffers: Vec<wgpu::Buffer>,
    pub(crate) last_timings: Vec<super::profile::OpTiming>,
    _buffers: Vec<wgpu::Buffer>,
    pub(crate) staging: wgpu::Buffer,
    pub(crate) logits: Vec<f32>,
    n_ctx: usize,
    n_pos: usize,
    pub upload_bytes: u64,
    pub upload_ms: f64,
    /// [n_ctx, n_rot/2, 2] (cos, sin) f32 per distinct (base bits, scale bits) of the layers.
    rope_tables: Vec<((u32, u32), wgpu::Buffer)>,
}

impl GpuModel {
    pub fn load(g: &GgufFile, cfg: Config, n_ctx: usize, choice: &AdapterChoice) -> Result<Self> {
        let ctx = GpuContext::new(choice)?;
        Self::load_on(ctx, g, cfg, n_ctx)
    }

    pub fn load_on(ctx: GpuContext, g: &GgufFile, cfg: Config, n_ctx: usize) -> Result<Self> {
        // Refuse a model or context the adapter cannot hold before uploading anything.
        let plan = MemoryPlan::new(g, &cfg, n_ctx)?;
        plan.check(&ctx.limits, &ctx.describe())?;
        plan.check_memory(super::context::device_memory(&ctx.adapter), &ctx.describe())?;
        // Memory can still run out (other programs, drivers that report no size): catch it.
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let t0 = Instant::now();
        let mut upload_bytes = 0u64;
        // Each upload goes through a staging copy that wgpu frees only once the queue has
        // moved on: flushing every UPLOAD_FLUSH_BYTES keeps the peak near the plan's total
        // instead of twice the weights.
        const UPLOAD_FLUSH_BYTES: u64 = 64 << 20;
        let mut pending = 0u64;
        let weights = ModelWeights::load(&cfg, g, |t| {
            upload_bytes += t.n_bytes;
            pending += t.n_bytes;
            let w = GpuTensor::upload(&ctx, &t.name, t.ty, t.row_len(), t.n_rows(), g.tensor_data(t))?;
            if pending >= UPLOAD_FLUSH_BYTES {
                pending = 0;
                ctx.queue.submit([]);
                ctx.device
                    .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
                    .map_err(|e| Error::Gpu(format!("waiting for the upload: {e}")))?;
            }
            Ok(w)
        })?;
        let c = &cfg;
        let ubatch = ubatch_for(n_ctx);
        let acts = Acts::new(&ctx, c, 1, n_ctx);
        let batch_acts = Acts::new(&ctx, c, ubatch, n_ctx);
        let logits = f32_buffer(&ctx, "logits", c.n_vocab); // [n_vocab]
        let tokens = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("chunk tokens"),
            size: (ubatch * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let widest = c.n_embd.max(c.n_head * c.head_dim_v).max(c.n_ff);
        let xt = f32_buffer(&ctx, "chunk column-major", widest * ubatch); // [widest input, ubatch]
        let k_cache: Vec<wgpu::Buffer> =
            (0..c.n_layer).map(|il| f32_buffer(&ctx, &format!("blk.{il}.k_cache"), n_ctx * c.k_dim())).collect();
        let v_cache: Vec<wgpu::Buffer> =
            (0..c.n_layer).map(|il| f32_buffer(&ctx, &format!("blk.{il}.v_cache"), n_ctx * c.v_dim())).collect();

        // One RoPE table per distinct (base, scale), for every position of the context,
        // computed with the CPU twin's own function.
        let freq_factors = rope_factors(g, &cfg, n_ctx)?;
        let mut tables: Vec<((u32, u32), wgpu::Buffer)> = Vec::new();
        for plan in &c.layers {
            let key = (plan.rope_base.to_bits(), plan.rope_scale.to_bits());
            if !tables.iter().any(|(k, _)| *k == key) {
                let mut data = Vec::with_capacity(n_ctx * c.n_rot);
                for pos in 0..n_ctx {
                    for (cos, sin) in rope_cos_sin(
                        c.n_rot,
                        pos,
                        plan.rope_base,
                        plan.rope_scale,
                        freq_factors.as_deref(),
                        c.rope_attn_factor,
                    ) {
                        data.push(cos);
                        data.push(sin);
                    }
                }
                tables.push((key, f32_buffer_init(&ctx, "rope_table", &data)));
            }
        }

        let step = super::kernels::uniform(&ctx, "step", &Step::default());
        let mut kernels = Kernels::for_device(&ctx);
        let m = Model { c, w: &weights, k_cache: &k_cache, v_cache: &v_cache, tables: &tables, n_ctx };
        let mut segments = Vec::new();
        let mut prefill_segments = Vec::new();
        let mut prefill_tail = Vec::new();
        {
            let mut b = Builder { ctx: &ctx, kernels: &mut kernels, step: &step, batch: None };
            let mut pass = record_layers(&mut b, &m, &acts, &mut segments)?;
            pass.extend(record_head(&mut b, &m, &acts, &logits)?);
            segments.push(Segment::Pass(pass));
        }
        {
            let mut b = Builder {
                ctx: &ctx,
                kernels: &mut kernels,
                step: &step,
                batch: Some(Batch { max_tokens: ubatch as u32, tokens: &tokens, xt: &xt }),
            };
            let pass = record_layers(&mut b, &m, &batch_acts, &mut prefill_segments)?;
            prefill_segments.push(Segment::Pass(pass));
            prefill_tail.push(Segment::CopyLastRow {
                src: batch_acts.x.clone(),
                dst: acts.x.clone(),
                bytes: (c.n_embd * 4) as u64,
            });
            let mut b = Builder { ctx: &ctx, kernels: &mut kernels, step: &step, batch: None };
            prefill_tail.push(Segment::Pass(record_head(&mut b, &m, &acts, &logits)?));
        }

        let staging = staging_buffer(&ctx, "logits staging", (c.n_vocab * 4) as u64);
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::Gpu(format!(
                "out of GPU memory while loading the model (its plan needs {} in all; see `lanterna info --ctx`): {e}",
                super::plan::human_bytes(plan.total())
            )));
        }
        ctx.check_health()?;
        // Make sure everything is on the device before timing stops.
        ctx.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map_err(|e| Error::Gpu(format!("waiting for the upload: {e}")))?;
        let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
        let n_vocab = c.n_vocab;
        let (batch_x, batch_xn) = (batch_acts.x.clone(), batch_acts.xn.clone());
        let mut keep: Vec<wgpu::Buffer> = std::iter::once(xt.clone()).chain(k_cache).chain(v_cache).collect();
        for a in [acts, batch_acts] {
            keep.extend([a.x, a.xn, a.q, a.k, a.v, a.att, a.o, a.gate, a.up, a.scores]);
        }
        Ok(GpuModel {
            ctx,
            cfg,
            weights,
            step,
            segments,
            prefill_segments,
            prefill_tail,
            ubatch,
            tokens,
            batch_x,
            batch_xn,
            xt,
            all_head: None,
            acts_logits: logits,
            profiler: None,
            capture: None,
            kernels,
            perturb_buffers: Vec::new(),
            last_timings: Vec::new(),
            _buffers: keep,
            staging,
            logits: vec![0.0; n_vocab],
            n_ctx,
            n_pos: 0,
            upload_bytes,
            upload_ms,
            rope_tables: tables,
        })
    }

    /// The RoPE table layer `il` reads, copied back from the GPU: [n_ctx, n_rot/2, 2] (cos, sin).
    pub fn rope_table(&self, il: usize) -> Result<Vec<f32>> {
        let plan = self.cfg.layers.get(il).ok_or_else(|| Error::Usage(format!("no layer {il}")))?;
        let key = (plan.rope_base.to_bits(), plan.rope_scale.to_bits());
        let (_, buf) = self
            .rope_tables
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or_else(|| Error::Gpu(format!("no RoPE table for layer {il}")))?;
        super::buffers::read_f32(&self.ctx, buf, self.n_ctx * self.cfg.n_rot)
    }

    /// Record `segments` for a step of `n` tokens starting at `pos`.
    fn encode_segments(&self, enc: &mut wgpu::CommandEncoder, segments: &[Segment], pos: usize, n: u32) {
        for seg in segments {
            match seg {
                Segment::Pass(ds) => {
                    let mut pass =
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    for d in ds {
                        d.record_n(&mut pass, n);
                    }
                }
                Segment::CopyKv { src, dst, bytes } => {
                    enc.copy_buffer_to_buffer(src, 0, dst, pos as u64 * bytes, n as u64 * bytes)
                }
                Segment::CopyLastRow { src, dst, bytes } => {
                    enc.copy_buffer_to_buffer(src, (n as u64 - 1) * bytes, dst, 0, *bytes)
                }
            }
        }
    }

    /// Record the whole decoding step for position `pos` into one command encoder.
    fn encode(&self, pos: usize) -> wgpu::CommandBuffer {
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("token") });
        if self.capture.is_some() {
            self.encode_captured(pos, &mut enc);
        } else {
            self.encode_segments(&mut enc, &self.segments, pos, 1);
        }
        enc.copy_buffer_to_buffer(&self.acts_logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
        enc.finish()
    }

    /// An encoder holding every layer for one prompt chunk at `p0` (ids and Step written).
    fn chunk_encoder(&self, chunk: &[u32], p0: usize) -> wgpu::CommandEncoder {
        let n = chunk.len() as u32;
        let mut ids = chunk.to_vec();
        ids.resize(self.ubatch, 0);
        self.ctx.queue.write_buffer(&self.tokens, 0, bytemuck::cast_slice(&ids));
        let step = Step { token: chunk[0], pos: p0 as u32, n_pos: p0 as u32 + 1, n_tokens: n };
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        let mut enc =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("prompt chunk") });
        self.encode_segments(&mut enc, &self.prefill_segments, p0, n);
        enc
    }

    /// Build the all-token LM head (perplexity) on first use; refused with the figures if
    /// its [ubatch, n_vocab] logits exceed one binding.
    fn ensure_all_head(&mut self) -> Result<()> {
        if self.all_head.is_some() {
            return Ok(());
        }
        let c = &self.cfg;
        let floats = self.ubatch * c.n_vocab;
        let cap = self.ctx.limits.max_storage_buffer_binding_size.min(self.ctx.limits.max_buffer_size);
        if (floats * 4) as u64 > cap {
            return Err(Error::DoesNotFit(format!(
                "the logits of a {}-token chunk need {} in one buffer, but {} allows {}",
                self.ubatch,
                super::plan::human_bytes((floats * 4) as u64),
                self.ctx.describe(),
                super::plan::human_bytes(cap)
            )));
        }
        let logits = f32_buffer(&self.ctx, "all-token logits", floats); // [ubatch, n_vocab]
        let staging = staging_buffer(&self.ctx, "all-token logits staging", (floats * 4) as u64);
        let mut b = Builder {
            ctx: &self.ctx,
            kernels: &mut self.kernels,
            step: &self.step,
            batch: Some(Batch { max_tokens: self.ubatch as u32, tokens: &self.tokens, xt: &self.xt }),
        };
        let mut pass = vec![b.rms_norm(
            "output_norm",
            &self.batch_x,
            &self.batch_xn,
            &self.weights.output_norm.parts[0].buffer,
            1,
            c.n_embd as u32,
            c.rms_eps,
        )?];
        pass.extend(b.matvec("output", self.weights.lm_head(), &self.batch_xn, &logits)?);
        if let Some(cap) = c.final_softcap {
            pass.push(b.softcap("output+softcap", &logits, floats as u32, cap)?);
        }
        self.all_head = Some(AllHead { pass, logits, staging });
        Ok(())
    }

    fn check(&self, tokens: &[u32], pos: usize) -> Result<()> {
        if pos != self.n_pos {
            return Err(Error::Context(format!("position {pos} given, but the cache holds {} positions", self.n_pos)));
        }
        if pos + tokens.len() > self.n_ctx {
            return Err(Error::Context(format!(
                "positions up to {} are past the context size {}",
                pos + tokens.len(),
                self.n_ctx
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.cfg.n_vocab) {
            return Err(Error::Usage(format!("token id {t} is outside the vocabulary of {}", self.cfg.n_vocab)));
        }
        Ok(())
    }

    fn submit(&self, cmd: wgpu::CommandBuffer) -> Result<()> {
        self.ctx.check_health()?;
        let oom = self.ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let scope = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.ctx.queue.submit(std::iter::once(cmd));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("step rejected: {e}")));
        }
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::Gpu(format!("out of GPU memory during the step: {e}")));
        }
        Ok(())
    }

    /// Wait for the step and read its logits; a lost device or fault becomes an error.
    fn read_logits(&mut self) -> Result<()> {
        let r = read_staging(&self.ctx, &self.staging, &mut self.logits);
        self.ctx.check_health()?;
        r
    }
}

impl Executor for GpuModel {
    fn name(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn reset(&mut self) {
        self.n_pos = 0;
    }

    fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32]> {
        self.check(&[token], pos)?;
        let step = Step { token, pos: pos as u32, n_pos: pos as u32 + 1, n_tokens: 1 };
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        if self.profiler.is_some() {
            self.step_profiled(pos)?;
        } else {
            self.submit(self.encode(pos))?;
            self.read_logits()?;
        }
        self.n_pos += 1;
        Ok(&self.logits)
    }

    /// The prompt in chunks of `ubatch` tokens: each weight is read once per chunk, and
    /// the K/V of the whole chunk are written at once; the LM head runs once, on the last
    /// token. Profiling and capture need one token per step, so with either on this falls
    /// back to `forward`.
    fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<&[f32]> {
        if self.profiler.is_some() || self.capture.is_some() || tokens.len() == 1 {
            for (i, &t) in tokens.iter().enumerate() {
                self.forward(t, pos + i)?;
            }
            return Ok(&self.logits);
        }
        self.check(tokens, pos)?;
        if tokens.is_empty() {
            return Err(Error::Usage("no tokens to process".into()));
        }
        let n_chunks = tokens.len().div_ceil(self.ubatch);
        for (ci, chunk) in tokens.chunks(self.ubatch).enumerate() {
            let p0 = pos + ci * self.ubatch;
            let mut enc = self.chunk_encoder(chunk, p0);
            if ci + 1 == n_chunks {
                self.encode_segments(&mut enc, &self.prefill_tail, p0, chunk.len() as u32);
                enc.copy_buffer_to_buffer(&self.acts_logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
            }
            self.submit(enc.finish())?;
            self.n_pos += chunk.len();
        }
        self.read_logits()?;
        Ok(&self.logits)
    }

    /// Chunked like `prefill`, with the LM head on every token of the chunks that hold
    /// indices `from..`: one matmul per chunk instead of a matvec per token.
    fn logits_from(&mut self, tokens: &[u32], pos: usize, from: usize) -> Result<Vec<f32>> {
        let n_vocab = self.cfg.n_vocab;
        if self.profiler.is_some() || self.capture.is_some() {
            let mut out = Vec::new();
            for (i, &t) in tokens.iter().enumerate() {
                let l = self.forward(t, pos + i)?;
                if i >= from {
                    out.extend_from_slice(l);
                }
            }
            return Ok(out);
        }
        self.check(tokens, pos)?;
        self.ensure_all_head()?;
        let mut out = Vec::with_capacity(tokens.len().saturating_sub(from) * n_vocab);
        for (ci, chunk) in tokens.chunks(self.ubatch).enumerate() {
            let start = ci * self.ubatch;
            let p0 = pos + start;
            let n = chunk.len();
            let mut enc = self.chunk_encoder(chunk, p0);
            let wanted = start + n > from;
            let head = self.all_head.as_ref().ok_or_else(|| Error::Gpu("all-token head missing".into()))?;
            if wanted {
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("all-token head"),
                        timestamp_writes: None,
                    });
                    for d in &head.pass {
                        d.record_n(&mut pass, n as u32);
                    }
                }
                enc.copy_buffer_to_buffer(&head.logits, 0, &head.staging, 0, (n * n_vocab * 4) as u64);
            }
            self.submit(enc.finish())?;
            self.n_pos += n;
            if wanted {
                let mut rows = vec![0f32; n * n_vocab];
                read_staging(&self.ctx, &head.staging, &mut rows)?;
                self.ctx.check_health()?;
                let skip = from.saturating_sub(start);
                out.extend_from_slice(&rows[skip * n_vocab..]);
            }
        }
        Ok(out)
    }
}
