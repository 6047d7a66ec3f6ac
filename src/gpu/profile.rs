//! Per-dispatch GPU timing. Where the adapter can write timestamps inside compute
//! passes, the token's passes are recorded exactly as usual with a timestamp between
//! consecutive dispatches; where it can only time whole passes, each dispatch gets a
//! pass of its own; with no timestamp queries at all, each dispatch is its own submit,
//! timed on the CPU clock. The tokens are the same in every mode.

use std::time::Instant;

use super::buffers::{read_staging, staging_buffer};
use super::context::GpuContext;
use super::kernels::{bind, Kernel, Kernels};
use super::model::{GpuModel, Segment};
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimingMode {
    /// Timestamps between dispatches inside the usual passes.
    InsidePasses,
    /// One compute pass per dispatch, timed at its start and end.
    PassPerOp,
    /// No timestamp queries: one submit per dispatch, CPU wall clock.
    CpuSubmitPerOp,
}

impl TimingMode {
    pub fn for_features(f: wgpu::Features) -> Self {
        if f.contains(wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES) {
            TimingMode::InsidePasses
        } else if f.contains(wgpu::Features::TIMESTAMP_QUERY) {
            TimingMode::PassPerOp
        } else {
            TimingMode::CpuSubmitPerOp
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            TimingMode::InsidePasses => "GPU timestamps between dispatches",
            TimingMode::PassPerOp => "GPU timestamps, one pass per op",
            TimingMode::CpuSubmitPerOp => "no timestamp queries on this adapter: CPU clock, one submit per op",
        }
    }
}

/// One timed dispatch of one token.
#[derive(Clone, Debug)]
pub struct OpTiming {
    pub label: String,
    pub kernel: String,
    /// Start relative to the token's first dispatch.
    pub start_ns: f64,
    pub dur_ns: f64,
    pub read: u64,
    pub written: u64,
}

pub struct Profiler {
    pub mode: TimingMode,
    query_set: Option<wgpu::QuerySet>,
    resolve: Option<wgpu::Buffer>,
    readback: Option<wgpu::Buffer>,
    period_ns: f64,
}

impl Profiler {
    pub fn new(ctx: &GpuContext, n_dispatches: usize) -> Result<Self> {
        let mode = TimingMode::for_features(ctx.features);
        let n_queries = match mode {
            TimingMode::InsidePasses => n_dispatches + 64, // one per dispatch + one per pass end
            TimingMode::PassPerOp => 2 * n_dispatches,
            TimingMode::CpuSubmitPerOp => 0,
        } as u32;
        if n_queries > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(Error::Gpu(format!(
                "{n_dispatches} dispatches per token need more timestamp queries than a query set holds"
            )));
        }
        let (query_set, resolve, readback) = if n_queries > 0 {
            let qs = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: n_queries,
            });
            let bytes = n_queries as u64 * 8;
            let resolve = ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (Some(qs), Some(resolve), Some(staging_buffer(ctx, "profile readback", bytes)))
        } else {
            (None, None, None)
        };
        Ok(Profiler { mode, query_set, resolve, readback, period_ns: ctx.queue.get_timestamp_period() as f64 })
    }

    fn read_ticks(&self, ctx: &GpuContext, n: u32) -> Result<Vec<f64>> {
        let (Some(rb), true) = (&self.readback, n > 0) else { return Ok(Vec::new()) };
        // Two f32 slots per u64 timestamp.
        let mut raw = vec![0f32; n as usize * 2];
        read_staging(ctx, rb, &mut raw)?;
        let ticks: &[u64] = bytemuck::cast_slice(&raw);
        Ok(ticks.iter().map(|&t| t as f64 * self.period_ns).collect())
    }
}

impl GpuModel {
    /// Time every dispatch of the following forward steps (see `take_timings`).
    pub fn enable_profiling(&mut self) -> Result<TimingMode> {
        let n = self.segments.iter().map(|s| if let Segment::Pass(d) = s { d.len() } else { 0 }).sum();
        let p = Profiler::new(&self.ctx, n)?;
        let mode = p.mode;
        self.profiler = Some(p);
        Ok(mode)
    }

