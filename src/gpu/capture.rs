//! Reading intermediates back for `lanterna compare`: walk hooks that copy each of the
//! recipe's marked activations into one buffer as the step runs. Nothing here runs
//! unless asked: the normal token step stops at no marks.

use super::buffers::{f32_buffer, read_staging, staging_buffer};
use super::context::GpuContext;
use super::program::{Hooks, Mark, Program};
use crate::error::Result;
use crate::model::Captured;

pub struct Capture {
    /// Per mark of the program: (name, layer, offset in floats, floats).
    points: Vec<(&'static str, usize, usize, usize)>,
    /// [all marks' floats] this step's intermediates, in mark order.
    buffer: wgpu::Buffer,
    staging: wgpu::Buffer,
    floats: usize,
}

impl Capture {
    /// Room for every mark of `program`.
    pub fn new(ctx: &GpuContext, program: &Program) -> Self {
        let mut floats = 0;
        let mut points = Vec::new();
        for m in &program.marks {
            points.push((m.name, m.layer, floats, m.len as usize));
            floats += m.len as usize;
        }
        let buffer = f32_buffer(ctx, "capture", floats);
        let staging = staging_buffer(ctx, "capture staging", (floats * 4) as u64);
        Capture { points, buffer, staging, floats }
    }

    /// After the walk: bring the step's captures to where `read` finds them.
    pub fn finish(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_buffer(&self.buffer, 0, &self.staging, 0, (self.floats * 4) as u64);
    }

    /// The intermediates of the last captured step, in forward order.
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<Captured>> {
        let mut all = vec![0f32; self.floats];
        read_staging(ctx, &self.staging, &mut all)?;
        let point = |&(name, layer, at, len): &(&'static str, usize, usize, usize)| Captured {
            name,
            layer,
            data: all[at..at + len].to_vec(),
        };
        Ok(self.points.iter().map(point).collect())
    }
}

impl Hooks for Capture {
    fn wants_marks(&self) -> bool {
        true
    }

    fn at_mark(&mut self, enc: &mut wgpu::CommandEncoder, index: usize, mark: &Mark) {
        let at = self.points[index].2 as u64 * 4;
        enc.copy_buffer_to_buffer(&mark.buffer, 0, &self.buffer, at, mark.len as u64 * 4);
    }
}
