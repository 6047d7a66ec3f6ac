//! The recipe's ops on the GPU: each op becomes dispatches recorded once at load, into a
//! [`Program`] that every step replays. Decoding records one token per dispatch; with a
//! `Batch` builder the same recipe records prompt chunks (matrix kernels become matmuls).
//!
//! When decoding, projections are held back until an op that is not one of the same
//! input, so that what follows can be fused: q, k and v into one dispatch, gate and up
//! and the gated activation into one (or the activation into the up projection where the
//! two cannot share a dispatch), the residual add into an output projection. A norm is
//! held too: the first projection of its output computes it (`XNorm::Rms`), and an
//! in-place post-norm joins the residual add after it. A decoding layer's q/k norms and
//! RoPE are held until attention, which does them (`Builder::attention_rope`). Marks met
//! meanwhile wait for the fused dispatch.

use super::buffers::GpuTensor;
use super::builder::{AttnIo, Builder, FusedNorm, RopeFuseIo, RopeIo, Then};
use super::kernels::Dispatch;
use super::params::AttnParams;
use super::program::{Mark, Program, Segment};
use super::state::{StepActs, StepBuffers};
use crate::error::{Error, Result};
use crate::model::{Act, Activation, Config, LayerPlan, Op, Ops};

/// Records ops into a program.
pub struct Recorder<'a, 'b> {
    pub b: &'a mut Builder<'b>,
    pub c: &'a Config,
    pub bufs: &'a StepBuffers,
    /// The decoding or the prompt-chunk activations.
    pub acts: &'a StepActs,
    /// Where `Act::Logits` is (None: this program has no LM head).
    pub logits: Option<&'a wgpu::Buffer>,
    pub n_ctx: usize,
    program: Program,
    /// The pass being recorded.
    pass: Vec<Dispatch>,
    /// Decoding projections of one input not recorded yet (at most three), and the marks
    /// that come after them.
    held: Vec<Held>,
    /// A decoding norm not recorded yet: the first matvec that reads its output does it.
    held_norm: Option<HeldNorm>,
    /// A decoding layer's q and k norms (in place, per head), held for its attention.
    held_qk: Vec<HeldNorm>,
    /// A decoding layer's RoPE and cache append, held for its attention.
    held_rope: Option<HeldRope>,
    held_marks: Vec<(&'static str, usize, Act)>,
}

/// The RoPE (and q/k norms) a decoding attention does first.
struct HeldRope {
    layer: usize,
    plan: LayerPlan,
    qk: Vec<HeldNorm>,
}

/// An RMS norm dst = rms_norm(src) · g held back for fusion.
struct HeldNorm {
    label: String,
    src: Act,
    dst: Act,
    g: GpuTensor,
}

/// A projection y = W·x held back for fusion.
struct Held {
    label: String,
    w: GpuTensor,
    x: Act,
    y: Act,
}

impl<'a, 'b> Recorder<'a, 'b> {
    pub fn new(
        b: &'a mut Builder<'b>,
        c: &'a Config,
        bufs: &'a StepBuffers,
        acts: &'a StepActs,
        logits: Option<&'a wgpu::Buffer>,
        n_ctx: usize,
    ) -> Self {
        let (program, pass) = (Program::default(), Vec::new());
        let (held, held_norm, held_marks) = (Vec::new(), None, Vec::new());
        let (held_qk, held_rope) = (Vec::new(), None);
        Recorder { b, c, bufs, acts, logits, n_ctx, program, pass, held, held_norm, held_qk, held_rope, held_marks }
    }

