//! The GPU executor: the model definition of `model/` recorded once as a list of
//! dispatches over buffers created at load. Each token is one command encoder, one
//! submit, and one readback of the logits.

use std::time::Instant;

use super::buffers::{f32_buffer, f32_buffer_init, read_staging, staging_buffer, GpuTensor};
use super::builder::Builder;
use super::context::{AdapterChoice, GpuContext};
use super::kernels::{Dispatch, Kernels};
use super::params::{AttnParams, Step};
use crate::cpu::ops::rope_cos_sin;
use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::gguf::GgufFile;
use crate::model::{rope_factors, Config, ModelWeights};

/// A run of dispatches in one compute pass, or a copy between passes.
pub enum Segment {
    Pass(Vec<Dispatch>),
    /// Append this token's K or V (`bytes` long, in `src`) to a cache at `pos * bytes`.
    CopyKv { src: wgpu::Buffer, dst: wgpu::Buffer, bytes: u64 },
}

/// Activation buffers, one of each, reused by every layer.
struct Acts {
    x: wgpu::Buffer,      // [n_embd] residual stream
    xn: wgpu::Buffer,     // [n_embd] normed input of a block
    q: wgpu::Buffer,      // [n_head * head_dim]
    k: wgpu::Buffer,      // [n_head_kv * head_dim]
    v: wgpu::Buffer,      // [n_head_kv * head_dim_v]
    att: wgpu::Buffer,    // [n_head * head_dim_v]
    o: wgpu::Buffer,      // [n_embd] block output
    gate: wgpu::Buffer,   // [n_ff]
    up: wgpu::Buffer,     // [n_ff]
    scores: wgpu::Buffer, // [n_head, n_ctx]
    logits: wgpu::Buffer, // [n_vocab]
}

pub struct GpuModel {
    pub ctx: GpuContext,
    pub cfg: Config,
    pub weights: ModelWeights<GpuTensor>,
    pub(crate) step: wgpu::Buffer,
    pub segments: Vec<Segment>,
    acts: Acts,
    /// The logits buffer ([n_vocab]), shared with the profiler's step.
    pub(crate) acts_logits: wgpu::Buffer,
    pub(crate) profiler: Option<super::profile::Profiler>,
    pub(crate) capture: Option<super::capture::Capture>,
    pub(crate) kernels: Kernels,
    pub(crate) perturb_buffers: Vec<wgpu::Buffer>,
    pub(crate) last_timings: Vec<super::profile::OpTiming>,
    _k_cache: Vec<wgpu::Buffer>, // per layer [n_ctx, n_head_kv * head_dim]
    _v_cache: Vec<wgpu::Buffer>, // per layer [n_ctx, n_head_kv * head_dim_v]
    _rope_tables: Vec<wgpu::Buffer>,
    pub(crate) staging: wgpu::Buffer,
    pub(crate) logits: Vec<f32>,
    n_ctx: usize,
    n_pos: usize,
    pub upload_bytes: u64,
    pub upload_ms: f64,
}

impl GpuModel {
    pub fn load(g: &GgufFile, cfg: Config, n_ctx: usize, choice: &AdapterChoice) -> Result<Self> {
        let ctx = GpuContext::new(choice)?;
        Self::load_on(ctx, g, cfg, n_ctx)
    }

