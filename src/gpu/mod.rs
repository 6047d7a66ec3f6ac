//! The GPU executor: wgpu context, weight upload, WGSL kernels and the per-token step.

pub mod buffers;
pub mod builder;
pub mod capture;
pub mod context;
pub mod kernels;
pub mod model;
pub mod params;
pub mod plan;
pub mod profile;

pub use context::{AdapterChoice, GpuContext};
pub use model::GpuModel;