    /// One token's step with every dispatch timed; fills `self.last_timings`.
    pub(crate) fn step_profiled(&mut self, pos: usize) -> Result<()> {
        let Some(prof) = &self.profiler else { return Err(Error::Gpu("profiling is not enabled".into())) };
        let n_pos = pos as u32 + 1;
        let mut timings = Vec::new();
        let ops: Vec<&super::kernels::Dispatch> = self
            .segments
            .iter()
            .flat_map(|s| match s {
                Segment::Pass(d) => d.iter().collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        let mk = |i: usize, start: f64, dur: f64| {
            let d = ops[i];
            let (read, written) = d.traffic.at(n_pos);
            OpTiming { label: d.label.clone(), kernel: d.kernel.name(), start_ns: start, dur_ns: dur, read, written }
        };
        match prof.mode {
            TimingMode::CpuSubmitPerOp => {
                let t0 = Instant::now();
                let mut i = 0;
                for seg in &self.segments {
                    match seg {
                        Segment::CopyKv { src, dst, bytes } => {
                            let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                            enc.copy_buffer_to_buffer(src, 0, dst, pos as u64 * bytes, *bytes);
                            self.ctx.queue.submit(std::iter::once(enc.finish()));
                        }
                        Segment::CopyLastRow { .. } => {}
                        Segment::Pass(ds) => {
                            for d in ds {
                                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                                d.record(&mut enc.begin_compute_pass(&Default::default()));
                                let start = t0.elapsed().as_secs_f64() * 1e9;
                                self.ctx.queue.submit(std::iter::once(enc.finish()));
                                self.ctx
                                    .device
                                    .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
                                    .map_err(|e| Error::Gpu(format!("waiting for {}: {e}", d.label)))?;
                                timings.push(mk(i, start, t0.elapsed().as_secs_f64() * 1e9 - start));
                                i += 1;
                            }
                        }
                    }
                }
                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                enc.copy_buffer_to_buffer(&self.acts_logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
                self.ctx.queue.submit(std::iter::once(enc.finish()));
            }
            mode => {
                let qs = prof.query_set.as_ref().ok_or_else(|| Error::Gpu("no query set".into()))?;
                let mut enc = self.ctx.device.create_command_encoder(&Default::default());
                let mut q = 0u32;
                // Which query brackets each dispatch: (start index, end index).
                let mut brackets = Vec::new();
                for seg in &self.segments {
                    match seg {
                        Segment::CopyKv { src, dst, bytes } => {
                            enc.copy_buffer_to_buffer(src, 0, dst, pos as u64 * bytes, *bytes)
                        }
                        Segment::CopyLastRow { .. } => {}
                        Segment::Pass(ds) if mode == TimingMode::InsidePasses => {
                            let mut pass = enc.begin_compute_pass(&Default::default());
                            for d in ds {
                                pass.write_timestamp(qs, q);
                                d.record(&mut pass);
                                brackets.push((q, q + 1));
                                q += 1;
                            }
                            pass.write_timestamp(qs, q);
                            q += 1;
                        }
                        Segment::Pass(ds) => {
                            for d in ds {
                                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                    label: Some(&d.label),
                                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                        query_set: qs,
                                        beginning_of_pass_write_index: Some(q),
                                        end_of_pass_write_index: Some(q + 1),
                                    }),
                                });
                                d.record(&mut pass);
                                brackets.push((q, q + 1));
                                q += 2;
                            }
                        }
                    }
                }
                let (Some(resolve), Some(readback)) = (&prof.resolve, &prof.readback) else {
                    return Err(Error::Gpu("no query buffers".into()));
                };
                enc.resolve_query_set(qs, 0..q, resolve, 0);
                enc.copy_buffer_to_buffer(resolve, 0, readback, 0, q as u64 * 8);
                enc.copy_buffer_to_buffer(&self.acts_logits, 0, &self.staging, 0, (self.cfg.n_vocab * 4) as u64);
                let scope = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
                self.ctx.queue.submit(std::iter::once(enc.finish()));
                if let Some(e) = pollster::block_on(scope.pop()) {
                    return Err(Error::Gpu(format!("profiled step rejected: {e}")));
                }
                let ns = prof.read_ticks(&self.ctx, q)?;
                let t0 = ns.first().copied().unwrap_or(0.0);
                for (i, (a, b)) in brackets.into_iter().enumerate() {
                    let (s, e) = (ns[a as usize], ns[b as usize]);
                    timings.push(mk(i, s - t0, (e - s).max(0.0)));
                }
            }
        }
        read_staging(&self.ctx, &self.staging, &mut self.logits)?;
        self.last_timings = timings;
        Ok(())
    }

    /// The timings of the last profiled step.
    pub fn take_timings(&mut self) -> Vec<OpTiming> {
        std::mem::take(&mut self.last_timings)
    }
}