    pub fn load_on(ctx: GpuContext, g: &GgufFile, cfg: Config, n_ctx: usize) -> Result<Self> {
        let t0 = Instant::now();
        let mut upload_bytes = 0u64;
        let weights = ModelWeights::load(&cfg, g, |t| {
            upload_bytes += t.n_bytes;
            GpuTensor::upload(&ctx, &t.name, t.ty, t.row_len(), t.n_rows(), g.tensor_data(t))
        })?;
        let c = &cfg;
        let acts = Acts {
            x: f32_buffer(&ctx, "x", c.n_embd),
            xn: f32_buffer(&ctx, "xn", c.n_embd),
            q: f32_buffer(&ctx, "q", c.q_dim()),
            k: f32_buffer(&ctx, "k", c.k_dim()),
            v: f32_buffer(&ctx, "v", c.v_dim()),
            att: f32_buffer(&ctx, "att", c.n_head * c.head_dim_v),
            o: f32_buffer(&ctx, "o", c.n_embd),
            gate: f32_buffer(&ctx, "gate", c.n_ff),
            up: f32_buffer(&ctx, "up", c.n_ff),
            scores: f32_buffer(&ctx, "scores", c.n_head * n_ctx),
            logits: f32_buffer(&ctx, "logits", c.n_vocab),
        };
        let k_cache: Vec<wgpu::Buffer> = (0..c.n_layer).map(|il| f32_buffer(&ctx, &format!("blk.{il}.k_cache"), n_ctx * c.k_dim())).collect();
        let v_cache: Vec<wgpu::Buffer> = (0..c.n_layer).map(|il| f32_buffer(&ctx, &format!("blk.{il}.v_cache"), n_ctx * c.v_dim())).collect();

        // One RoPE table per distinct (base, scale), for every position of the context.
        let freq_factors = rope_factors(g, &cfg, n_ctx)?;
        let mut table_keys: Vec<(u32, u32)> = Vec::new();
        let mut rope_tables = Vec::new();
        for plan in &c.layers {
            let key = (plan.rope_base.to_bits(), plan.rope_scale.to_bits());
            if !table_keys.contains(&key) {
                let mut data = Vec::with_capacity(n_ctx * c.n_rot);
                for pos in 0..n_ctx {
                    for (cos, sin) in rope_cos_sin(c.n_rot, pos, plan.rope_base, plan.rope_scale, freq_factors.as_deref(), c.rope_attn_factor) {
                        data.push(cos);
                        data.push(sin);
                    }
                }
                rope_tables.push(f32_buffer_init(&ctx, "rope_table", &data));
                table_keys.push(key);
            }
        }

        let step = super::kernels::uniform(&ctx.device, "step", &Step::default());
        let mut kernels = Kernels::new(&ctx.limits);
        let mut b = Builder { ctx: &ctx, kernels: &mut kernels, step: &step };
        let mut segments = Vec::new();
        let mut pass: Vec<Dispatch> = b.embed("token_embd", &weights.token_embd, &acts.x, c.embd_scale)?;
        let (e, eps) = (c.n_embd as u32, c.rms_eps);
        for (il, (lw, plan)) in weights.layers.iter().zip(&c.layers).enumerate() {
            let l = |s: &str| format!("blk.{il}.{s}");
            pass.push(b.rms_norm(&l("attn_norm"), &acts.x, &acts.xn, &lw.attn_norm.parts[0].buffer, 1, e, eps)?);
            pass.extend(b.matvec(&l("attn_q"), &lw.attn_q, &acts.xn, &acts.q)?);
            pass.extend(b.matvec(&l("attn_k"), &lw.attn_k, &acts.xn, &acts.k)?);
            pass.extend(b.matvec(&l("attn_v"), &lw.attn_v, &acts.xn, &acts.v)?);
            for (name, out, bias, n) in [("attn_q", &acts.q, &lw.attn_q_bias, c.q_dim()), ("attn_k", &acts.k, &lw.attn_k_bias, c.k_dim()), ("attn_v", &acts.v, &lw.attn_v_bias, c.v_dim())] {
                if let Some(bias) = bias {
                    pass.push(b.add(&format!("{}+bias", l(name)), out, &bias.parts[0].buffer, n as u32)?);
                }
            }
            if let (Some(qn), Some(kn)) = (&lw.attn_q_norm, &lw.attn_k_norm) {
                pass.push(b.rms_norm_inplace(&l("attn_q_norm"), &acts.q, &qn.parts[0].buffer, c.n_head as u32, c.head_dim as u32, eps)?);
                pass.push(b.rms_norm_inplace(&l("attn_k_norm"), &acts.k, &kn.parts[0].buffer, c.n_head_kv as u32, c.head_dim as u32, eps)?);
            }
            let key = (plan.rope_base.to_bits(), plan.rope_scale.to_bits());
            let table = &rope_tables[table_keys.iter().position(|k| *k == key).unwrap_or(0)];
            let (hd, nr) = (c.head_dim as u32, c.n_rot as u32);
            pass.push(b.rope(&l("rope_q"), &acts.q, table, c.n_head as u32, hd, nr, c.rope_style)?);
            pass.push(b.rope(&l("rope_k"), &acts.k, table, c.n_head_kv as u32, hd, nr, c.rope_style)?);
            segments.push(Segment::Pass(std::mem::take(&mut pass)));
            segments.push(Segment::CopyKv { src: acts.k.clone(), dst: k_cache[il].clone(), bytes: (c.k_dim() * 4) as u64 });
            segments.push(Segment::CopyKv { src: acts.v.clone(), dst: v_cache[il].clone(), bytes: (c.v_dim() * 4) as u64 });

            let ap = AttnParams {
                group: (c.n_head / c.n_head_kv) as u32,
                head_dim: hd,
                head_dim_v: c.head_dim_v as u32,
                k_stride: c.k_dim() as u32,
                v_stride: c.v_dim() as u32,
                n_ctx: n_ctx as u32,
                window: plan.window.unwrap_or(0) as u32,
                scale: c.attn_scale,
                softcap: c.attn_softcap.unwrap_or(0.0),
                _pad: [0; 3],
            };
            pass.push(b.attention(&l("attention"), &acts.q, &k_cache[il], &v_cache[il], &acts.scores, &acts.att, c.n_head as u32, ap)?);
            pass.extend(b.matvec(&l("attn_output"), &lw.attn_output, &acts.att, &acts.o)?);
            if let Some(n) = &lw.post_attn_norm {
                pass.push(b.rms_norm(&l("post_attention_norm"), &acts.o, &acts.xn, &n.parts[0].buffer, 1, e, eps)?);
                pass.push(b.add(&l("attn_residual"), &acts.x, &acts.xn, e)?);
            } else {
                pass.push(b.add(&l("attn_residual"), &acts.x, &acts.o, e)?);
            }
            pass.push(b.rms_norm(&l("ffn_norm"), &acts.x, &acts.xn, &lw.ffn_norm.parts[0].buffer, 1, e, eps)?);
            pass.extend(b.matvec(&l("ffn_gate"), &lw.ffn_gate, &acts.xn, &acts.gate)?);
            pass.extend(b.matvec(&l("ffn_up"), &lw.ffn_up, &acts.xn, &acts.up)?);
            pass.push(b.glu(&l("ffn_glu"), &acts.gate, &acts.up, c.n_ff as u32, c.act)?);
            pass.extend(b.matvec(&l("ffn_down"), &lw.ffn_down, &acts.gate, &acts.o)?);
            if let Some(n) = &lw.post_ffn_norm {
                pass.push(b.rms_norm(&l("post_ffw_norm"), &acts.o, &acts.xn, &n.parts[0].buffer, 1, e, eps)?);
                pass.push(b.add(&l("ffn_residual"), &acts.x, &acts.xn, e)?);
            } else {
                pass.push(b.add(&l("ffn_residual"), &acts.x, &acts.o, e)?);
            }
        }
        pass.push(b.rms_norm("output_norm", &acts.x, &acts.xn, &weights.output_norm.parts[0].buffer, 1, e, eps)?);
        pass.extend(b.matvec("output", weights.lm_head(), &acts.xn, &acts.logits)?);
        if let Some(cap) = c.final_softcap {
            pass.push(b.softcap("output+softcap", &acts.logits, c.n_vocab as u32, cap)?);
        }
        segments.push(Segment::Pass(pass));

        let staging = staging_buffer(&ctx, "logits staging", (c.n_vocab * 4) as u64);
        // Make sure everything is on the device before timing stops.
        ctx.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map_err(|e| Error::Gpu(format!("waiting for the upload: {e}")))?;
        let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
        let n_vocab = c.n_vocab;
        let acts_logits = acts.logits.clone();
        Ok(GpuModel {
            ctx,
            cfg,
            weights,
            step,
            segments,
            acts,
            acts_logits,
            profiler: None,
            capture: None,
            kernels,
            perturb_buffers: Vec::new(),
            last_timings: Vec::new(),
            _k_cache: k_cache,
            _v_cache: v_cache,
            _rope_tables: rope_tables,
            staging,
            logits: vec![0.0; n_vocab],
            n_ctx,
            n_pos: 0,
            upload_bytes,
            upload_ms,
        })
    }