    /// Copy the last token row of a chunk's residual stream into `dst` (before a decoding head).
    pub fn copy_last_row(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> Result<()> {
        self.flush()?;
        self.end_pass();
        let bytes = (self.c.n_embd * 4) as u64;
        self.program.segments.push(Segment::CopyLastRow { src: src.clone(), dst: dst.clone(), bytes });
        Ok(())
    }

    pub fn finish(mut self) -> Result<Program> {
        self.flush()?;
        self.end_pass();
        Ok(self.program)
    }

    /// Record the held projections as they are (three as one q/k/v dispatch where they
    /// can be), then the marks that waited for them.
    fn flush(&mut self) -> Result<()> {
        self.emit_held_rope()?;
        let held = std::mem::take(&mut self.held);
        if let [q, k, v] = held.as_slice() {
            let label = q.label.replace("attn_q", "attn_qkv");
            let (x, norm) = self.input(q.x)?;
            let y = [self.buf(q.y)?, self.buf(k.y)?, self.buf(v.y)?];
            let fused = norm.is_some();
            if let Some(d) = self.b.matvec_qkv(&label, [&q.w, &k.w, &v.w], &x, y, norm)? {
                self.pass.push(d);
                self.norm_done(fused);
                return self.release_marks();
            }
        }
        for h in held {
            self.emit(h, Then::Store)?;
        }
        self.emit_held_norm()?;
        self.release_marks()
    }

    fn emit(&mut self, h: Held, then: Then) -> Result<()> {
        let ((x, norm), y) = (self.input(h.x)?, self.buf(h.y)?);
        let fused = norm.is_some();
        let ds = self.b.matvec_normed(&h.label, &h.w, &x, y, then, norm)?;
        self.pass.extend(ds);
        self.norm_done(fused);
        Ok(())
    }

    /// What a matvec reading `x` binds as its X: `x` itself, or where `x` is the output of
    /// the held norm and the matvec can compute it (`Builder::fuses_norm`), the norm's input
    /// and the norm to fuse. A held norm of `x` that cannot be fused is recorded first.
    fn input(&mut self, x: Act) -> Result<(wgpu::Buffer, Option<FusedNorm>)> {
        if let Some(n) = self.held_norm.as_ref().filter(|n| n.dst == x) {
            let src = self.buf(n.src)?;
            if n.src != n.dst && self.b.fuses_norm(src) {
                let (g, out, eps) = (vector(&n.g).clone(), self.buf(n.dst)?.clone(), self.c.rms_eps);
                return Ok((src.clone(), Some(FusedNorm { g, out, eps })));
            }
            self.emit_held_norm()?;
        }
        Ok((self.buf(x)?.clone(), None))
    }

    /// A dispatch recorded with the held norm fused (`fused`) did the norm.
    fn norm_done(&mut self, fused: bool) {
        if fused {
            self.held_norm = None;
        }
    }

    /// RoPE of q and k and their append to the cache as a dispatch of its own.
    fn rope_dispatch(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let c = self.c;
        let table = self.bufs.rope.for_layer(plan)?;
        let (hd, nr) = (c.head_dim as u32, c.n_rot as u32);
        let (q, k) = (self.buf(Act::Q)?, self.buf(Act::K)?);
        let label = Op::layer(il, "rope").to_string();
        let io = RopeIo {
            q,
            n_heads: c.n_head as u32,
            k,
            n_heads_k: c.n_head_kv as u32,
            v: self.buf(Act::V)?,
            v_dim: c.v_dim() as u32,
            k_cache: &self.bufs.k_cache[il],
            v_cache: &self.bufs.v_cache[il],
            table,
        };
        let d = self.b.rope_store(&label, io, hd, nr, c.rope_style, c.kv_type)?;
        self.pass.push(d);
        Ok(())
    }

    /// Whether a decoding attention of this model can do its RoPE and q/k norms.
    fn fuses_rope(&self) -> bool {
        let c = self.c;
        self.b.fuses_rope(c.head_dim as u32, c.head_dim_v as u32, c.kv_type)
    }

    /// Held q/k norms and RoPE as dispatches of their own, where no attention took them.
    fn emit_held_rope(&mut self) -> Result<()> {
        let qk = match self.held_rope.take() {
            Some(r) => {
                self.emit_qk_norms(r.qk)?;
                return self.rope_dispatch(r.layer, &r.plan);
            }
            None => std::mem::take(&mut self.held_qk),
        };
        self.emit_qk_norms(qk)
    }

    fn emit_qk_norms(&mut self, qk: Vec<HeldNorm>) -> Result<()> {
        for n in qk {
            let rows = (n.dst.width(self.c) / self.c.head_dim) as u32;
            let (y, g) = (self.buf(n.dst)?, vector(&n.g));
            let d = self.b.rms_norm_inplace(&n.label, y, g, rows, self.c.head_dim as u32, self.c.rms_eps)?;
            self.pass.push(d);
        }
        Ok(())
    }

    /// The held norm as a dispatch of its own, where no matvec took it.
    fn emit_held_norm(&mut self) -> Result<()> {
        let Some(n) = self.held_norm.take() else { return Ok(()) };
        let (x, y, g, eps) = (self.buf(n.src)?, self.buf(n.dst)?, vector(&n.g), self.c.rms_eps);
        let d = match n.src == n.dst {
            true => self.b.rms_norm_inplace(&n.label, y, g, 1, self.width(n.dst), eps)?,
            false => self.b.rms_norm(&n.label, x, y, g, 1, self.width(n.dst), eps)?,
        };
        self.pass.push(d);
        Ok(())
    }

    /// The last held projection finished as `then` (those before it as they are), then the marks.
    fn emit_last_held(&mut self, then: Then) -> Result<()> {
        let last = self.held.pop();
        for h in std::mem::take(&mut self.held) {
            self.emit(h, Then::Store)?;
        }
        if let Some(h) = last {
            self.emit(h, then)?;
        }
        self.emit_held_norm()?;
        self.release_marks()
    }

    /// Gate and up just held, of one input: one dispatch for both and the activation.
    /// False where they cannot be fused (see `Builder::matvec_gate_up`).
    fn fused_gate_up(&mut self, gate: Act, up: Act, act: Activation) -> Result<bool> {
        let [g, u] = self.held.as_slice() else { return Ok(false) };
        if g.y != gate || u.y != up || g.x != u.x {
            return Ok(false);
        }
        let (label, w, input) = (g.label.replace("ffn_gate", "ffn_gate_up"), [g.w.clone(), u.w.clone()], g.x);
        let ((x, norm), y) = (self.input(input)?, self.buf(gate)?);
        let fused = norm.is_some();
        let Some(d) = self.b.matvec_gate_up(&label, [&w[0], &w[1]], &x, y, act, norm)? else { return Ok(false) };
        self.held.clear();
        self.pass.push(d);
        self.norm_done(fused);
        self.emit_held_norm()?;
        self.release_marks()?;
        Ok(true)
    }

    fn release_marks(&mut self) -> Result<()> {
        for (name, layer, act) in std::mem::take(&mut self.held_marks) {
            self.record_mark(name, layer, act)?;
        }
        Ok(())
    }

    /// Whether the last held projection wrote `y`.
    fn last_held_wrote(&self, y: Act) -> bool {
        self.held.last().is_some_and(|h| h.y == y)
    }

    fn record_mark(&mut self, name: &'static str, layer: usize, x: Act) -> Result<()> {
        self.record_mark_of(name, layer, self.buf(x)?, self.width(x))
    }

    fn record_mark_of(&mut self, name: &'static str, layer: usize, b: &wgpu::Buffer, len: u32) -> Result<()> {
        let (segment, after, buffer) = (self.program.segments.len(), self.pass.len(), b.clone());
        self.program.marks.push(Mark { segment, after, name, layer, buffer, len });
        Ok(())
    }

    fn end_pass(&mut self) {
        if !self.pass.is_empty() {
            self.program.segments.push(Segment::Pass(std::mem::take(&mut self.pass)));
        }
    }

    fn buf(&self, a: Act) -> Result<&'a wgpu::Buffer> {
        let found = if a == Act::Logits { self.logits } else { self.acts.get(a) };
        found.ok_or_else(|| Error::Gpu(format!("no {} buffer in this program", a.name())))
    }

