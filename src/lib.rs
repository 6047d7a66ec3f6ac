//! Lanterna: GGUF models on any GPU through wgpu, with a plain f32 CPU reference.
//!
//! Data flow: GGUF file (`gguf`) → tensors (`quant`) → model definition and the forward
//! recipe (`model`) → one of two executors implementing the recipe (`cpu`, `gpu`) →
//! logits → `sampler` → token, driven by `generate`. Around them: `fetch` (the model-file
//! cache), `requantize` (`lanterna quantize`), `compare` and `perplexity`.

pub mod auto;
pub mod chat;
pub mod compare;
pub mod cpu;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod gguf;
pub mod gpu;
pub mod interrupt;
pub mod model;
pub mod perplexity;
pub mod quant;
pub mod requantize;
pub mod sampler;
pub mod serve;
pub mod tokenizer;

pub use error::{Error, Result};
