//! The GPU executor: the recipe (`model::recipe`) recorded once at load as programs of
//! dispatches over buffers created at load — one for decoding (one token per step), one
//! for prompt processing (chunks of up to `ubatch` tokens, every weight read once per
//! chunk). Each step is one command encoder and one submit; the logits of the step's last
//! token are read back. Profiling and capture are hooks on the same walk.

use std::collections::HashMap;
use std::time::Instant;

use super::buffers::{f32_buffer, f32_buffer_init, read_staging, staging_buffer, upload_weights, GpuTensor};
use super::builder::{Batch, Builder};
use super::capture::Capture;
use super::context::{AdapterChoice, GpuContext};
use super::kernels::{AdapterClass, Kernels, MatvecShape};
use super::kernels::{Batching, Readback};
use super::params::Step;
use super::plan::{human_bytes, MemoryPlan};
use super::profile::{OpTiming, Profiler, TimingMode};
use super::program::{NoHooks, Program};
use super::record::Recorder;
use super::state::StepBuffers;
use super::topk::{TopK, TOPK_MAX};
use crate::error::{Error, Result};
use crate::generate::{decode_one_by_one, logits_one_by_one, Executor};
use crate::gguf::GgufFile;
use crate::model::{recipe, Act, Captured, Config, ModelWeights};

/// Tokens per prompt-processing chunk (llama.cpp's ubatch); a multiple of MATMUL_TOKENS.
pub use super::plan::DEFAULT_UBATCH;

/// The programs recorded at load.
pub struct Programs {
    /// The decoding step.
    pub decode: Program,
    /// The prompt-processing step (chunks of up to `ubatch` tokens): every layer.
    pub prefill: Program,
    /// After the last chunk: its last row to the decoding buffers, final norm, LM head.
    pub prefill_tail: Program,
}

/// The LM head over all tokens of a chunk, into [ubatch, n_vocab] logits (perplexity).
struct AllHead {
    program: Program,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
}

