//! Shader assembly and the pipeline cache. Each kernel is one file in `shaders/`; the
//! matrix kernels are prefixed with `common.wgsl` and the block decoder of the weight
//! type (`shaders/quant/<type>.wgsl`). Pipelines are built once per (kernel, type).

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::quant::GgmlType;

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const KSCALE: &str = include_str!("../../shaders/quant/kscale.wgsl");

fn quant_source(ty: GgmlType) -> &'static str {
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
    Matvec(GgmlType),
    Embed(GgmlType),
    RmsNorm,
    RmsNormInplace,
    Rope,
    Attention,
    Glu,
    Add,
    Softcap,
    /// The plain f32 copy the profiler measures the adapter's ceiling with.
    Stream,
}

impl Kernel {
    pub fn name(self) -> String {
        match self {
            Kernel::Matvec(t) => format!("matvec_{}", t.name().to_lowercase()),
            Kernel::Embed(t) => format!("embed_{}", t.name().to_lowercase()),
            Kernel::RmsNorm => "rms_norm".into(),
            Kernel::RmsNormInplace => "rms_norm_inplace".into(),
            Kernel::Rope => "rope".into(),
            Kernel::Attention => "attention".into(),
            Kernel::Glu => "glu".into(),
            Kernel::Add => "add".into(),
            Kernel::Softcap => "softcap".into(),
            Kernel::Stream => "stream_f32".into(),
        }
    }

    fn source(self) -> (String, &'static str) {
        let quant = |ty: GgmlType, main: &str| format!("{COMMON}\n{KSCALE}\n{}\n{main}", quant_source(ty));
        match self {
            Kernel::Matvec(t) => (quant(t, include_str!("../../shaders/matvec.wgsl")), "main"),
            Kernel::Embed(t) => (quant(t, include_str!("../../shaders/embed.wgsl")), "main"),
            Kernel::RmsNorm => (include_str!("../../shaders/rms_norm.wgsl").into(), "main"),
            Kernel::RmsNormInplace => (include_str!("../../shaders/rms_norm.wgsl").into(), "main_inplace"),
            Kernel::Rope => (include_str!("../../shaders/rope.wgsl").into(), "main"),
            Kernel::Attention => (include_str!("../../shaders/attention.wgsl").into(), "main"),
            Kernel::Glu => (include_str!("../../shaders/glu.wgsl").into(), "main"),
            Kernel::Add => (include_str!("../../shaders/add.wgsl").into(), "main"),
            Kernel::Softcap => (include_str!("../../shaders/softcap.wgsl").into(), "main"),
            Kernel::Stream => (include_str!("../../shaders/stream.wgsl").into(), "main"),
        }
    }
}

/// Threads per workgroup of every kernel (the `@workgroup_size` in the shaders).
pub const WG: u32 = 64;

pub struct Kernels {
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    pub max_groups: u32,
}

impl Kernels {
    pub fn new(limits: &wgpu::Limits) -> Self {
        Kernels { pipelines: HashMap::new(), max_groups: limits.max_compute_workgroups_per_dimension }
    }

    /// The pipeline of a kernel, compiled on first use; a WGSL or validation error
    /// becomes an error naming the kernel.
    pub fn get(&mut self, device: &wgpu::Device, k: Kernel) -> Result<&wgpu::ComputePipeline> {
        if !self.pipelines.contains_key(&k) {
            let (src, entry) = k.source();
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&k.name()),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&k.name()),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::Kernel { kernel: k.name(), msg: e.to_string() });
            }
            self.pipelines.insert(k, p);
        }
        Ok(&self.pipelines[&k])
    }

    /// Workgroup counts for `n` workgroups, spilling into y past the per-dimension limit.
    pub fn groups(&self, n: u32) -> (u32, u32, u32) {
        if n <= self.max_groups {
            (n.max(1), 1, 1)
        } else {
            (self.max_groups, n.div_ceil(self.max_groups), 1)
        }
    }
}

pub fn uniform<T: bytemuck::Pod>(device: &wgpu::Device, label: &str, v: &T) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(v),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// A bind group for `pipeline` with `buffers` at bindings 0, 1, 2, …
pub fn bind(device: &wgpu::Device, pipeline: &wgpu::ComputePipeline, label: &str, buffers: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
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

/// One dispatch, recorded once at load and replayed every token.
pub struct Dispatch {
    pub kernel: Kernel,
    /// What it computes, for profiles and errors: "blk.3.attn_q".
    pub label: String,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub groups: (u32, u32, u32),
    pub traffic: Traffic,
    /// The buffer it writes and how many floats: what `compare` captures and what a
    /// deliberate perturbation modifies.
    pub output: Option<(wgpu::Buffer, u32)>,
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups.0, self.groups.1, self.groups.2);
    }
}
