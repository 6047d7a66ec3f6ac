//! Builds the dispatches of each kernel — bind group, parameters, workgroup counts —
//! once. The GPU executor records a whole model with it at load; the kernel tests build
//! single dispatches with it, so both run exactly the same bindings.

use super::buffers::GpuTensor;
use super::context::GpuContext;
use super::kernels::{
    bind, uniform, AttnChoice, Dispatch, Finish, Groups, Kernel, Kernels, MatmulX, MatvecX, Traffic, XNorm,
    ATTN_NEW_MAX, UNIFORM_X_BYTES, WG,
};
use super::params::*;
use crate::error::{Error, Result};
use crate::model::{Activation, KvType, RopeStyle};
use crate::quant::GgmlType;

/// What a decoding matvec does with each row's sum.
#[derive(Clone, Copy)]
pub enum Then<'a> {
    Store,
    /// y = act(y) · sum (y holds the gate; the sum is the up projection's row).
    Glu(Activation),
    /// y = sum, and sum added into this residual stream.
    AddInto(&'a wgpu::Buffer),
}

impl Then<'_> {
    fn finish(self) -> Finish {
        match self {
            Then::Store => Finish::Store,
            Then::Glu(a) => Finish::Glu(a),
            Then::AddInto(_) => Finish::Add,
        }
    }
}

pub struct Builder<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a mut Kernels,
    /// The per-token `Step` uniform.
    pub step: &'a wgpu::Buffer,
    /// Prompt processing: dispatches for up to `max_tokens` tokens at once, with token ids
    /// in `tokens`. None: one token per step (decoding).
    pub batch: Option<Batch<'a>>,
}

/// An RMS norm fused into a decoding matvec (matvec_norm_rms.wgsl): the matvec's X is the
/// norm's input, and its first workgroup writes the norm's output to `out` as well.
#[derive(Clone)]
pub struct FusedNorm {
    /// [cols] F32 norm weight
    pub g: wgpu::Buffer,
    /// [cols] x · scale · g, what the norm op alone would have written
    pub out: wgpu::Buffer,
    pub eps: f32,
}

/// A fused norm's kernel variant, bindings (weight, output, eps) and the bytes it adds
/// to a dispatch's reads and writes.
struct NormBinding {
    kind: XNorm,
    buffers: Vec<(u32, wgpu::Buffer)>,
    bytes: u64,
}

/// Tokens each matmul thread computes (the shader's mat2x4 accumulator); chunk buffers
/// hold a multiple of it.
pub const MATMUL_TOKENS: u32 = 8;

/// The buffers of `attention`.
pub struct AttnIo<'a> {
    /// [tokens, n_head, head_dim]
    pub q: &'a wgpu::Buffer,
    /// [n_ctx, k_dim] and [n_ctx, v_dim], f32 or f16 pairs as `kv` says.
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    /// [n_head, ATTN_MAX_SPLITS, head_dim_v + 2] the splits' partial outputs.
    pub partials: &'a wgpu::Buffer,
    /// [tokens, n_head, head_dim_v]
    pub out: &'a wgpu::Buffer,
    pub n_head: u32,
    pub kv: KvType,
}

/// What `attention_rope` fuses in: one decoding token's keys and values (appended to the
/// cache by the attention dispatch), its RoPE and Qwen 3 / Gemma 3's q and k norms.
pub struct RopeFuseIo<'a> {
    /// [n_head_kv, head_dim]
    pub k: &'a wgpu::Buffer,
    /// [n_head_kv, head_dim_v]
    pub v: &'a wgpu::Buffer,
    /// [n_ctx, n_rot / 2] (cos, sin) of the layer's RoPE.
    pub table: &'a wgpu::Buffer,
    /// [head_dim] the query and key norm weights, where the model has them.
    pub norms: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    /// [n_head, head_dim] and [n_head_kv, head_dim]: the queries and keys as rotated (what
    /// `compare` captures; the attention reads q and k themselves, which it leaves alone).
    pub rotated: (&'a wgpu::Buffer, &'a wgpu::Buffer),
    pub n_rot: u32,
    pub style: RopeStyle,
    pub eps: f32,
}