/// GB/s of the plain f32 copy kernel over `n` floats (median of a few timed runs after a
/// warm-up): the adapter's practical streaming ceiling.
pub fn stream_rate(ctx: &GpuContext, n: usize) -> Result<f64> {
    let mut kernels = Kernels::new(&ctx.limits);
    let pipeline = kernels.get(&ctx.device, Kernel::Stream)?.clone();
    let x = super::buffers::f32_buffer(ctx, "stream x", n);
    let y = super::buffers::f32_buffer(ctx, "stream y", n);
    let bind_group = bind(&ctx.device, &pipeline, "stream", &[(0, &x), (1, &y)]);
    let bytes = n as u64 * 4;
    let d = super::kernels::Dispatch {
        kernel: Kernel::Stream,
        label: "stream".into(),
        pipeline,
        bind_group,
        groups: kernels.groups((n as u32).div_ceil(64)),
        traffic: super::kernels::Traffic { read: bytes, written: bytes, read_per_pos: 0 },
        output: None,
    };
    let secs = time_dispatches(ctx, &[d], 3)?;
    Ok((2 * bytes) as f64 / secs.max(1e-12) / 1e9)
}

/// Median seconds of one run of `dispatches` over `reps` timed runs (each its own pass and
/// submit, after one warm-up), from GPU timestamps where the adapter has them, else the
/// CPU clock.
pub fn time_dispatches(ctx: &GpuContext, dispatches: &[super::kernels::Dispatch], reps: u32) -> Result<f64> {
    time_dispatches_n(ctx, dispatches, reps, 1)
}

/// `time_dispatches` for a step of `n_tokens` tokens (prompt-processing dispatches).
pub fn time_dispatches_n(
    ctx: &GpuContext,
    dispatches: &[super::kernels::Dispatch],
    reps: u32,
    n_tokens: u32,
) -> Result<f64> {
    let mode = TimingMode::for_features(ctx.features);
    let qs = (mode != TimingMode::CpuSubmitPerOp).then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let resolve = ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench resolve"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = staging_buffer(ctx, "bench readback", 16);
    let mut times = Vec::new();
    for round in 0..=reps.max(1) {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let tw = qs.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            });
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bench"), timestamp_writes: tw });
            for d in dispatches {
                d.record_n(&mut pass, n_tokens);
            }
        }
        if let Some(q) = &qs {
            enc.resolve_query_set(q, 0..2, &resolve, 0);
            enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, 16);
        }
        let t0 = Instant::now();
        ctx.queue.submit(std::iter::once(enc.finish()));
        let secs = if qs.is_some() {
            let mut raw = [0f32; 4];
            read_staging(ctx, &readback, &mut raw)?;
            let t: &[u64] = bytemuck::cast_slice(&raw);
            (t[1].saturating_sub(t[0])) as f64 * ctx.queue.get_timestamp_period() as f64 * 1e-9
        } else {
            ctx.device
                .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
                .map_err(|e| Error::Gpu(format!("benchmark: {e}")))?;
            t0.elapsed().as_secs_f64()
        };
        if round > 0 {
            times.push(secs);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
