//! The forward step, written once. Both executors implement [`Ops`]: the CPU reference
//! runs each op as it is called, the GPU executor records it as dispatches at load and
//! replays them every token. Whether an implementation fuses ops into one kernel is its
//! own business; the order and the data flow are decided here, from `Config`'s data
//! (no architecture names), so the two executors cannot drift apart.

use super::acts::Act;
use super::config::{Activation, Config, LayerPlan};
use super::weights::{LayerWeights, ModelWeights};
use crate::error::Result;

/// The name of one op: a layer's tensor or step ("blk.3.attn_q") or a model-level one ("output").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    pub layer: Option<usize>,
    pub name: &'static str,
}

impl Op {
    pub fn model(name: &'static str) -> Self {
        Op { layer: None, name }
    }

    pub fn layer(layer: usize, name: &'static str) -> Self {
        Op { layer: Some(layer), name }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.layer {
            Some(il) => write!(f, "blk.{il}.{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// What a forward step is made of. Activations are named by [`Act`]; weights are the
/// executor's own tensors. Every op applies to each token of the step.
pub trait Ops {
    type Tensor;
    /// X = the step's token row(s) of `w` × `scale`.
    fn embed(&mut self, w: &Self::Tensor, scale: f32) -> Result<()>;
    /// dst = rms_norm(src) · g, over `rows` equal rows of each token's `src` (more than one
    /// for per-head q/k norms); `src == dst` normalises in place.
    fn norm(&mut self, op: Op, src: Act, dst: Act, g: &Self::Tensor, rows: usize) -> Result<()>;
    /// y = W·x (+ bias).
    fn project(&mut self, op: Op, w: &Self::Tensor, bias: Option<&Self::Tensor>, x: Act, y: Act) -> Result<()>;
    /// Rotate Q and K by the step's position(s) with the layer's RoPE, then append K and V
    /// to the layer's cache.
    fn rope_store(&mut self, layer: usize, plan: &LayerPlan) -> Result<()>;
    /// Att = attention of Q over the layer's cache: causal, within the layer's window.
    fn attention(&mut self, layer: usize, plan: &LayerPlan) -> Result<()>;
    /// gate = act(gate) · up
    fn glu(&mut self, op: Op, gate: Act, up: Act, act: Activation) -> Result<()>;
    /// x += y
    fn add(&mut self, op: Op, x: Act, y: Act) -> Result<()>;
    /// x = cap · tanh(x / cap)
    fn softcap(&mut self, op: Op, x: Act, cap: f32) -> Result<()>;
    /// `x` now holds the intermediate `name` of `layer` that `compare` captures
    /// (one of `model::CAPTURE_NAMES`).
    fn mark(&mut self, name: &'static str, layer: usize, x: Act) -> Result<()>;
}

/// One whole step: the embedding, every layer, and the LM head into `Act::Logits`.
pub fn forward<O: Ops>(ops: &mut O, c: &Config, w: &ModelWeights<O::Tensor>) -> Result<()> {
    layers(ops, c, w)?;
    head(ops, c, w)
}

/// The embedding and every layer, leaving the residual stream in `Act::X`.
pub fn layers<O: Ops>(ops: &mut O, c: &Config, w: &ModelWeights<O::Tensor>) -> Result<()> {
    ops.embed(&w.token_embd, c.embd_scale)?;
    for (il, (lw, plan)) in w.layers.iter().zip(&c.layers).enumerate() {
        attention_block(ops, c, il, lw, plan)?;
        ffn_block(ops, il, lw, c.act)?;
    }
    Ok(())
}

/// The final norm and the LM head (tied to the embedding when the file has no output).
pub fn head<O: Ops>(ops: &mut O, c: &Config, w: &ModelWeights<O::Tensor>) -> Result<()> {
    ops.norm(Op::model("output_norm"), Act::X, Act::Xn, &w.output_norm, 1)?;
    ops.project(Op::model("output"), w.lm_head(), None, Act::Xn, Act::Logits)?;
    if let Some(cap) = c.final_softcap {
        ops.softcap(Op::model("output+softcap"), Act::Logits, cap)?;
    }
    Ok(())
}

fn attention_block<O: Ops>(
    ops: &mut O,
    c: &Config,
    il: usize,
    lw: &LayerWeights<O::Tensor>,
    plan: &LayerPlan,
) -> Result<()> {
    let l = |name| Op::layer(il, name);
    ops.norm(l("attn_norm"), Act::X, Act::Xn, &lw.attn_norm, 1)?;
    ops.mark("attn_norm", il, Act::Xn)?;
    ops.project(l("attn_q"), &lw.attn_q, lw.attn_q_bias.as_ref(), Act::Xn, Act::Q)?;
    ops.project(l("attn_k"), &lw.attn_k, lw.attn_k_bias.as_ref(), Act::Xn, Act::K)?;
    ops.project(l("attn_v"), &lw.attn_v, lw.attn_v_bias.as_ref(), Act::Xn, Act::V)?;
    if let (Some(qn), Some(kn)) = (&lw.attn_q_norm, &lw.attn_k_norm) {
        ops.norm(l("attn_q_norm"), Act::Q, Act::Q, qn, c.n_head)?;
        ops.norm(l("attn_k_norm"), Act::K, Act::K, kn, c.n_head_kv)?;
    }
    ops.rope_store(il, plan)?;
    for (name, act) in [("q", Act::Q), ("k", Act::K), ("v", Act::V)] {
        ops.mark(name, il, act)?;
    }
    ops.attention(il, plan)?;
    ops.mark("attn", il, Act::Att)?;
    ops.project(l("attn_output"), &lw.attn_output, None, Act::Att, Act::O)?;
    if let Some(n) = &lw.post_attn_norm {
        ops.norm(l("post_attention_norm"), Act::O, Act::O, n, 1)?;
    }
    ops.mark("attn_out", il, Act::O)?;
    ops.add(l("attn_residual"), Act::X, Act::O)
}

fn ffn_block<O: Ops>(ops: &mut O, il: usize, lw: &LayerWeights<O::Tensor>, act: Activation) -> Result<()> {
    let l = |name| Op::layer(il, name);
    ops.norm(l("ffn_norm"), Act::X, Act::Xn, &lw.ffn_norm, 1)?;
    ops.mark("ffn_norm", il, Act::Xn)?;
    ops.project(l("ffn_gate"), &lw.ffn_gate, None, Act::Xn, Act::Gate)?;
    ops.project(l("ffn_up"), &lw.ffn_up, None, Act::Xn, Act::Up)?;
    ops.glu(l("ffn_glu"), Act::Gate, Act::Up, act)?;
    ops.project(l("ffn_down"), &lw.ffn_down, None, Act::Gate, Act::O)?;
    if let Some(n) = &lw.post_ffn_norm {
        ops.norm(l("post_ffw_norm"), Act::O, Act::O, n, 1)?;
    }
    ops.mark("ffn_out", il, Act::O)?;
    ops.add(l("ffn_residual"), Act::X, Act::O)?;
    ops.mark("residual", il, Act::X)
}