/// The buffers of `rope_store`: what rotates and what is appended where.
pub struct RopeIo<'a> {
    /// [tokens, n_heads, head_dim] rotated in place.
    pub q: &'a wgpu::Buffer,
    pub n_heads: u32,
    /// [tokens, n_heads_k, head_dim] rotated in place, then appended to `k_cache`.
    pub k: &'a wgpu::Buffer,
    pub n_heads_k: u32,
    /// [tokens, v_dim] appended to `v_cache`.
    pub v: &'a wgpu::Buffer,
    pub v_dim: u32,
    /// [n_ctx, n_heads_k * head_dim] and [n_ctx, v_dim], f32 or f16 pairs.
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    /// [n_ctx, n_rot / 2] (cos, sin) of the layer's RoPE.
    pub table: &'a wgpu::Buffer,
}

#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub max_tokens: u32,
    /// [max_tokens] u32 token ids of the chunk.
    pub tokens: &'a wgpu::Buffer,
    /// [widest matmul input, max_tokens] the column-major copy each matmul reads.
    pub xt: &'a wgpu::Buffer,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        kernel: Kernel,
        label: &str,
        buffers: &[(u32, &wgpu::Buffer)],
        groups: Groups,
        traffic: Traffic,
        output: (&wgpu::Buffer, u32),
    ) -> Result<Dispatch> {
        let pipeline = self.kernels.get(&self.ctx.device, kernel)?.clone();
        // The weights' buffers bound again where the decoders read them 16 bytes at a time.
        let mut buffers = buffers.to_vec();
        for (w, view) in kernel.weight_views() {
            if let Some(&(_, b)) = buffers.iter().find(|(i, _)| *i == w) {
                buffers.push((view, b));
            }
        }
        let bind_group = bind(&self.ctx.device, &pipeline, label, &buffers);
        Ok(Dispatch {
            kernel,
            label: label.to_string(),
            pipeline,
            bind_group,
            groups,
            traffic,
            output: Some((output.0.clone(), output.1)),
            tune_key: None,
        })
    }

    fn norm_binding(&self, label: &str, norm: Option<FusedNorm>, cols: u32) -> NormBinding {
        match norm {
            None => NormBinding { kind: XNorm::None, buffers: Vec::new(), bytes: 0 },
            Some(n) => {
                let np = uniform(self.ctx, label, &FusedNormParams { eps: n.eps, _pad: [0; 3] });
                let buffers = vec![(9, n.g), (10, n.out), (11, np)];
                NormBinding { kind: XNorm::Rms, buffers, bytes: cols as u64 * 4 }
            }
        }
    }

    /// Tokens each dispatch is sized for (1 when decoding).
    pub fn tokens(&self) -> u32 {
        self.batch.map_or(1, |b| b.max_tokens)
    }

    /// Workgroups for `per_token` items per token, `per_group` items per workgroup.
    fn flat(&self, per_token: u32, per_group: u32) -> Groups {
        match self.batch {
            None => self.kernels.groups(per_token.div_ceil(per_group)),
            Some(_) => Groups::Flat { per_token, per_group, max: self.kernels.max_groups },
        }
    }

    /// The kernels' choice of X buffer, where `x` can be bound that way (made by `x_buffer`).
    fn matvec_x(&self, x: &wgpu::Buffer) -> MatvecX {
        let uniform_ok = x.usage().contains(wgpu::BufferUsages::UNIFORM) && x.size() == UNIFORM_X_BYTES;
        if self.kernels.matvec_x == MatvecX::Uniform && uniform_ok {
            MatvecX::Uniform
        } else {
            MatvecX::Storage
        }
    }

    /// Whether a decoding matvec reading `x` should compute a norm of it itself: where X
    /// is cached a unit at a time (uniform X), so g multiplies each x once per unit. Where
    /// the decoders read X per weight (storage X, GPUs) g would be read per weight too —
    /// it halved the GPU class's decoding on lavapipe — so there the norm stays a dispatch.
    pub fn fuses_norm(&self, x: &wgpu::Buffer) -> bool {
        self.matvec_x(x) == MatvecX::Uniform
    }

    /// y = W·x, one dispatch per part of W. `y` holds all `W.rows` outputs (per token).
    pub fn matvec(&mut self, label: &str, w: &GpuTensor, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Vec<Dispatch>> {
        match self.batch {
            Some(batch) => self.matmul(label, w, x, y, batch),
            None => self.matvec_then(label, w, x, y, Then::Store),
        }
    }

    /// A chunk's Y = W·X: one matmul per part of W, after X is transposed to column-major
    /// for the variants that read it so (matmul_rows.wgsl reads it token-major as it is).
    fn matmul(
        &mut self,
        label: &str,
        w: &GpuTensor,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        batch: Batch,
    ) -> Result<Vec<Dispatch>> {
        let mut out = Vec::new();
        let mx = self.kernels.matmul_x_for(w.ty);
        // vec4s per token row (token-major X), or per column (transposed).
        let (x, x_stride) = if mx == MatmulX::Rows {
            (x, w.cols / 4)
        } else {
            out.push(self.transpose(label, w.cols, x, batch)?);
            (batch.xt, batch.max_tokens / 4)
        };
        for part in &w.parts {
            let p = MatmulParams {
                rows: part.rows,
                cols: w.cols,
                row_bytes: w.row_bytes,
                out_offset: part.row_start,
                out_stride: w.rows,
                x_stride,
                _pad: [0; 2],
            };
            let pb = uniform(self.ctx, label, &p);
            let t = self.tokens() as u64;
            let traffic = Traffic {
                read: part.rows as u64 * w.row_bytes as u64 + t * w.cols as u64 * 4,
                written: t * part.rows as u64 * 4,
                read_per_pos: 0,
            };
            let groups = Groups::PerToken { x: part.rows.div_ceil(mx.rows_per_group()), per: MATMUL_TOKENS };
            let step = self.step;
            out.push(self.dispatch(
                Kernel::Matmul(w.ty, mx),
                label,
                &[(0, &part.buffer), (1, x), (2, y), (3, &pb), (4, step)],
                groups,
                traffic,
                (y, w.rows),
            )?);
        }
        Ok(out)
    }

    /// The chunk's `cols`-wide token-major X into `batch.xt`, column-major.
    fn transpose(&mut self, label: &str, cols: u32, x: &wgpu::Buffer, batch: Batch) -> Result<Dispatch> {
        let u = batch.max_tokens;
        let tp = uniform(self.ctx, label, &TransposeParams { cols, tokens: u, _pad: [0; 2] });
        let n = cols as u64 * u as u64 * 4;
        // Only the step's tokens: a decoding batch of 8 in a chunk of 64 copied 64.
        let groups = Groups::PerToken { x: cols.div_ceil(WG), per: 1 };
        self.dispatch(
            Kernel::Transpose,
            &format!("{label}+transpose"),
            &[(0, x), (1, batch.xt), (2, &tp)],
            groups,
            Traffic { read: n, written: n, read_per_pos: 0 },
            (batch.xt, cols * u),
        )
    }

    /// y = W·x for one token, finished as `then` says (a fused activation or residual add).
    pub fn matvec_then(
        &mut self,
        label: &str,
        w: &GpuTensor,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        then: Then,
    ) -> Result<Vec<Dispatch>> {
        self.matvec_normed(label, w, x, y, then, None)
    }

    /// As `matvec_then`, with X RMS-normalised by the kernel itself where `norm` says so.
    pub fn matvec_normed(
        &mut self,
        label: &str,
        w: &GpuTensor,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        then: Then,
        norm: Option<FusedNorm>,
    ) -> Result<Vec<Dispatch>> {
        let (xv, finish) = (self.matvec_x(x), then.finish());
        let nb = self.norm_binding(label, norm, w.cols);
        // The epilogue reads the gate or the residual, and writes the residual too.
        let (extra_read, extra_written) = match then {
            Then::Store => (0, 0),
            Then::Glu(_) => (1, 0),
            Then::AddInto(_) => (1, 1),
        };
        let mut out = Vec::new();
        for part in &w.parts {
            let p = MatvecParams { rows: part.rows, cols: w.cols, row_bytes: w.row_bytes, out_offset: part.row_start };
            let pb = uniform(self.ctx, label, &p);
            let key = tune_key(&[w.ty], &[part.rows], w.cols);
            let shape = self.kernels.matvec_shape(&key);
            let groups = self.kernels.groups(part.rows.div_ceil(shape.rows_per_group()));
            let rows = part.rows as u64;
            let traffic = Traffic {
                read: rows * w.row_bytes as u64 + w.cols as u64 * 4 + extra_read * rows * 4 + nb.bytes,
                written: (1 + extra_written) * rows * 4 + nb.bytes,
                read_per_pos: 0,
            };
            let mut bindings = vec![(0, &part.buffer), (1, x), (2, y), (3, &pb)];
            if let Then::AddInto(z) = then {
                bindings.push((4, z));
            }
            bindings.extend(nb.buffers.iter().map(|(i, b)| (*i, b)));
            let mut d = self.dispatch(
                Kernel::Matvec(w.ty, xv, finish, self.kernels.matvec_reduce, shape, nb.kind),
                label,
                &bindings,
                groups,
                traffic,
                (y, w.rows),
            )?;
            d.tune_key = Some(key);
            out.push(d);
        }
        Ok(out)
    }

    /// q, k, v = Wq·x, Wk·x, Wv·x for one token in one dispatch. None when it cannot be
    /// fused: a tensor in several parts, or the three not sharing a row length.
    pub fn matvec_qkv(
        &mut self,
        label: &str,
        w: [&GpuTensor; 3],
        x: &wgpu::Buffer,
        y: [&wgpu::Buffer; 3],
        norm: Option<FusedNorm>,
    ) -> Result<Option<Dispatch>> {
        if self.batch.is_some() || w.iter().any(|t| t.parts.len() != 1 || t.cols != w[0].cols) {
            return Ok(None);
        }
        let p =
            MatvecQkvParams { rows: w.map(|t| t.rows), cols: w[0].cols, row_bytes: w.map(|t| t.row_bytes), _pad: 0 };
        let pb = uniform(self.ctx, label, &p);
        let rows: u32 = p.rows.iter().sum();
        let key = tune_key(&w.map(|t| t.ty), &p.rows, p.cols);
        let shape = self.kernels.matvec_shape(&key);
        // Each tensor's rows start a workgroup of their own (see matvec_qkv.wgsl).
        let per = shape.rows_per_group();
        let groups = self.kernels.groups(p.rows.iter().map(|r| r.div_ceil(per)).sum());
        let nb = self.norm_binding(label, norm, p.cols);
        let traffic = Traffic {
            read: w.iter().map(|t| t.bytes()).sum::<u64>() + w[0].cols as u64 * 4 + nb.bytes,
            written: rows as u64 * 4 + nb.bytes,
            read_per_pos: 0,
        };
        let (xv, reduce) = (self.matvec_x(x), self.kernels.matvec_reduce);
        let kernel = Kernel::MatvecQkv(w.map(|t| t.ty), xv, reduce, shape, nb.kind);
        let mut buffers = vec![
            (0, &w[0].parts[0].buffer),
            (5, &w[1].parts[0].buffer),
            (6, &w[2].parts[0].buffer),
            (1, x),
            (2, y[0]),
            (7, y[1]),
            (8, y[2]),
            (3, &pb),
        ];
        buffers.extend(nb.buffers.iter().map(|(i, b)| (*i, b)));
        let mut d = self.dispatch(kernel, label, &buffers, groups, traffic, (y[0], rows))?;
        d.tune_key = Some(key);
        Ok(Some(d))
    }

    /// y = act(Wgate·x) · (Wup·x) for one token in one dispatch (`y` may be the gate's own
    /// buffer). None when it cannot be fused: a tensor in several parts, or the two not
    /// sharing a shape.
    pub fn matvec_gate_up(
        &mut self,
        label: &str,
        w: [&GpuTensor; 2],
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        act: Activation,
        norm: Option<FusedNorm>,
    ) -> Result<Option<Dispatch>> {
        let same_shape = w[0].rows == w[1].rows && w[0].cols == w[1].cols;
        if self.batch.is_some() || !same_shape || w.iter().any(|t| t.parts.len() != 1) {
            return Ok(None);
        }
        let (rows, cols) = (w[0].rows, w[0].cols);
        let p = MatvecGateUpParams { rows, cols, row_bytes: w.map(|t| t.row_bytes) };
        let pb = uniform(self.ctx, label, &p);
        let key = tune_key(&w.map(|t| t.ty), &[rows, rows], cols);
        let shape = self.kernels.matvec_shape(&key);
        let groups = self.kernels.groups(rows.div_ceil(shape.rows_per_group()));
        let nb = self.norm_binding(label, norm, cols);
        let traffic = Traffic {
            read: w.iter().map(|t| t.bytes()).sum::<u64>() + cols as u64 * 4 + nb.bytes,
            written: rows as u64 * 4 + nb.bytes,
            read_per_pos: 0,
        };
        let (xv, reduce) = (self.matvec_x(x), self.kernels.matvec_reduce);
        let kernel = Kernel::MatvecGateUp(w.map(|t| t.ty), xv, reduce, shape, act, nb.kind);
        let mut buffers = vec![(0, &w[0].parts[0].buffer), (5, &w[1].parts[0].buffer), (1, x), (2, y), (3, &pb)];
        buffers.extend(nb.buffers.iter().map(|(i, b)| (*i, b)));
        let mut d = self.dispatch(kernel, label, &buffers, groups, traffic, (y, rows))?;
        d.tune_key = Some(key);
        Ok(Some(d))
    }

    /// y = W[token] * scale (token from the Step uniform), one dispatch per part.
    pub fn embed(&mut self, label: &str, w: &GpuTensor, y: &wgpu::Buffer, scale: f32) -> Result<Vec<Dispatch>> {
        let mut out = Vec::new();
        for (i, part) in w.parts.iter().enumerate() {
            let p = EmbedParams {
                row_start: part.row_start,
                rows: part.rows,
                cols: w.cols,
                row_bytes: w.row_bytes,
                scale,
                _pad: [0; 3],
            };
            let pb = uniform(self.ctx, label, &p);
            let step = self.step;
            // Only the part holding the token reads and writes its row: count that row once per
            // token (on the first part, since which part holds it is known only at run time).
            let traffic = if i == 0 {
                Traffic { read: w.row_bytes as u64, written: w.cols as u64 * 4, read_per_pos: 0 }
            } else {
                Traffic::default()
            };
            let d = match self.batch {
                None => {
                    let groups = self.kernels.groups(w.cols.div_ceil(WG));
                    self.dispatch(
                        Kernel::Embed(w.ty),
                        label,
                        &[(0, &part.buffer), (1, y), (2, &pb), (3, step)],
                        groups,
                        traffic,
                        (y, w.cols),
                    )?
                }
                Some(b) => {
                    let groups = Groups::PerToken { x: w.cols.div_ceil(WG), per: 1 };
                    self.dispatch(
                        Kernel::EmbedBatch(w.ty),
                        label,
                        &[(0, &part.buffer), (1, y), (2, &pb), (3, step), (4, b.tokens)],
                        groups,
                        traffic,
                        (y, w.cols),
                    )?
                }
            };
            out.push(d);
        }
        Ok(out)
    }

    /// y = rms_norm(x) * g over `rows` rows of `cols`.
    #[allow(clippy::too_many_arguments)]
    pub fn rms_norm(
        &mut self,
        label: &str,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        g: &wgpu::Buffer,
        rows: u32,
        cols: u32,
        eps: f32,
    ) -> Result<Dispatch> {
        self.norm(Kernel::RmsNorm, label, Some((0, x)), y, g, (rows, cols, eps))
    }

    /// y = rms_norm(y) * g, in place.
    pub fn rms_norm_inplace(
        &mut self,
        label: &str,
        y: &wgpu::Buffer,
        g: &wgpu::Buffer,
        rows: u32,
        cols: u32,
        eps: f32,
    ) -> Result<Dispatch> {
        self.norm(Kernel::RmsNormInplace, label, None, y, g, (rows, cols, eps))
    }

    /// y = rms_norm(y) * g in place, then z += y: a post-norm and the residual add.
    pub fn rms_norm_add(
        &mut self,
        label: &str,
        y: &wgpu::Buffer,
        z: &wgpu::Buffer,
        g: &wgpu::Buffer,
        cols: u32,
        eps: f32,
    ) -> Result<Dispatch> {
        let mut d = self.norm(Kernel::RmsNormAdd, label, Some((4, z)), y, g, (1, cols, eps))?;
        // The in-place norm's bytes, and the stream's read and written.
        let n = self.tokens() as u64 * cols as u64 * 4;
        d.traffic.read += n;
        d.traffic.written += n;
        Ok(d)
    }

    /// Any norm: from X (binding 0) into `y`, or `y` in place (and added into Z, binding
    /// 4), as `extra` binds; `rows` of `cols` per token.
    fn norm(
        &mut self,
        kernel: Kernel,
        label: &str,
        extra: Option<(u32, &wgpu::Buffer)>,
        y: &wgpu::Buffer,
        g: &wgpu::Buffer,
        (rows, cols, eps): (u32, u32, f32),
    ) -> Result<Dispatch> {
        let t = self.tokens();
        let pb = uniform(self.ctx, label, &NormParams { rows: rows * t, cols, eps, _pad: 0 });
        let n = rows as u64 * cols as u64 * 4;
        let traffic = Traffic { read: n + cols as u64 * 4, written: n, read_per_pos: 0 };
        let groups = self.flat(rows, 1);
        let mut buffers = vec![(1, y), (2, g), (3, &pb)];
        buffers.extend(extra);
        self.dispatch(kernel, label, &buffers, groups, traffic, (y, rows * cols))
    }

    /// Rotate `y` ([n_heads, head_dim]) at the Step's position with a cos/sin table
    /// (nothing stored: the cache bindings are `y` itself and the table, never touched).
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &mut self,
        label: &str,
        y: &wgpu::Buffer,
        table: &wgpu::Buffer,
        n_heads: u32,
        head_dim: u32,
        n_rot: u32,
        style: RopeStyle,
    ) -> Result<Dispatch> {
        let io = RopeIo { q: y, n_heads, k: y, n_heads_k: 0, v: table, v_dim: 0, k_cache: y, v_cache: y, table };
        self.rope_store(label, io, head_dim, n_rot, style, KvType::F32)
    }

    /// Rotate the queries and the keys in place and append the keys and values to the
    /// caches at the Step's position, as `kv` keeps them (see rope.wgsl).
    pub fn rope_store(
        &mut self,
        label: &str,
        io: RopeIo<'_>,
        head_dim: u32,
        n_rot: u32,
        style: RopeStyle,
        kv: KvType,
    ) -> Result<Dispatch> {
        let (n_heads, n_heads_k, v_dim) = (io.n_heads, io.n_heads_k, io.v_dim);
        let neox = (style == RopeStyle::Neox) as u32;
        let p = RopeParams { n_heads, head_dim, n_rot, neox, n_heads_k, v_dim, _pad: [0; 2] };
        let pb = uniform(self.ctx, label, &p);
        let step = self.step;
        let rotated = (n_heads + n_heads_k) as u64 * n_rot as u64 * 4;
        let stored = ((n_heads_k * head_dim + v_dim) as usize * kv.bytes()) as u64;
        let read = rotated + n_rot as u64 * 4 + v_dim as u64 * 4;
        let traffic = Traffic { read, written: rotated + stored, read_per_pos: 0 };
        // Workgroup 0 does the keys; the rest rotate query pairs, then store value units.
        let v_units = if kv == KvType::F16 { v_dim / 2 } else { v_dim };
        let groups = Groups::PerToken { x: 1 + (n_heads * n_rot / 2 + v_units).div_ceil(WG), per: 1 };
        let buffers =
            [(0, io.q), (1, io.table), (2, &pb), (3, step), (4, io.k), (5, io.v), (6, io.k_cache), (7, io.v_cache)];
        self.dispatch(Kernel::Rope(kv), label, &buffers, groups, traffic, (io.q, n_heads * head_dim))
    }

    /// The best `params.kp` (key, id) pairs of `logits` ([n]) into `out`, through `cand`
    /// ([n_chunks, kp max]): the chunk and merge passes of topk.wgsl.
    pub fn topk(
        &mut self,
        logits: &wgpu::Buffer,
        cand: &wgpu::Buffer,
        out: &wgpu::Buffer,
        params: &wgpu::Buffer,
        (n, n_chunks): (u32, u32),
    ) -> Result<[Dispatch; 2]> {
        // Each entry point's layout holds only the bindings it uses.
        let (chunk_bufs, merge_bufs) = ([(0, logits), (1, cand), (3, params)], [(1, cand), (2, out), (3, params)]);
        let traffic = Traffic { read: n as u64 * 4, written: 0, read_per_pos: 0 };
        let groups = Groups::Fixed(n_chunks, 1, 1);
        let chunk = self.dispatch(Kernel::TopkChunk, "topk", &chunk_bufs, groups, traffic, (out, 0))?;
        let one = Groups::Fixed(1, 1, 1);
        let merge = self.dispatch(Kernel::TopkMerge, "topk merge", &merge_bufs, one, Traffic::default(), (out, 0))?;
        Ok([chunk, merge])
    }

    /// out = attention of q over the cache for the Step's `n_pos` positions: one dispatch,
    /// and a reduce pass where a decoding step splits the positions (`AttnChoice`).
    /// `p.splits` is set here.
    pub fn attention(&mut self, label: &str, io: AttnIo<'_>, p: AttnParams) -> Result<Vec<Dispatch>> {
        self.attention_with(label, io, None, p)
    }

    /// Whether `attention_rope` takes a model of these head widths: workgroup memory holds
    /// one head's key and value (NEW_MAX in attention.wgsl), f16 pairs never straddle heads,
    /// and the adapter binds the kernel's 12 storage buffers.
    /// `LANTERNA_ROPE=apart` keeps the separate dispatches (for A/B runs and their tests).
    pub fn fuses_rope(&self, head_dim: u32, head_dim_v: u32, kv: KvType) -> bool {
        let even = kv == KvType::F32 || (head_dim.is_multiple_of(2) && head_dim_v.is_multiple_of(2));
        let wanted = std::env::var("LANTERNA_ROPE").as_deref() != Ok("apart");
        let bindable = self.ctx.limits.max_storage_buffers_per_shader_stage >= 12;
        let fits = head_dim <= ATTN_NEW_MAX && head_dim_v <= ATTN_NEW_MAX;
        wanted && bindable && self.batch.is_none() && fits && even
    }

    /// Attention of one decoding token with its RoPE, q/k norms and cache append fused in:
    /// what `rope_store` (and two norms) then `attention` do, in one dispatch.
    pub fn attention_rope(
        &mut self,
        label: &str,
        io: AttnIo<'_>,
        rope: RopeFuseIo<'_>,
        p: AttnParams,
    ) -> Result<Vec<Dispatch>> {
        if !self.fuses_rope(p.head_dim, p.head_dim_v, io.kv) {
            return Err(Error::Gpu(format!("{label}: RoPE cannot be fused into this attention")));
        }
        self.attention_with(label, io, Some(rope), p)
    }

    fn attention_with(
        &mut self,
        label: &str,
        io: AttnIo<'_>,
        rope: Option<RopeFuseIo<'_>>,
        mut p: AttnParams,
    ) -> Result<Vec<Dispatch>> {
        let rv = p.head_dim_v.div_ceil(WG);
        AttnChoice::check(p.head_dim, rv)?;
        let choice = self.kernels.attention;
        let heads = choice.heads(p.group, p.head_dim, rv);
        let blocks = io.n_head / heads;
        p.splits = if self.batch.is_some() { 1 } else { choice.splits(blocks) };
        let pb = uniform(self.ctx, label, &p);
        // Per position: each workgroup's KV head's key and value, once for its heads.
        let kv_bytes = io.kv.bytes() as u64;
        let traffic = Traffic {
            read: io.n_head as u64 * p.head_dim as u64 * 4,
            written: io.n_head as u64 * p.head_dim_v as u64 * 4,
            read_per_pos: blocks as u64 * (p.head_dim + p.head_dim_v) as u64 * kv_bytes,
        };
        let groups = Groups::PerToken { x: blocks * p.splits, per: 1 };
        let out = (io.out, io.n_head * p.head_dim_v);
        let mut bufs = vec![(0, io.q), (1, io.k_cache), (2, io.v_cache), (3, io.partials), (4, io.out), (5, &pb)];
        bufs.push((6, self.step));
        let fused = rope.is_some();
        let rp;
        if let Some(r) = &rope {
            let neox = (r.style == RopeStyle::Neox) as u32;
            let params = RopeFuseParams { n_rot: r.n_rot, neox, qk_norm: r.norms.is_some() as u32, eps: r.eps };
            rp = uniform(self.ctx, label, &params);
            // Without norms their bindings hold the table, which the kernel never reads as such.
            let (qn, kn) = r.norms.unwrap_or((r.table, r.table));
            bufs.extend([(7, r.k), (8, r.v), (9, r.table), (10, &rp), (11, qn), (12, kn)]);
            bufs.extend([(13, r.rotated.0), (14, r.rotated.1)]);
        }
        let main = self.dispatch(Kernel::Attention(io.kv, heads, rv, fused), label, &bufs, groups, traffic, out)?;
        if p.splits == 1 {
            return Ok(vec![main]);
        }
        let bufs = [(3, io.partials), (4, io.out), (5, &pb)];
        let rows = Groups::PerToken { x: io.n_head, per: 1 };
        let label = format!("{label}+reduce");
        let reduce = self.dispatch(Kernel::AttentionReduce, &label, &bufs, rows, Traffic::default(), out)?;
        Ok(vec![main, reduce])
    }

    /// gate = act(gate) * up
    pub fn glu(
        &mut self,
        label: &str,
        gate: &wgpu::Buffer,
        up: &wgpu::Buffer,
        n: u32,
        act: Activation,
    ) -> Result<Dispatch> {
        let act = match act {
            Activation::Silu => 0,
            Activation::GeluTanh => 1,
        };
        let pb = uniform(self.ctx, label, &EltParams { n: n * self.tokens(), act, _pad: [0; 2] });
        let traffic = Traffic { read: n as u64 * 8, written: n as u64 * 4, read_per_pos: 0 };
        let groups = self.flat(n, WG);
        self.dispatch(Kernel::Glu, label, &[(0, gate), (1, up), (2, &pb)], groups, traffic, (gate, n))
    }

    /// x += y
    pub fn add(&mut self, label: &str, x: &wgpu::Buffer, y: &wgpu::Buffer, n: u32) -> Result<Dispatch> {
        self.add_periodic(label, x, y, n, 0)
    }

    /// x += bias, the `n` values of `bias` added to every token's row.
    pub fn add_bias(&mut self, label: &str, x: &wgpu::Buffer, bias: &wgpu::Buffer, n: u32) -> Result<Dispatch> {
        self.add_periodic(label, x, bias, n, n)
    }

    fn add_periodic(
        &mut self,
        label: &str,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        n: u32,
        period: u32,
    ) -> Result<Dispatch> {
        let pb = uniform(self.ctx, label, &EltParams { n: n * self.tokens(), act: period, _pad: [0; 2] });
        let traffic = Traffic { read: n as u64 * 8, written: n as u64 * 4, read_per_pos: 0 };
        let groups = self.flat(n, WG);
        self.dispatch(Kernel::Add, label, &[(0, x), (1, y), (2, &pb)], groups, traffic, (x, n))
    }
}

