//! The GPU executor: wgpu context, weight upload, WGSL kernels, and the recipe recorded
//! as programs of dispatches that every step replays.
//!
//! context → buffers (weights) + state (activations, KV cache, tables) → builder (one
//! kernel's dispatch) → record (the recipe's ops as dispatches) → program (segments and the
//! walker) → executor (`GpuModel`) → topk (the sampler's candidates, read back instead of
//! the vocabulary); profile and capture are walk hooks.

pub mod batch;
pub mod buffers;
pub mod builder;
pub mod capture;
pub mod checks;
pub mod context;
pub mod executor;
pub mod kernels;
pub mod layout;
pub mod params;
pub mod plan;
pub mod profile;
pub mod program;
pub mod record;
pub mod state;
pub mod topk;
pub mod tune;

pub use context::{AdapterChoice, GpuContext};
pub use executor::GpuModel;
