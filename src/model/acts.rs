//! The activations of one step, named once for both executors: the recipe speaks of
//! `Act::Q`, the CPU holds it as a `Vec<f32>`, the GPU as a buffer, and the memory plan
//! sizes it from the same `width`.

use super::config::Config;

/// One activation of a step, per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// [n_embd] the residual stream
    X,
    /// [n_embd] the normed input of a block
    Xn,
    /// [n_head * head_dim]
    Q,
    /// [n_head_kv * head_dim]
    K,
    /// [n_head_kv * head_dim_v]
    V,
    /// [n_head * head_dim_v] the attention output
    Att,
    /// [n_embd] a block's output
    O,
    /// [n_ff]
    Gate,
    /// [n_ff]
    Up,
    /// [n_vocab] the LM head's output; each executor keeps it apart from `Acts`.
    Logits,
}

impl Act {
    /// Every activation a layer uses, in the order `Acts` stores them.
    pub const LAYER: [Act; 9] = [Act::X, Act::Xn, Act::Q, Act::K, Act::V, Act::Att, Act::O, Act::Gate, Act::Up];

    /// Floats per token.
    pub fn width(self, c: &Config) -> usize {
        match self {
            Act::X | Act::Xn | Act::O => c.n_embd,
            Act::Q => c.q_dim(),
            Act::K => c.k_dim(),
            Act::V => c.v_dim(),
            Act::Att => c.n_head * c.head_dim_v,
            Act::Gate | Act::Up => c.n_ff,
            Act::Logits => c.n_vocab,
        }
    }

    /// The name buffers and plans use ("xn").
    pub fn name(self) -> &'static str {
        match self {
            Act::X => "x",
            Act::Xn => "xn",
            Act::Q => "q",
            Act::K => "k",
            Act::V => "v",
            Act::Att => "att",
            Act::O => "o",
            Act::Gate => "gate",
            Act::Up => "up",
            Act::Logits => "logits",
        }
    }

    fn slot(self) -> Option<usize> {
        Act::LAYER.iter().position(|&a| a == self)
    }
}

/// One `B` per layer activation (`Act::LAYER`), made once at load and reused by every layer.
pub struct Acts<B>([B; 9]);

impl<B> Acts<B> {
    pub fn new(mut make: impl FnMut(Act) -> B) -> Self {
        Acts(Act::LAYER.map(&mut make))
    }

    /// None for `Act::Logits`, which is not a layer activation.
    pub fn get(&self, a: Act) -> Option<&B> {
        a.slot().map(|i| &self.0[i])
    }

    pub fn get_mut(&mut self, a: Act) -> Option<&mut B> {
        a.slot().map(|i| &mut self.0[i])
    }

    /// Two different layer activations at once (None if either is not one, or they are the same).
    pub fn pair_mut(&mut self, a: Act, b: Act) -> Option<(&mut B, &mut B)> {
        let [x, y] = self.0.get_disjoint_mut([a.slot()?, b.slot()?]).ok()?;
        Some((x, y))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Act, &B)> {
        Act::LAYER.into_iter().zip(self.0.iter())
    }
}
