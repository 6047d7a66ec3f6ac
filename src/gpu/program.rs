//! A recorded step — compute passes of dispatches, and the copies between them — and
//! the one walker that replays it into a command encoder. What differs between a plain
//! step, a profiled one and a captured one is only what happens around each dispatch and
//! at the recipe's marks: the [`Hooks`].

use super::context::GpuContext;
use super::kernels::Dispatch;
use crate::error::{Error, Result};

/// A run of dispatches in one compute pass, or a copy between passes.
pub enum Segment {
    Pass(Vec<Dispatch>),
    /// Copy the step's last token row (`bytes` long) of `src` to the start of `dst`.
    CopyLastRow {
        src: wgpu::Buffer,
        dst: wgpu::Buffer,
        bytes: u64,
    },
}

/// Where the recipe marked an intermediate: after the first `after` dispatches of
/// pass `segment`, `buffer` holds `len` floats of intermediate `name` of `layer`.
pub struct Mark {
    pub segment: usize,
    pub after: usize,
    pub name: &'static str,
    pub layer: usize,
    pub buffer: wgpu::Buffer,
    pub len: u32,
}

/// A recorded step.
#[derive(Default)]
pub struct Program {
    pub segments: Vec<Segment>,
    pub marks: Vec<Mark>,
}

/// How a walk separates dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// The recorded passes as they are.
    None,
    /// Each dispatch in a pass of its own.
    Pass,
    /// Each dispatch in a submit of its own (handed to [`Hooks::submit_one`]).
    Submit,
}

/// What a walk does besides replaying the dispatches. Every method has a do-nothing default.
pub trait Hooks {
    fn isolation(&self) -> Isolation {
        Isolation::None
    }
    /// Before `d` is recorded in a shared pass.
    fn before_dispatch(&mut self, _pass: &mut wgpu::ComputePass<'_>, _d: &Dispatch) {}
    /// At the end of a shared pass.
    fn end_pass(&mut self, _pass: &mut wgpu::ComputePass<'_>) {}
    /// Timestamps for the pass holding only `d` (`Isolation::Pass`).
    fn pass_timestamps(&mut self, _d: &Dispatch) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        None
    }
    /// Submit the command buffer that ends with `d` (`Isolation::Submit`).
    fn submit_one(&mut self, ctx: &GpuContext, cmd: wgpu::CommandBuffer, _d: &Dispatch) -> Result<()> {
        ctx.queue.submit([cmd]);
        Ok(())
    }
    /// Whether to stop the pass at marks (for `at_mark`).
    fn wants_marks(&self) -> bool {
        false
    }
    /// At mark number `index`, its pass ended.
    fn at_mark(&mut self, _enc: &mut wgpu::CommandEncoder, _index: usize, _mark: &Mark) {}
}

/// The plain step.
pub struct NoHooks;
impl Hooks for NoHooks {}

impl Program {
    /// Every dispatch, in order.
    pub fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.segments.iter().flat_map(|s| match s {
            Segment::Pass(ds) => ds.as_slice(),
            _ => &[],
        })
    }

    /// Record the step for `n` tokens into `enc` (its position is in the Step uniform).
    pub fn walk(&self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, n: u32, hooks: &mut impl Hooks) -> Result<()> {
        for (si, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Pass(ds) => self.walk_pass(ctx, enc, si, ds, n, hooks)?,
                Segment::CopyLastRow { src, dst, bytes } => {
                    enc.copy_buffer_to_buffer(src, (n as u64 - 1) * bytes, dst, 0, *bytes)
                }
            }
        }
        Ok(())
    }

    /// One recorded pass, split at the marks the hooks want.
    fn walk_pass(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        si: usize,
        ds: &[Dispatch],
        n: u32,
        hooks: &mut impl Hooks,
    ) -> Result<()> {
        let mut start = 0;
        if hooks.wants_marks() {
            for (i, m) in self.marks.iter().enumerate().filter(|(_, m)| m.segment == si) {
                run(ctx, enc, &ds[start..m.after], n, hooks)?;
                hooks.at_mark(enc, i, m);
                start = m.after;
            }
        }
        run(ctx, enc, &ds[start..], n, hooks)
    }

    /// Insert `d` right after the last dispatch labelled `label`; marks after that
    /// dispatch stay after it, so they see what `d` does. `make` gets the labelled
    /// dispatch's output buffer and length.
    pub fn insert_after(
        &mut self,
        label: &str,
        make: impl FnOnce(&wgpu::Buffer, u32) -> Result<Dispatch>,
    ) -> Result<()> {
        let found = self.segments.iter().enumerate().rev().find_map(|(si, s)| match s {
            Segment::Pass(ds) => ds.iter().rposition(|d| d.label == label).map(|di| (si, di)),
            _ => None,
        });
        let (si, di) = found.ok_or_else(|| Error::Usage(format!("no dispatch is labelled '{label}'")))?;
        if let Segment::Pass(ds) = &mut self.segments[si] {
            let output = ds[di].output.clone();
            let (out, len) = output.ok_or_else(|| Error::Usage(format!("'{label}' has no output buffer")))?;
            ds.insert(di + 1, make(&out, len)?);
        }
        for m in self.marks.iter_mut().filter(|m| m.segment == si && m.after > di) {
            m.after += 1;
        }
        Ok(())
    }
}

/// Record `ds` as the hooks' isolation asks.
fn run(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    ds: &[Dispatch],
    n: u32,
    hooks: &mut impl Hooks,
) -> Result<()> {
    if ds.is_empty() {
        return Ok(());
    }
    match hooks.isolation() {
        Isolation::None => {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in ds {
                hooks.before_dispatch(&mut pass, d);
                d.record_n(&mut pass, n);
            }
            hooks.end_pass(&mut pass);
        }
        Isolation::Pass => {
            for d in ds {
                let timestamp_writes = hooks.pass_timestamps(d);
                let desc = wgpu::ComputePassDescriptor { label: Some(&d.label), timestamp_writes };
                d.record_n(&mut enc.begin_compute_pass(&desc), n);
            }
        }
        Isolation::Submit => {
            for d in ds {
                d.record_n(&mut enc.begin_compute_pass(&Default::default()), n);
                let done = std::mem::replace(enc, ctx.device.create_command_encoder(&Default::default()));
                hooks.submit_one(ctx, done.finish(), d)?;
            }
        }
    }
    Ok(())
}
