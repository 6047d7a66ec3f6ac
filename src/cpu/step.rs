//! The recipe's ops on the CPU: each runs at once, in plain f32, on the step's tokens
//! (one when decoding, a chunk of a prompt otherwise). Activations hold the tokens one
//! after another ([n, width]); every value is computed exactly as for a lone token.

use super::ops;
use super::tensor::CpuTensor;
use crate::error::{Error, Result};
use crate::model::{Act, Activation, Acts, Captured, Config, LayerPlan, Op, Ops};

/// A step of `tokens` (at positions pos, pos + 1, …) over the model's activations and KV cache.
pub struct CpuStep<'a> {
    pub c: &'a Config,
    pub acts: &'a mut Acts<Vec<f32>>, // each [tokens.len(), width]
    /// [tokens.len(), n_vocab] when `all_logits`, else [n_vocab]: the last token's only.
    pub logits: &'a mut Vec<f32>,
    /// Per layer: [pos, k_dim] keys after RoPE, and [pos, v_dim] values.
    pub k_cache: &'a mut [Vec<f32>],
    pub v_cache: &'a mut [Vec<f32>],
    pub tokens: &'a [u32],
    pub pos: usize,
    pub all_logits: bool,
    /// [n_rot/2] RoPE frequency divisors (Llama 3.1, Phi-3 LongRoPE), if any.
    pub freq_factors: Option<&'a [f32]>,
    /// When set, every marked intermediate is appended (for `compare`).
    pub capture: Option<&'a mut Vec<Captured>>,
}

impl CpuStep<'_> {
    fn buf(&mut self, a: Act) -> &mut Vec<f32> {
        match self.acts.get_mut(a) {
            Some(v) => v,
            None => self.logits,
        }
    }

    /// `a` to write and `b` to read; they must differ.
    fn two(&mut self, a: Act, b: Act) -> Result<(&mut Vec<f32>, &Vec<f32>)> {
        let pair = match (a, b) {
            (Act::Logits, b) => self.acts.get(b).map(|b| (&mut *self.logits, b)),
            (a, Act::Logits) => self.acts.get_mut(a).map(|a| (a, &*self.logits)),
            (a, b) => self.acts.pair_mut(a, b).map(|(a, b)| (a, &*b)),
        };
        pair.ok_or_else(|| Error::Usage(format!("an op cannot read {a:?} and write {b:?} at once")))
    }
}

impl Ops for CpuStep<'_> {
    type Tensor = CpuTensor;

    fn embed(&mut self, w: &CpuTensor, scale: f32) -> Result<()> {
        let (tokens, e) = (self.tokens, w.cols);
        for (row, &t) in self.buf(Act::X).chunks_exact_mut(e).zip(tokens) {
            let t = t as usize;
            for (d, v) in row.iter_mut().zip(&w.data[t * e..(t + 1) * e]) {
                *d = v * scale;
            }
        }
        Ok(())
    }

    fn norm(&mut self, _op: Op, src: Act, dst: Act, g: &CpuTensor, rows: usize) -> Result<()> {
        if src != dst {
            let (y, x) = self.two(dst, src)?;
            y.copy_from_slice(x);
        }
        let (eps, n) = (self.c.rms_eps, self.tokens.len());
        let y = self.buf(dst);
        let cols = y.len() / (rows * n);
        y.chunks_exact_mut(cols).for_each(|r| ops::rms_norm(r, &g.data, eps));
        Ok(())
    }

    fn project(&mut self, _op: Op, w: &CpuTensor, bias: Option<&CpuTensor>, x: Act, y: Act) -> Result<()> {
        let n = self.tokens.len();
        let last_only = y == Act::Logits && !self.all_logits;
        let (y, x) = self.two(y, x)?;
        // A prompt's LM head: only the last token's logits are wanted.
        let (n, x) = if last_only { (1, &x[(n - 1) * w.cols..]) } else { (n, &x[..]) };
        match n {
            1 => ops::matvec(&w.data, x, y),
            _ => ops::matmul(&w.data, x, y, n),
        }
        if let Some(b) = bias {
            y.chunks_exact_mut(w.rows).for_each(|row| ops::add(row, &b.data));
        }
        Ok(())
    }

    fn rope_store(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let c = self.c;
        for t in 0..self.tokens.len() {
            let cs = ops::rope_cos_sin(
                c.n_rot,
                self.pos + t,
                plan.rope_base,
                plan.rope_scale,
                self.freq_factors,
                c.rope_attn_factor,
            );
            for (a, w) in [(Act::Q, c.q_dim()), (Act::K, c.k_dim())] {
                ops::rope_with(&mut self.buf(a)[t * w..(t + 1) * w], c.head_dim, c.n_rot, &cs, c.rope_style);
            }
        }
        let (k, v) = (self.acts.get(Act::K), self.acts.get(Act::V));
        ops::kv_store(&mut self.k_cache[il], k.map_or(&[][..], |k| k), c.kv_type);
        ops::kv_store(&mut self.v_cache[il], v.map_or(&[][..], |v| v), c.kv_type);
        Ok(())
    }

    /// Each token attends to the cache up to its own position (causal within the step).
    fn attention(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let c = self.c;
        let (att, q) = self.acts.pair_mut(Act::Att, Act::Q).ok_or_else(|| Error::Usage("attention buffers".into()))?;
        let (hd, hdv, group) = (c.head_dim, c.head_dim_v, c.n_head / c.n_head_kv);
        let rows = q.chunks_exact(c.q_dim()).zip(att.chunks_exact_mut(c.n_head * hdv));
        for (t, (q, att)) in rows.enumerate() {
            let end = self.pos + t + 1;
            let first = plan.window.map_or(0, |w| end.saturating_sub(w));
            for h in 0..c.n_head {
                let kvh = h / group;
                ops::attention_head(
                    &q[h * hd..(h + 1) * hd],
                    &self.k_cache[il],
                    c.k_dim(),
                    kvh * hd,
                    &self.v_cache[il],
                    c.v_dim(),
                    kvh * hdv,
                    first,
                    end,
                    c.attn_scale,
                    c.attn_softcap,
                    &mut att[h * hdv..(h + 1) * hdv],
                );
            }
        }
        Ok(())
    }

    fn glu(&mut self, _op: Op, gate: Act, up: Act, act: Activation) -> Result<()> {
        let (g, u) = self.two(gate, up)?;
        ops::glu(g, u, act);
        Ok(())
    }

    fn add(&mut self, _op: Op, x: Act, y: Act) -> Result<()> {
        let (x, y) = self.two(x, y)?;
        ops::add(x, y);
        Ok(())
    }

    fn softcap(&mut self, _op: Op, x: Act, cap: f32) -> Result<()> {
        ops::softcap(self.buf(x), cap);
        Ok(())
    }

    fn mark(&mut self, name: &'static str, layer: usize, x: Act) -> Result<()> {
        if self.capture.is_some() {
            let data = self.buf(x).clone();
            if let Some(cap) = self.capture.as_mut() {
                cap.push(Captured { name, layer, data });
            }
        }
        Ok(())
    }
}
