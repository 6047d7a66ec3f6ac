//! Reading intermediates back for `lanterna compare`, and perturbing one kernel's
//! output on purpose (to prove the comparison catches it). Nothing here runs unless
//! asked: the normal token step records no copies.

use super::buffers::{f32_buffer_init, read_staging, staging_buffer};
use super::builder::Builder;
use super::model::{GpuModel, Segment};
use crate::error::{Error, Result};
use crate::model::Captured;

/// Where one captured intermediate comes from and where it lands in the capture buffer.
pub struct CapturePoint {
    pub segment: usize,
    pub dispatch: usize,
    pub name: &'static str,
    pub layer: usize,
    pub offset: u64,
    pub len: u32,
}

pub struct Capture {
    pub points: Vec<CapturePoint>,
    pub buffer: wgpu::Buffer,
    pub staging: wgpu::Buffer,
    pub floats: usize,
}

/// A dispatch labelled "X+something" (a bias add, a deliberate perturbation) finishes
/// the output of dispatch "X": it is captured after it.
fn base_label(label: &str) -> &str {
    label.split('+').next().unwrap_or(label)
}

const PERTURBATION: &str = "+perturbation";

/// Which intermediate a dispatch's output is, by its label ("blk.3.ffn_down").
fn capture_name(label: &str, post_norms: bool) -> Option<(&'static str, usize)> {
    let rest = base_label(label).strip_prefix("blk.")?;
    let (layer, op) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let name = match op {
        "attn_norm" => "attn_norm",
        "rope_q" => "q",
        "rope_k" => "k",
        "attn_v" => "v",
        "attention" => "attn",
        "post_attention_norm" if post_norms => "attn_out",
        "attn_output" if !post_norms => "attn_out",
        "ffn_norm" => "ffn_norm",
        "post_ffw_norm" if post_norms => "ffn_out",
        "ffn_down" if !post_norms => "ffn_out",
        "ffn_residual" => "residual",
        _ => return None,
    };
    Some((name, layer))
}

impl GpuModel {
    /// Capture every intermediate of the following forward steps (see `take_captured`).
    pub fn enable_capture(&mut self) -> Result<()> {
        let mut points = Vec::new();
        let mut offset = 0u64;
        for (si, seg) in self.segments.iter().enumerate() {
            let Segment::Pass(ds) = seg else { continue };
            for (di, d) in ds.iter().enumerate() {
                // A tensor split in parts has several dispatches with one label: take the last.
                if ds.get(di + 1).is_some_and(|n| base_label(&n.label) == base_label(&d.label)) {
                    continue;
                }
                if let (Some((name, layer)), Some((_, len))) = (capture_name(&d.label, self.cfg.post_norms), &d.output)
                {
                    points.push(CapturePoint { segment: si, dispatch: di, name, layer, offset, len: *len });
                    offset += *len as u64 * 4;
                }
            }
        }
        let floats = (offset / 4) as usize;
        let buffer = super::buffers::f32_buffer(&self.ctx, "capture", floats);
        let staging = staging_buffer(&self.ctx, "capture staging", offset);
        self.capture = Some(Capture { points, buffer, staging, floats });
        Ok(())
    }

    /// Record the step with a copy of each captured output after its dispatch.
    pub(crate) fn encode_captured(&self, pos: usize, enc: &mut wgpu::CommandEncoder) {
        let Some(cap) = &self.capture else { return };
        for (si, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::CopyKv { src, dst, bytes } => {
                    enc.copy_buffer_to_buffer(src, 0, dst, pos as u64 * bytes, *bytes)
                }
                Segment::CopyLastRow { .. } => {}
                Segment::Pass(ds) => {
                    let mut start = 0;
                    for p in cap.points.iter().filter(|p| p.segment == si) {
                        {
                            let mut pass = enc.begin_compute_pass(&Default::default());
                            for d in &ds[start..=p.dispatch] {
                                d.record(&mut pass);
                            }
                        }
                        if let Some((buf, _)) = &ds[p.dispatch].output {
                            enc.copy_buffer_to_buffer(buf, 0, &cap.buffer, p.offset, p.len as u64 * 4);
                        }
                        start = p.dispatch + 1;
                    }
                    if start < ds.len() {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        for d in &ds[start..] {
                            d.record(&mut pass);
                        }
                    }
                }
            }
        }
        enc.copy_buffer_to_buffer(&cap.buffer, 0, &cap.staging, 0, cap.floats as u64 * 4);
    }

    /// The intermediates of the last captured step, in forward order.
    pub fn take_captured(&mut self) -> Result<Vec<Captured>> {
        let Some(cap) = &self.capture else { return Ok(Vec::new()) };
        let mut all = vec![0f32; cap.floats];
        read_staging(&self.ctx, &cap.staging, &mut all)?;
        Ok(cap
            .points
            .iter()
            .map(|p| Captured {
                name: p.name,
                layer: p.layer,
                data: all[(p.offset / 4) as usize..(p.offset / 4) as usize + p.len as usize].to_vec(),
            })
            .collect())
    }

    /// Add `delta` to every element of the output of the dispatch labelled `label`
    /// (the last one, for tensors in several parts), each step from now on. For testing
    /// that `compare` finds and names a wrong kernel; never used in normal runs.
    pub fn perturb(&mut self, label: &str, delta: f32) -> Result<()> {
        let found = self.segments.iter().enumerate().rev().find_map(|(si, s)| match s {
            Segment::Pass(ds) => ds.iter().rposition(|d| d.label == label).map(|di| (si, di)),
            _ => None,
        });
        let (si, di) = found.ok_or_else(|| Error::Usage(format!("no dispatch is labelled '{label}'")))?;
        let output = match &self.segments[si] {
            Segment::Pass(ds) => ds[di].output.clone(),
            _ => None,
        };
        let (out, len) = output.ok_or_else(|| Error::Usage(format!("'{label}' has no output buffer")))?;
        let deltas = f32_buffer_init(&self.ctx, "perturbation", &vec![delta; len as usize]);
        let mut b = Builder { ctx: &self.ctx, kernels: &mut self.kernels, step: &self.step, batch: None };
        let add = b.add(&format!("{label}{PERTURBATION}"), &out, &deltas, len)?;
        if let Segment::Pass(ds) = &mut self.segments[si] {
            ds.insert(di + 1, add);
        }
        self.perturb_buffers.push(deltas);
        Ok(())
    }
}
