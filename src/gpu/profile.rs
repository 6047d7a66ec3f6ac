//! Per-dispatch GPU timing. Where the adapter can write timestamps inside compute
//! passes, the token's passes are recorded exactly as usual with a timestamp between
//! consecutive dispatches; where it can only time whole passes, each dispatch gets a
//! pass of its own; with no timestamp queries at all, each dispatch is its own submit,
//! timed on the CPU clock. The tokens are the same in every mode.

use std::time::Instant;

use super::buffers::{read_staging, staging_buffer};
use super::context::GpuContext;
use super::kernels::{bind, Dispatch, Kernel, Kernels};
use super::program::{Hooks, Isolation, Program, Segment};
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
    /// The tuner's name for the matrix of a matvec.
    pub tune_key: Option<String>,
}

pub struct Profiler {
    pub mode: TimingMode,
    query_set: Option<wgpu::QuerySet>,
    resolve: Option<wgpu::Buffer>,
    readback: Option<wgpu::Buffer>,
    period_ns: f64,
}

impl Profiler {
    /// Queries for every dispatch of `program` (and, timing inside passes, every pass end).
    pub fn new(ctx: &GpuContext, program: &Program) -> Result<Self> {
        let mode = TimingMode::for_features(ctx.features);
        let n_dispatches = program.dispatches().count();
        let n_passes = program.segments.iter().filter(|s| matches!(s, Segment::Pass(_))).count();
        let n_queries = match mode {
            TimingMode::InsidePasses => n_dispatches + n_passes,
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

    /// The walk hooks that time one step.
    pub fn step(&self) -> ProfileStep<'_> {
        ProfileStep { prof: self, next_query: 0, brackets: Vec::new(), cpu: Vec::new(), t0: Instant::now() }
    }

    /// After the walk: resolve the step's timestamps for reading back.
    pub fn finish(&self, enc: &mut wgpu::CommandEncoder, step: &ProfileStep) {
        let q = step.next_query;
        if let (Some(qs), Some(resolve), Some(readback), true) = (&self.query_set, &self.resolve, &self.readback, q > 0)
        {
            enc.resolve_query_set(qs, 0..q, resolve, 0);
            enc.copy_buffer_to_buffer(resolve, 0, readback, 0, q as u64 * 8);
        }
    }

    /// Each dispatch's start and duration, after the step's submit.
    pub fn timings(&self, ctx: &GpuContext, step: ProfileStep, program: &Program, n_pos: u32) -> Result<Vec<OpTiming>> {
        let spans = match self.mode {
            TimingMode::CpuSubmitPerOp => step.cpu,
            _ => {
                let ns = self.read_ticks(ctx, step.next_query)?;
                let t0 = ns.first().copied().unwrap_or(0.0);
                let at = |q: u32| ns.get(q as usize).copied().unwrap_or(t0);
                step.brackets.iter().map(|&(a, b)| (at(a) - t0, (at(b) - at(a)).max(0.0))).collect()
            }
        };
        let timing = |(d, (start_ns, dur_ns)): (&Dispatch, (f64, f64))| {
            let (read, written) = d.traffic.at(n_pos);
            OpTiming {
                label: d.label.clone(),
                kernel: d.kernel.name(),
                start_ns,
                dur_ns,
                read,
                written,
                tune_key: d.tune_key.clone(),
            }
        };
        Ok(program.dispatches().zip(spans).map(timing).collect())
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

/// One profiled step in progress: the queries used so far and which bracket each
/// dispatch, or (CPU clock) each dispatch's start and duration.
pub struct ProfileStep<'a> {
    prof: &'a Profiler,
    next_query: u32,
    brackets: Vec<(u32, u32)>,
    cpu: Vec<(f64, f64)>,
    t0: Instant,
}

impl ProfileStep<'_> {
    fn query(&mut self) -> u32 {
        self.next_query += 1;
        self.next_query - 1
    }
}

impl Hooks for ProfileStep<'_> {
    fn isolation(&self) -> Isolation {
        match self.prof.mode {
            TimingMode::InsidePasses => Isolation::None,
            TimingMode::PassPerOp => Isolation::Pass,
            TimingMode::CpuSubmitPerOp => Isolation::Submit,
        }
    }