pub struct GpuModel {
    pub ctx: GpuContext,
    pub cfg: Config,
    pub weights: ModelWeights<GpuTensor>,
    pub programs: Programs,
    pub ubatch: usize,
    /// The per-step `Step` uniform.
    step: wgpu::Buffer,
    pub(super) bufs: StepBuffers,
    kernels: Kernels,
    /// Built on first use.
    all_head: Option<AllHead>,
    profiler: Option<Profiler>,
    last_timings: Vec<OpTiming>,
    capture: Option<Capture>,
    /// The top-k passes over the decoding logits (used where `kernels.readback` says).
    topk: TopK,
    /// Deliberate faults' delta buffers (`perturb`), kept alive.
    perturb_buffers: Vec<wgpu::Buffer>,
    logits: Vec<f32>, // [n_vocab]
    /// Positions each sequence can hold; sequence s's cache rows start at s * n_ctx.
    pub(super) n_ctx: usize,
    /// Positions each sequence's cache holds ([cfg.n_seq]).
    pub(super) n_pos: Vec<usize>,
    /// The sequence `forward`, `prefill` and the rest act on.
    pub(super) seq: usize,
    pub upload_bytes: u64,
    pub upload_ms: f64,
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
        let t0 = Instant::now();
        // Memory can still run out (other programs, drivers that report no size): catch it.
        let oom = |e| {
            let total = human_bytes(plan.total());
            Error::Gpu(format!(
                "out of GPU memory while loading the model (its plan needs {total} in all; see `lanterna info --ctx`): {e}"
            ))
        };
        let (weights, upload_bytes, bufs, step, kernels, (programs, topk)) = ctx.scoped(
            wgpu::ErrorFilter::OutOfMemory,
            || {
                let (weights, upload_bytes) = upload_weights(&ctx, g, &cfg)?;
                let bufs = StepBuffers::new(&ctx, g, &cfg, n_ctx)?;
                let step = super::kernels::uniform(&ctx, "step", &Step::default());
                let mut kernels = Kernels::for_device(&ctx)?;
                let programs = record(&ctx, &mut kernels, &step, &cfg, &weights, &bufs, n_ctx)?;
                // Made whatever the readback (tests and `set_readback` switch it): small
                // buffers, two pipelines; the memory plan counts them.
                let mut b = Builder { ctx: &ctx, kernels: &mut kernels, step: &step, batch: None };
                let topk = TopK::new(&mut b, &bufs.logits, cfg.n_vocab as u32)?;
                Ok((weights, upload_bytes, bufs, step, kernels, (programs, topk)))
            },
            oom,
        )?;
        ctx.check_health()?;
        // Make sure everything is on the device before timing stops.
        ctx.wait("the upload")?;
        let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
        Ok(GpuModel {
            logits: vec![0.0; cfg.n_vocab],
            n_pos: vec![0; cfg.n_seq],
            ubatch: bufs.ubatch,
            ctx,
            cfg,
            weights,
            programs,
            step,
            bufs,
            kernels,
            all_head: None,
            profiler: None,
            last_timings: Vec::new(),
            capture: None,
            topk,
            perturb_buffers: Vec::new(),
            seq: 0,
            n_ctx,
            upload_bytes,
            upload_ms,
        })
    }

    /// Run the steps of several sequences together or apart from now on (tests force
    /// each; `LANTERNA_BATCH` chooses at load).
    pub fn set_batching(&mut self, batching: Batching) {
        self.kernels.batching = batching;
    }

    /// Read back the sampler's candidates or the whole logits from now on (tests force
    /// each; `LANTERNA_READBACK` chooses at load).
    pub fn set_readback(&mut self, readback: Readback) {
        self.kernels.readback = readback;
    }

    /// The kernel configuration in use and where it came from.
    pub fn kernel_config(&self) -> String {
        self.kernels.describe()
    }

    /// The kind of adapter the kernels were chosen for.
    pub fn adapter_class(&self) -> AdapterClass {
        self.kernels.class
    }

    /// The matvec geometry of matrices the tuner has not measured.
    pub fn matvec_default(&self) -> MatvecShape {
        self.kernels.matvec
    }

    pub fn set_matvec_default(&mut self, shape: MatvecShape) {
        self.kernels.matvec = shape;
    }

    pub fn set_tuned_from(&mut self, from: &str) {
        self.kernels.tuned_from = from.to_string();
    }

    /// What tuning results are kept under: the adapter, its driver and backend, and the
    /// class of kernels (`LANTERNA_ADAPTER_CLASS` changes which variants run).
    pub fn tune_adapter_key(&self) -> String {
        let i = &self.ctx.info;
        format!("{} | {} {} | {:?} | {} class", i.name, i.driver, i.driver_info, i.backend, self.kernels.class.name())
    }

    /// The tuner's names of the matrices decoding multiplies (see `builder::tune_key`).
    pub fn tune_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.programs.decode.dispatches().filter_map(|d| d.tune_key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Use these matvec geometries from now on (re-records every program).
    pub fn apply_tuning(&mut self, tuned: HashMap<String, MatvecShape>, from: &str) -> Result<()> {
        self.kernels.tuned = tuned;
        self.kernels.tuned_from = from.to_string();
        self.rerecord()
    }

    /// Each matrix's time in one decoding step (ns, the fastest of `steps` profiled steps
    /// after a warm-up) with every matvec built as `shape`. Leaves the KV cache empty.
    pub fn time_matvecs(&mut self, shape: MatvecShape, steps: usize) -> Result<HashMap<String, f64>> {
        self.kernels.matvec = shape;
        self.kernels.tuned.clear();
        self.rerecord()?;
        let profiling = self.profiler.is_some();
        self.enable_profiling()?;
        self.reset();
        let mut best: HashMap<String, f64> = HashMap::new();
        for pos in 0..=steps {
            self.forward(0, pos)?;
            let mut sums: HashMap<String, f64> = HashMap::new();
            for t in self.take_timings() {
                if let Some(k) = t.tune_key {
                    *sums.entry(k).or_default() += t.dur_ns;
                }
            }
            // Step 0 compiled the pipelines; it times the compiler, not the kernels.
            for (k, ns) in sums.into_iter().filter(|_| pos > 0) {
                let b = best.entry(k).or_insert(f64::INFINITY);
                *b = b.min(ns);
            }
        }
        self.reset();
        if !profiling {
            self.profiler = None;
        }
        Ok(best)
    }

    /// Record every program again with the kernels' current choices.
    fn rerecord(&mut self) -> Result<()> {
        self.programs =
            record(&self.ctx, &mut self.kernels, &self.step, &self.cfg, &self.weights, &self.bufs, self.n_ctx)?;
        self.all_head = None;
        if self.profiler.is_some() {
            self.profiler = Some(Profiler::new(&self.ctx, &self.programs.decode)?);
        }
        Ok(())
    }

    /// The RoPE table layer `il` reads, copied back from the GPU: [n_ctx, n_rot/2, 2] (cos, sin).
    pub fn rope_table(&self, il: usize) -> Result<Vec<f32>> {
        let plan = self.cfg.layers.get(il).ok_or_else(|| Error::Usage(format!("no layer {il}")))?;
        super::buffers::read_f32(&self.ctx, self.bufs.rope.for_layer(plan)?, self.n_ctx * self.cfg.n_rot)
    }

    /// Time every dispatch of the following forward steps (see `take_timings`).
    pub fn enable_profiling(&mut self) -> Result<TimingMode> {
        let p = Profiler::new(&self.ctx, &self.programs.decode)?;
        let mode = p.mode;
        self.profiler = Some(p);
        Ok(mode)
    }

    /// The timings of the last profiled step.
    pub fn take_timings(&mut self) -> Vec<OpTiming> {
        std::mem::take(&mut self.last_timings)
    }

    /// Capture every marked intermediate of the following forward steps (see `take_captured`).
    pub fn enable_capture(&mut self) -> Result<()> {
        self.capture = Some(Capture::new(&self.ctx, &self.programs.decode));
        Ok(())
    }

    /// The intermediates of the last captured step, in forward order.
    pub fn take_captured(&mut self) -> Result<Vec<Captured>> {
        self.capture.as_ref().map_or(Ok(Vec::new()), |c| c.read(&self.ctx))
    }

    /// Add `delta` to every element of the output of the dispatch labelled `label`
    /// (the last one, for tensors in several parts), each step from now on. For testing
    /// that `compare` finds and names a wrong kernel; never used in normal runs.
    pub fn perturb(&mut self, label: &str, delta: f32) -> Result<()> {
        let mut b = Builder { ctx: &self.ctx, kernels: &mut self.kernels, step: &self.step, batch: None };
        let mut kept = None;
        self.programs.decode.insert_after(label, |out, len| {
            let deltas = f32_buffer_init(b.ctx, "perturbation", &vec![delta; len as usize]);
            let add = b.add(&format!("{label}+perturbation"), out, &deltas, len);
            kept = Some(deltas);
            add
        })?;
        self.perturb_buffers.extend(kept);
        Ok(())
    }

    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    fn copy_logits(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_buffer(&self.bufs.logits, 0, &self.bufs.staging, 0, (self.cfg.n_vocab * 4) as u64);
    }

    /// The decoding step (Step written), with capture if enabled.
    fn step_plain(&mut self) -> Result<()> {
        let mut enc = self.encoder("token");
        match &mut self.capture {
            Some(cap) => {
                self.programs.decode.walk(&self.ctx, &mut enc, 1, cap)?;
                cap.finish(&mut enc);
            }
            None => self.programs.decode.walk(&self.ctx, &mut enc, 1, &mut NoHooks)?,
        }
        self.copy_logits(&mut enc);
        self.ctx.submit(enc.finish(), "the step")?;
        self.read_logits()
    }

    /// The decoding step (Step written) and the best `k` of its logits,
    /// found on the GPU: `k` pairs cross back instead of the vocabulary.
    fn step_top(&mut self, k: usize) -> Result<Vec<(u32, f32)>> {
        let topk = &self.topk;
        let mut enc = self.encoder("token, top-k");
        self.programs.decode.walk(&self.ctx, &mut enc, 1, &mut NoHooks)?;
        topk.record(&self.ctx, &mut enc, k)?;
        self.ctx.submit(enc.finish(), "the step")?;
        topk.read(&self.ctx, k)
    }

    /// The decoding step with every dispatch timed; fills `last_timings`.
    fn step_profiled(&mut self, pos: usize) -> Result<()> {
        let prof = self.profiler.take().ok_or_else(|| Error::Gpu("profiling is not enabled".into()))?;
        let mut hooks = prof.step();
        let mut enc = self.encoder("profiled token");
        let r = (|| {
            self.programs.decode.walk(&self.ctx, &mut enc, 1, &mut hooks)?;
            prof.finish(&mut enc, &hooks);
            self.copy_logits(&mut enc);
            self.ctx.submit(enc.finish(), "the profiled step")?;
            self.last_timings = prof.timings(&self.ctx, hooks, &self.programs.decode, pos as u32 + 1)?;
            self.read_logits()
        })();
        self.profiler = Some(prof);
        r
    }

    /// An encoder holding every layer for one prompt chunk at `p0` (ids and Step written).
    fn chunk_encoder(&self, chunk: &[u32], p0: usize) -> Result<wgpu::CommandEncoder> {
        self.layers_encoder(chunk, Step::run(chunk[0], p0, chunk.len(), self.base()))
    }

    /// An encoder holding every layer for the tokens `ids`, placed as `step` says (ids
    /// and Step written).
    pub(super) fn layers_encoder(&self, ids: &[u32], step: Step) -> Result<wgpu::CommandEncoder> {
        let mut padded = ids.to_vec();
        padded.resize(self.ubatch, 0);
        self.ctx.queue.write_buffer(&self.bufs.tokens, 0, bytemuck::cast_slice(&padded));
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        let mut enc = self.encoder("prompt chunk");
        self.programs.prefill.walk(&self.ctx, &mut enc, ids.len() as u32, &mut NoHooks)?;
        Ok(enc)
    }

    /// Build the all-token LM head (perplexity) on first use; refused with the figures if
    /// its [ubatch, n_vocab] logits exceed one binding.
    pub(super) fn ensure_all_head(&mut self) -> Result<()> {
        if self.all_head.is_some() {
            return Ok(());
        }
        let c = &self.cfg;
        let bytes = (self.ubatch * c.n_vocab * 4) as u64;
        let cap = self.ctx.limits.max_storage_buffer_binding_size.min(self.ctx.limits.max_buffer_size);
        if bytes > cap {
            return Err(Error::DoesNotFit(format!(
                "the logits of a {}-token chunk need {} in one buffer, but {} allows {}",
                self.ubatch,
                human_bytes(bytes),
                self.ctx.describe(),
                human_bytes(cap)
            )));
        }
        let logits = f32_buffer(&self.ctx, "all-token logits", self.ubatch * c.n_vocab); // [ubatch, n_vocab]
        let staging = staging_buffer(&self.ctx, "all-token logits staging", bytes);
        let batch = Some(Batch { max_tokens: self.ubatch as u32, tokens: &self.bufs.tokens, xt: &self.bufs.xt });
        let mut b = Builder { ctx: &self.ctx, kernels: &mut self.kernels, step: &self.step, batch };
        let mut r = Recorder::new(&mut b, c, &self.bufs, &self.bufs.batch, Some(&logits), self.n_ctx);
        recipe::head(&mut r, c, &self.weights)?;
        self.all_head = Some(AllHead { program: r.finish()?, logits, staging });
        Ok(())
    }

    /// The first cache row of the current sequence.
    fn base(&self) -> usize {
        self.seq * self.n_ctx
    }

    fn check(&self, tokens: &[u32], pos: usize) -> Result<()> {
        let held = self.n_pos[self.seq];
        if pos != held {
            return Err(Error::Context(format!("position {pos} given, but the cache holds {held} positions")));
        }
        if pos + tokens.len() > self.n_ctx {
            let end = pos + tokens.len();
            return Err(Error::Context(format!("positions up to {end} are past the context size {}", self.n_ctx)));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.cfg.n_vocab) {
            return Err(Error::Usage(format!("token id {t} is outside the vocabulary of {}", self.cfg.n_vocab)));
        }
        Ok(())
    }

    /// Wait for the step and read its logits; a lost device or fault becomes an error.
    fn read_logits(&mut self) -> Result<()> {
        let r = read_staging(&self.ctx, &self.bufs.staging, &mut self.logits);
        self.ctx.check_health()?;
        r
    }

    /// One prompt chunk with the LM head on every token; its logits from index `skip` on.
    fn chunk_all_logits(&mut self, chunk: &[u32], p0: usize, skip: usize) -> Result<Vec<f32>> {
        let enc = self.chunk_encoder(chunk, p0)?;
        let mut rows = self.finish_all_logits(enc, chunk.len())?;
        Ok(rows.split_off(skip * self.cfg.n_vocab))
    }

    /// `enc` (a chunk's layers, `n` tokens) finished with the LM head on every token,
    /// submitted, and the [n, n_vocab] logits read back.
    pub(super) fn finish_all_logits(&mut self, mut enc: wgpu::CommandEncoder, n: usize) -> Result<Vec<f32>> {
        let n_vocab = self.cfg.n_vocab;
        let head = self.all_head.as_ref().ok_or_else(|| Error::Gpu("all-token head missing".into()))?;
        head.program.walk(&self.ctx, &mut enc, n as u32, &mut NoHooks)?;
        enc.copy_buffer_to_buffer(&head.logits, 0, &head.staging, 0, (n * n_vocab * 4) as u64);
        self.ctx.submit(enc.finish(), "the prompt chunk")?;
        let mut rows = vec![0f32; n * n_vocab];
        read_staging(&self.ctx, &head.staging, &mut rows)?;
        self.ctx.check_health()?;
        Ok(rows)
    }
}