    /// Record the whole step for position `pos` into one command encoder.
    fn encode(&self, pos: usize) -> wgpu::CommandBuffer {
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("token") });
        if self.capture.is_some() {
            self.encode_captured(pos, &mut enc);
            enc.copy_buffer_to_buffer(&self.acts.logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
            return enc.finish();
        }
        for seg in &self.segments {
            match seg {
                Segment::Pass(ds) => {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    for d in ds {
                        d.record(&mut pass);
                    }
                }
                Segment::CopyKv { src, dst, bytes } => enc.copy_buffer_to_buffer(src, 0, dst, pos as u64 * bytes, *bytes),
            }
        }
        enc.copy_buffer_to_buffer(&self.acts.logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
        enc.finish()
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
        if pos != self.n_pos {
            return Err(Error::Context(format!("position {pos} given, but the cache holds {} positions", self.n_pos)));
        }
        if pos >= self.n_ctx {
            return Err(Error::Context(format!("position {pos} is past the context size {}", self.n_ctx)));
        }
        if token as usize >= self.cfg.n_vocab {
            return Err(Error::Usage(format!("token id {token} is outside the vocabulary of {}", self.cfg.n_vocab)));
        }
        let step = Step { token, pos: pos as u32, n_pos: pos as u32 + 1, _pad: 0 };
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        if self.profiler.is_some() {
            self.step_profiled(pos)?;
            self.n_pos += 1;
            return Ok(&self.logits);
        }
        let scope = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let cmd = self.encode(pos);
        self.ctx.queue.submit(std::iter::once(cmd));
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("token step rejected: {e}")));
        }
        read_staging(&self.ctx, &self.staging, &mut self.logits)?;
        self.n_pos += 1;
        Ok(&self.logits)
    }
}