    /// Floats of `a` per token, as the kernels' u32 counts.
    fn width(&self, a: Act) -> u32 {
        a.width(self.c) as u32
    }

    fn attn_params(&self, plan: &LayerPlan) -> AttnParams {
        let c = self.c;
        AttnParams {
            group: (c.n_head / c.n_head_kv) as u32,
            head_dim: c.head_dim as u32,
            head_dim_v: c.head_dim_v as u32,
            k_stride: c.k_dim() as u32,
            v_stride: c.v_dim() as u32,
            splits: 1,
            window: plan.window.unwrap_or(0) as u32,
            scale: c.attn_scale,
            softcap: c.attn_softcap.unwrap_or(0.0),
            _pad: [0; 3],
        }
    }
}

/// The norm weights are F32 vectors, always in one part.
fn vector(t: &GpuTensor) -> &wgpu::Buffer {
    &t.parts[0].buffer
}

impl Ops for Recorder<'_, '_> {
    type Tensor = GpuTensor;

    fn embed(&mut self, w: &GpuTensor, scale: f32) -> Result<()> {
        self.flush()?;
        let x = self.buf(Act::X)?;
        let ds = self.b.embed("token_embd", w, x, scale)?;
        self.pass.extend(ds);
        Ok(())
    }

    fn norm(&mut self, op: Op, src: Act, dst: Act, g: &GpuTensor, rows: usize) -> Result<()> {
        // A decoding q or k norm (per head, in place): the attention after the RoPE does it.
        if src == dst && matches!(dst, Act::Q | Act::K) && self.fuses_rope() {
            let qk = std::mem::take(&mut self.held_qk);
            self.flush()?;
            self.held_qk = qk;
            self.held_qk.push(HeldNorm { label: op.to_string(), src, dst, g: g.clone() });
            return Ok(());
        }
        self.flush()?;
        // A decoding norm of one row: the next matvec reading dst fuses it, or (in place, a
        // post-norm) the residual add after it.
        if self.b.batch.is_none() && rows == 1 {
            self.held_norm = Some(HeldNorm { label: op.to_string(), src, dst, g: g.clone() });
            return Ok(());
        }

        let (eps, label) = (self.c.rms_eps, op.to_string());
        let cols = self.width(dst) / rows as u32;
        let (x, y) = (self.buf(src)?, self.buf(dst)?);
        let d = if src == dst {
            self.b.rms_norm_inplace(&label, y, vector(g), rows as u32, cols, eps)?
        } else {
            self.b.rms_norm(&label, x, y, vector(g), rows as u32, cols, eps)?
        };
        self.pass.push(d);
        Ok(())
    }