/// Record the decoding and prompt-processing programs.
fn record(
    ctx: &GpuContext,
    kernels: &mut Kernels,
    step: &wgpu::Buffer,
    c: &Config,
    w: &ModelWeights<GpuTensor>,
    bufs: &StepBuffers,
    n_ctx: usize,
) -> Result<Programs> {
    let mut b = Builder { ctx, kernels, step, batch: None };
    let mut r = Recorder::new(&mut b, c, bufs, &bufs.decode, Some(&bufs.logits), n_ctx);
    recipe::forward(&mut r, c, w)?;
    let decode = r.finish()?;

    let batch = Some(Batch { max_tokens: bufs.ubatch as u32, tokens: &bufs.tokens, xt: &bufs.xt });
    let mut b = Builder { ctx, kernels, step, batch };
    let mut r = Recorder::new(&mut b, c, bufs, &bufs.batch, None, n_ctx);
    recipe::layers(&mut r, c, w)?;
    let prefill = r.finish()?;

    let mut b = Builder { ctx, kernels, step, batch: None };
    let mut r = Recorder::new(&mut b, c, bufs, &bufs.decode, Some(&bufs.logits), n_ctx);
    let (src, dst) = (bufs.batch.get(Act::X), bufs.decode.get(Act::X));
    if let (Some(src), Some(dst)) = (src, dst) {
        r.copy_last_row(src, dst)?;
    }
    recipe::head(&mut r, c, w)?;
    Ok(Programs { decode, prefill, prefill_tail: r.finish()? })
}

