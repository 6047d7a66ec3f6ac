//! The recipe's ops on the CPU: each runs at once, in plain f32, on the step's one token.

use super::ops;
use super::tensor::CpuTensor;
use crate::error::{Error, Result};
use crate::model::{Act, Activation, Acts, Captured, Config, LayerPlan, Op, Ops};

/// One token's step over the model's activations and KV cache.
pub struct CpuStep<'a> {
    pub c: &'a Config,
    pub acts: &'a mut Acts<Vec<f32>>,
    pub logits: &'a mut Vec<f32>, // [n_vocab]
    /// Per layer: [pos, k_dim] keys after RoPE, and [pos, v_dim] values.
    pub k_cache: &'a mut [Vec<f32>],
    pub v_cache: &'a mut [Vec<f32>],
    pub token: u32,
    pub pos: usize,
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
        let (t, e) = (self.token as usize, w.cols);
        for (d, v) in self.buf(Act::X).iter_mut().zip(&w.data[t * e..(t + 1) * e]) {
            *d = v * scale;
        }
        Ok(())
    }

    fn norm(&mut self, _op: Op, src: Act, dst: Act, g: &CpuTensor, rows: usize) -> Result<()> {
        if src != dst {
            let (y, x) = self.two(dst, src)?;
            y.copy_from_slice(x);
        }
        let eps = self.c.rms_eps;
        let y = self.buf(dst);
        let cols = y.len() / rows;
        y.chunks_exact_mut(cols).for_each(|r| ops::rms_norm(r, &g.data, eps));
        Ok(())
    }

    fn project(&mut self, _op: Op, w: &CpuTensor, bias: Option<&CpuTensor>, x: Act, y: Act) -> Result<()> {
        let (y, x) = self.two(y, x)?;
        ops::matvec(&w.data, x, y);
        if let Some(b) = bias {
            ops::add(y, &b.data);
        }
        Ok(())
    }

    fn rope_store(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let c = self.c;
        let cs = ops::rope_cos_sin(
            c.n_rot,
            self.pos,
            plan.rope_base,
            plan.rope_scale,
            self.freq_factors,
            c.rope_attn_factor,
        );
        for a in [Act::Q, Act::K] {
            ops::rope_with(self.buf(a), c.head_dim, c.n_rot, &cs, c.rope_style);
        }
        let (k, v) = (self.acts.get(Act::K), self.acts.get(Act::V));
        ops::kv_store(&mut self.k_cache[il], k.map_or(&[][..], |k| k), c.kv_type);
        ops::kv_store(&mut self.v_cache[il], v.map_or(&[][..], |v| v), c.kv_type);
        Ok(())
    }

    fn attention(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let c = self.c;
        let first = plan.window.map_or(0, |w| (self.pos + 1).saturating_sub(w));
        let (att, q) = self.acts.pair_mut(Act::Att, Act::Q).ok_or_else(|| Error::Usage("attention buffers".into()))?;
        let (hd, hdv, group) = (c.head_dim, c.head_dim_v, c.n_head / c.n_head_kv);
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
                self.pos + 1,
                c.attn_scale,
                c.attn_softcap,
                &mut att[h * hdv..(h + 1) * hdv],
            );
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