    fn project(&mut self, op: Op, w: &GpuTensor, bias: Option<&GpuTensor>, x: Act, y: Act) -> Result<()> {
        let label = op.to_string();
        if self.b.batch.is_none() && bias.is_none() {
            // Another projection of the same input joins the held ones (q, k, v; gate, up).
            if self.held.len() == 3 || self.held.first().is_some_and(|h| h.x != x) {
                self.flush()?;
            }
            self.held.push(Held { label, w: w.clone(), x, y });
            return Ok(());
        }
        self.flush()?;
        let (xb, yb) = (self.buf(x)?, self.buf(y)?);
        let ds = self.b.matvec(&label, w, xb, yb)?;
        self.pass.extend(ds);
        if let Some(bias) = bias {
            let d = self.b.add_bias(&format!("{label}+bias"), yb, vector(bias), self.width(y))?;
            self.pass.push(d);
        }
        Ok(())
    }

    fn rope_store(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let qk = std::mem::take(&mut self.held_qk);
        self.flush()?;
        // Both norms or none: the fused kernel normalises queries and keys together.
        if self.fuses_rope() && (qk.is_empty() || qk.len() == 2) {
            self.held_rope = Some(HeldRope { layer: il, plan: plan.clone(), qk });
            return Ok(());
        }
        self.emit_qk_norms(qk)?;
        self.rope_dispatch(il, plan)
    }

