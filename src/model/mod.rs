//! The model definition shared by both executors: hyperparameters from GGUF metadata
//! (`config`), the per-layer recipe (`LayerPlan`), and which tensors each layer uses
//! with their shapes (`weights`). Executors never look at metadata keys themselves.

pub mod config;
pub mod weights;

pub use config::{Activation, Arch, Config, LayerPlan, RopeStyle};
pub use weights::{LayerWeights, ModelWeights};