    /// InsidePasses: a timestamp before each dispatch, and one at the pass's end.
    fn before_dispatch(&mut self, pass: &mut wgpu::ComputePass<'_>, _d: &Dispatch) {
        if let Some(qs) = &self.prof.query_set {
            let q = self.query();
            pass.write_timestamp(qs, q);
            self.brackets.push((q, q + 1));
        }
    }

    fn end_pass(&mut self, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(qs) = &self.prof.query_set {
            let q = self.query();
            pass.write_timestamp(qs, q);
        }
    }

    /// PassPerOp: the pass's start and end.
    fn pass_timestamps(&mut self, _d: &Dispatch) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let (a, b) = (self.query(), self.query());
        self.brackets.push((a, b));
        let qs = self.prof.query_set.as_ref()?;
        Some(wgpu::ComputePassTimestampWrites {
            query_set: qs,
            beginning_of_pass_write_index: Some(a),
            end_of_pass_write_index: Some(b),
        })
    }

    /// CpuSubmitPerOp: the wall time from submit to done.
    fn submit_one(&mut self, ctx: &GpuContext, cmd: wgpu::CommandBuffer, d: &Dispatch) -> Result<()> {
        let start = self.t0.elapsed().as_secs_f64() * 1e9;
        ctx.queue.submit([cmd]);
        ctx.wait(&d.label)?;
        self.cpu.push((start, self.t0.elapsed().as_secs_f64() * 1e9 - start));
        Ok(())
    }
}

/// GB/s of the plain f32 copy kernel over `n` floats (median of a few timed runs after a
/// warm-up): the adapter's practical streaming ceiling.
pub fn stream_rate(ctx: &GpuContext, n: usize) -> Result<f64> {
    // The same naga checks as the kernels it rates, so the ceiling is comparable.
    let mut kernels = Kernels::for_device(ctx)?;
    let pipeline = kernels.get(&ctx.device, Kernel::Stream)?.clone();
    let x = super::buffers::f32_buffer(ctx, "stream x", n);
    let y = super::buffers::f32_buffer(ctx, "stream y", n);
    let bind_group = bind(&ctx.device, &pipeline, "stream", &[(0, &x), (1, &y)]);
    let bytes = n as u64 * 4;
    let d = Dispatch {
        kernel: Kernel::Stream,
        label: "stream".into(),
        pipeline,
        bind_group,
        groups: kernels.groups((n as u32).div_ceil(64)),
        traffic: super::kernels::Traffic { read: bytes, written: bytes, read_per_pos: 0 },
        output: None,
        tune_key: None,
    };
    let secs = time_dispatches(ctx, &[d], 3)?;
    Ok((2 * bytes) as f64 / secs.max(1e-12) / 1e9)
}

/// Median seconds of one run of `dispatches` over `reps` timed runs (each its own pass and
/// submit, after one warm-up), from GPU timestamps where the adapter has them, else the
/// CPU clock.
pub fn time_dispatches(ctx: &GpuContext, dispatches: &[Dispatch], reps: u32) -> Result<f64> {
    time_dispatches_n(ctx, dispatches, reps, 1)
}

/// `time_dispatches` for a step of `n_tokens` tokens (prompt-processing dispatches).
pub fn time_dispatches_n(ctx: &GpuContext, dispatches: &[Dispatch], reps: u32, n_tokens: u32) -> Result<f64> {
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
            ctx.wait("the benchmark")?;
            t0.elapsed().as_secs_f64()
        };
        if round > 0 {
            times.push(secs);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