    fn attention(&mut self, il: usize, plan: &LayerPlan) -> Result<()> {
        let rope = self.held_rope.take_if(|r| r.layer == il);
        if rope.is_none() {
            self.flush()?;
        }
        let (q, att) = (self.buf(Act::Q)?, self.buf(Act::Att)?);
        let (k, v) = (&self.bufs.k_cache[il], &self.bufs.v_cache[il]);
        let label = Op::layer(il, "attention").to_string();
        let p = self.attn_params(plan);
        let (n_head, kv) = (self.c.n_head as u32, self.c.kv_type);
        let io = AttnIo { q, k_cache: k, v_cache: v, partials: &self.acts.partials, out: att, n_head, kv };
        let Some(rope) = rope else {
            let ds = self.b.attention(&label, io, p)?;
            self.pass.extend(ds);
            return Ok(());
        };
        let norms = match rope.qk.as_slice() {
            [qn, kn] if qn.dst == Act::Q && kn.dst == Act::K => Some((vector(&qn.g), vector(&kn.g))),
            _ => None,
        };
        let (c, table) = (self.c, self.bufs.rope.for_layer(&rope.plan)?);
        let (k, v) = (self.buf(Act::K)?, self.buf(Act::V)?);
        let rotated = (&self.acts.rotated.0, &self.acts.rotated.1);
        let (n_rot, style, eps) = (c.n_rot as u32, c.rope_style, c.rms_eps);
        let r = RopeFuseIo { k, v, table, norms, rotated, n_rot, style, eps };
        // The label stays the layer's "attention" (profiles, traces, `--perturb`); the
        // kernel's name says the RoPE is in it.
        let ds = self.b.attention_rope(&label, io, r, p)?;
        self.pass.extend(ds);
        // The marks of q, k and v waited for the rotation; q and k are where it put them.
        for (name, layer, act) in std::mem::take(&mut self.held_marks) {
            match act {
                Act::Q => self.record_mark_of(name, layer, rotated.0, self.width(act))?,
                Act::K => self.record_mark_of(name, layer, rotated.1, self.width(act))?,
                _ => self.record_mark(name, layer, act)?,
            }
        }
        Ok(())
    }

    fn glu(&mut self, op: Op, gate: Act, up: Act, act: Activation) -> Result<()> {
        if self.fused_gate_up(gate, up, act)? {
            return Ok(());
        }
        // The up projection just held: it writes act(gate) · up into the gate itself.
        if self.last_held_wrote(up) {
            if let Some(h) = self.held.last_mut() {
                h.y = gate;
            }
            return self.emit_last_held(Then::Glu(act));
        }
        self.flush()?;
        let d = self.b.glu(&op.to_string(), self.buf(gate)?, self.buf(up)?, self.width(gate), act)?;
        self.pass.push(d);
        Ok(())
    }

    fn add(&mut self, op: Op, x: Act, y: Act) -> Result<()> {
        // A post-norm of y just held: normalised in place and added in one dispatch.
        if let Some(n) = self.held_norm.take_if(|n| n.src == y && n.dst == y) {
            let (z, g, width) = (self.buf(x)?, vector(&n.g), self.width(y));
            let d = self.b.rms_norm_add(&n.label, self.buf(y)?, z, g, width, self.c.rms_eps)?;
            self.pass.push(d);
            return self.release_marks();
        }
        // The projection that wrote y just held: it adds its rows into x as it stores them.
        if self.last_held_wrote(y) {
            let residual = self.buf(x)?;
            return self.emit_last_held(Then::AddInto(residual));
        }
        self.flush()?;
        let d = self.b.add(&op.to_string(), self.buf(x)?, self.buf(y)?, self.width(x))?;
        self.pass.push(d);
        Ok(())
    }

    fn softcap(&mut self, op: Op, x: Act, cap: f32) -> Result<()> {
        self.flush()?;
        // Every token's row of a chunk at once.
        let n = self.width(x) * self.b.tokens();
        let d = self.b.softcap(&op.to_string(), self.buf(x)?, n, cap)?;
        self.pass.push(d);
        Ok(())
    }

    fn mark(&mut self, name: &'static str, layer: usize, x: Act) -> Result<()> {
        // Captures are of single tokens: prompt chunks carry no marks.
        if self.b.batch.is_some() {
            return Ok(());
        }
        if !self.held.is_empty() || self.held_norm.is_some() || self.held_rope.is_some() {
            self.held_marks.push((name, layer, x));
            return Ok(());
        }
        self.record_mark(name, layer, x)
    }
}