impl Executor for GpuModel {
    fn name(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn reset(&mut self) {
        self.n_pos[self.seq] = 0;
    }

    /// The cache rows past `n` are left as they are: the next steps overwrite them.
    fn rewind(&mut self, n: usize) -> Result<()> {
        let held = self.n_pos[self.seq];
        if n > held {
            return Err(Error::Context(format!("cannot keep {n} positions: the cache holds {held}")));
        }
        self.n_pos[self.seq] = n;
        Ok(())
    }

    fn n_pos(&self) -> usize {
        self.n_pos[self.seq]
    }

    fn n_seq(&self) -> usize {
        self.cfg.n_seq
    }

    fn select_seq(&mut self, s: usize) -> Result<()> {
        if s >= self.cfg.n_seq {
            return Err(Error::Usage(format!("sequence {s} asked for, but the cache holds {}", self.cfg.n_seq)));
        }
        self.seq = s;
        Ok(())
    }

    fn copy_prefix(&mut self, from: usize, n: usize) -> Result<()> {
        self.copy_seq_prefix(from, n)
    }

    fn decode_batch(&mut self, items: &[(usize, u32)]) -> Result<Vec<f32>> {
        match self.kernels.batching {
            Batching::Together => self.step_batch(items),
            Batching::Apart => decode_one_by_one(self, items),
        }
    }

    fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32]> {
        self.check(&[token], pos)?;
        let step = Step::run(token, pos, 1, self.base());
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        if self.profiler.is_some() {
            self.step_profiled(pos)?;
        } else {
            self.step_plain()?;
        }
        self.n_pos[self.seq] += 1;
        Ok(&self.logits)
    }

