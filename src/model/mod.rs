//! The model definition shared by both executors: hyperparameters from GGUF metadata
//! (`config`), which tensors each layer uses with their shapes (`weights`), the
//! activations of a step (`acts`) and the forward step itself (`recipe`), which the CPU
//! and GPU executors implement. Executors never look at metadata keys themselves.

pub mod acts;
pub mod config;
pub mod recipe;
pub mod weights;

pub use acts::{Act, Acts};
pub use config::{Activation, Arch, Config, KvType, LayerPlan, RopeStyle};
pub use recipe::{Op, Ops};
pub use weights::{rope_factors, row_view, LayerWeights, ModelWeights};

/// The intermediates `lanterna compare` captures in every layer, in forward order
/// (the recipe's `mark` calls).
pub const CAPTURE_NAMES: [&str; 9] =
    ["attn_norm", "q", "k", "v", "attn", "attn_out", "ffn_norm", "ffn_out", "residual"];

/// One captured intermediate of one forward step.
#[derive(Clone, Debug)]
pub struct Captured {
    pub name: &'static str,
    pub layer: usize,
    pub data: Vec<f32>,
}
