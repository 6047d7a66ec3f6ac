//! Lanterna: GGUF models on any GPU through wgpu, with a plain f32 CPU reference.
//!
//! Data flow: GGUF file (`gguf`) → tensors (`quant`) → model definition (`model`) →
//! executor (`cpu`, later `gpu`) → logits → `sampler` → token, driven by `generate`.

pub mod compare;
pub mod cpu;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod gpu;
pub mod interrupt;
pub mod model;
pub mod models;
pub mod perplexity;
pub mod quant;
pub mod quantize;
pub mod sampler;
pub mod tokenizer;

pub use error::{Error, Result};
