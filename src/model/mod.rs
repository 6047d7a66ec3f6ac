//! The model definition shared by both executors: hyperparameters from GGUF metadata
//! (`config`), the per-layer recipe (`LayerPlan`), and which tensors each layer uses
//! with their shapes (`weights`). Executors never look at metadata keys themselves.

pub mod config;
pub mod weights;

pub use config::{Activation, Arch, Config, LayerPlan, RopeStyle};
pub use weights::{rope_factors, row_view, LayerWeights, ModelWeights};

/// The intermediates `lanterna compare` captures in every layer, in forward order.
/// Both executors name them the same way.
pub const CAPTURE_NAMES: [&str; 9] =
    ["attn_norm", "q", "k", "v", "attn", "attn_out", "ffn_norm", "ffn_out", "residual"];

/// One captured intermediate of one forward step.
#[derive(Clone, Debug)]
pub struct Captured {
    pub name: &'static str,
    pub layer: usize,
    pub data: Vec<f32>,
}