impl Builder<'_> {
    /// x = cap * tanh(x / cap), in place.
    pub fn softcap(&mut self, label: &str, x: &wgpu::Buffer, n: u32, cap: f32) -> Result<Dispatch> {
        let pb = uniform(self.ctx, label, &SoftcapParams { n, cap, _pad: [0; 2] });
        let traffic = Traffic { read: n as u64 * 4, written: n as u64 * 4, read_per_pos: 0 };
        let groups = self.kernels.groups(n.div_ceil(WG));
        self.dispatch(Kernel::Softcap, label, &[(0, x), (1, &pb)], groups, traffic, (x, n))
    }
}

/// Run dispatches once in one pass and wait (tests and one-off work).
pub fn run_once(ctx: &GpuContext, step: &wgpu::Buffer, s: Step, dispatches: &[Dispatch]) -> Result<()> {
    ctx.queue.write_buffer(step, 0, bytemuck::bytes_of(&s));
    let names = || dispatches.iter().map(|d| d.kernel.name()).collect::<Vec<_>>().join(", ");
    let rejected = |e: wgpu::Error| crate::Error::Kernel { kernel: names(), msg: e.to_string() };
    let submit = || {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        ctx.queue.submit([enc.finish()]);
        Ok(())
    };
    ctx.scoped(wgpu::ErrorFilter::Validation, submit, rejected)?;
    ctx.wait("the GPU")
}

/// The tuner's name for a matvec over tensors of these types and rows, `cols` wide:
/// "Q4_1 576x1536", or "Q5_0+Q5_0+Q8_0 640x1024+256+256" for q, k and v in one dispatch.
pub fn tune_key(types: &[GgmlType], rows: &[u32], cols: u32) -> String {
    let types: Vec<&str> = types.iter().map(|t| t.name()).collect();
    let rows: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    format!("{} {cols}x{}", types.join("+"), rows.join("+"))
}