    /// On the GPU where the kernels read back candidates (`Readback::TopK`) and `k` is
    /// within what the passes find; otherwise from the whole logits.
    fn forward_top(&mut self, token: u32, pos: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        let plain = self.profiler.is_none() && self.capture.is_none();
        if !(plain && self.kernels.readback == Readback::TopK && (1..=TOPK_MAX).contains(&k)) {
            return Ok(crate::sampler::top_of(self.forward(token, pos)?, k));
        }
        self.check(&[token], pos)?;
        let step = Step::run(token, pos, 1, self.base());
        self.ctx.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(&step));
        let top = self.step_top(k)?;
        self.n_pos[self.seq] += 1;
        Ok(top)
    }

    /// The prompt in chunks of `ubatch` tokens: each weight is read once per chunk, and
    /// the K/V of the whole chunk are written at once; the LM head runs once, on the last
    /// token. Profiling and capture need one token per step, so with either on this falls
    /// back to `forward`.
    fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<&[f32]> {
        if self.profiler.is_some() || self.capture.is_some() || tokens.len() == 1 {
            logits_one_by_one(self, tokens, pos, tokens.len())?;
            return Ok(&self.logits);
        }
        self.check(tokens, pos)?;
        if tokens.is_empty() {
            return Err(Error::Usage("no tokens to process".into()));
        }
        let n_chunks = tokens.len().div_ceil(self.ubatch);
        for (ci, chunk) in tokens.chunks(self.ubatch).enumerate() {
            let p0 = pos + ci * self.ubatch;
            let mut enc = self.chunk_encoder(chunk, p0)?;
            if ci + 1 == n_chunks {
                self.programs.prefill_tail.walk(&self.ctx, &mut enc, chunk.len() as u32, &mut NoHooks)?;
                self.copy_logits(&mut enc);
            }
            self.ctx.submit(enc.finish(), "the prompt chunk")?;
            self.n_pos[self.seq] += chunk.len();
        }
        self.read_logits()?;
        Ok(&self.logits)
    }

    /// Chunked like `prefill`, with the LM head on every token of the chunks that hold
    /// indices `from..`: one matmul per chunk instead of a matvec per token.
    fn logits_from(&mut self, tokens: &[u32], pos: usize, from: usize) -> Result<Vec<f32>> {
        if self.profiler.is_some() || self.capture.is_some() {
            return logits_one_by_one(self, tokens, pos, from);
        }
        self.check(tokens, pos)?;
        self.ensure_all_head()?;
        let mut out = Vec::with_capacity(tokens.len().saturating_sub(from) * self.cfg.n_vocab);
        for (ci, chunk) in tokens.chunks(self.ubatch).enumerate() {
            let start = ci * self.ubatch;
            if start + chunk.len() > from {
                out.extend(self.chunk_all_logits(chunk, pos + start, from.saturating_sub(start))?);
            } else {
                let enc = self.chunk_encoder(chunk, pos + start)?;
                self.ctx.submit(enc.finish(), "the prompt chunk")?;
            }
            self.n_pos[self.seq] += chunk.len();
        }
        Ok(out)
    }
}
