//! The reference executor: the model in plain f32 on the CPU. Weights are dequantized
//! once at load (exactly as ggml's `dequantize_row_*`), activations and the KV cache
//! stay f32, so this path is the exact math of the file's weights.

pub mod ops;

use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::gguf::GgufFile;
use crate::model::{rope_factors, Captured, Config, ModelWeights};

/// A dequantized tensor; `rows` × `cols` row-major (ggml dims `[cols, rows]`).
pub struct CpuTensor {
    pub data: Vec<f32>,
    pub cols: usize,
    pub rows: usize,
}

pub struct CpuModel {
    pub cfg: Config,
    pub w: ModelWeights<CpuTensor>,
    /// Per layer: `[pos, k_dim]` keys after RoPE.
    k_cache: Vec<Vec<f32>>,
    /// Per layer: `[pos, v_dim]` values.
    v_cache: Vec<Vec<f32>>,
    n_ctx: usize,
    n_pos: usize,
    logits: Vec<f32>, // [n_vocab]
    /// When set, every forward step appends its intermediates here (for `compare`).
    pub capture: Option<Vec<Captured>>,
    /// [n_rot/2] RoPE frequency divisors (Llama 3.1, Phi-3 LongRoPE), if any.
    freq_factors: Option<Vec<f32>>,
    s: Scratch,
}

/// Activations of one step, allocated once at load and reused by every token.
struct Scratch {
    x: Vec<f32>,    // [n_embd] residual stream
    xn: Vec<f32>,   // [n_embd] normed block input
    q: Vec<f32>,    // [n_head * head_dim]
    k: Vec<f32>,    // [n_head_kv * head_dim]
    v: Vec<f32>,    // [n_head_kv * head_dim_v]
    att: Vec<f32>,  // [n_head * head_dim_v]
    o: Vec<f32>,    // [n_embd] block output
    gate: Vec<f32>, // [n_ff]
    up: Vec<f32>,   // [n_ff]
}

impl Scratch {
    fn new(c: &Config) -> Self {
        let z = |n: usize| vec![0f32; n];
        Scratch {
            x: z(c.n_embd),
            xn: z(c.n_embd),
            q: z(c.q_dim()),
            k: z(c.k_dim()),
            v: z(c.v_dim()),
            att: z(c.n_head * c.head_dim_v),
            o: z(c.n_embd),
            gate: z(c.n_ff),
            up: z(c.n_ff),
        }
    }
}

impl CpuModel {
    pub fn load(g: &GgufFile, cfg: Config, n_ctx: usize) -> Result<Self> {
        let w = ModelWeights::load(&cfg, g, |t| {
            Ok(CpuTensor { data: g.dequantize(t)?, cols: t.row_len(), rows: t.n_rows() })
        })?;
        let n_layer = cfg.n_layer;
        let logits = vec![0.0; cfg.n_vocab];
        let freq_factors = rope_factors(g, &cfg, n_ctx)?;
        let s = Scratch::new(&cfg);
        Ok(CpuModel {
            cfg,
            w,
            k_cache: vec![Vec::new(); n_layer],
            v_cache: vec![Vec::new(); n_layer],
            n_ctx,
            n_pos: 0,
            logits,
            capture: None,
            freq_factors,
            s,
        })
    }
}

impl Executor for CpuModel {
    fn name(&self) -> String {
        "cpu (f32 reference)".to_string()
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn reset(&mut self) {
        self.k_cache.iter_mut().chain(self.v_cache.iter_mut()).for_each(Vec::clear);
        self.n_pos = 0;
    }

    fn forward(&mut self, token: u32, pos: usize) -> Result<&[f32]> {
        let c = &self.cfg;
        if pos != self.n_pos {
            return Err(Error::Context(format!("position {pos} given, but the cache holds {} positions", self.n_pos)));
        }
        if pos >= self.n_ctx {
            return Err(Error::Context(format!("position {pos} is past the context size {}", self.n_ctx)));
        }
        if token as usize >= c.n_vocab {
            return Err(Error::Usage(format!("token id {token} is outside the vocabulary of {}", c.n_vocab)));
        }
        let e = c.n_embd;
        let embd = &self.w.token_embd;
        let Scratch { x, xn, q, k, v, att, o, gate, up } = &mut self.s;
        for (d, w) in x.iter_mut().zip(&embd.data[token as usize * e..(token as usize + 1) * e]) {
            *d = w * c.embd_scale;
        }
        let freq_factors = self.freq_factors.as_deref();

        let group = c.n_head / c.n_head_kv;

        let mut cap = self.capture.take();
        let mut keep = |name: &'static str, layer: usize, data: &[f32]| {
            if let Some(c) = cap.as_mut() {
                c.push(Captured { name, layer, data: data.to_vec() });
            }
        };
        for (il, (lw, plan)) in self.w.layers.iter().zip(&c.layers).enumerate() {
            // Attention block.
            xn.copy_from_slice(x);
            ops::rms_norm(xn, &lw.attn_norm.data, c.rms_eps);
            keep("attn_norm", il, xn);
            ops::matvec(&lw.attn_q.data, xn, q);
            ops::matvec(&lw.attn_k.data, xn, k);
            ops::matvec(&lw.attn_v.data, xn, v);
            for (out, bias) in [(&mut **q, &lw.attn_q_bias), (&mut **k, &lw.attn_k_bias), (&mut **v, &lw.attn_v_bias)] {
                if let Some(b) = bias {
                    ops::add(out, &b.data);
                }
            }
            if let (Some(qn), Some(kn)) = (&lw.attn_q_norm, &lw.attn_k_norm) {
                q.chunks_exact_mut(c.head_dim).for_each(|h| ops::rms_norm(h, &qn.data, c.rms_eps));
                k.chunks_exact_mut(c.head_dim).for_each(|h| ops::rms_norm(h, &kn.data, c.rms_eps));
            }
            let cs = ops::rope_cos_sin(c.n_rot, pos, plan.rope_base, plan.rope_scale, freq_factors, c.rope_attn_factor);
            ops::rope_with(q, c.head_dim, c.n_rot, &cs, c.rope_style);
            ops::rope_with(k, c.head_dim, c.n_rot, &cs, c.rope_style);
            keep("q", il, q);
            keep("k", il, k);
            keep("v", il, v);
            self.k_cache[il].extend_from_slice(k);
            self.v_cache[il].extend_from_slice(v);
            let first = plan.window.map_or(0, |w| (pos + 1).saturating_sub(w));
            for h in 0..c.n_head {
                let kvh = h / group;
                ops::attention_head(
                    &q[h * c.head_dim..(h + 1) * c.head_dim],
                    &self.k_cache[il],
                    c.k_dim(),
                    kvh * c.head_dim,
                    &self.v_cache[il],
                    c.v_dim(),
                    kvh * c.head_dim_v,
                    first,
                    pos + 1,
                    c.attn_scale,
                    c.attn_softcap,
                    &mut att[h * c.head_dim_v..(h + 1) * c.head_dim_v],
                );
            }
            keep("attn", il, att);
            ops::matvec(&lw.attn_output.data, att, o);
            if let Some(n) = &lw.post_attn_norm {
                ops::rms_norm(o, &n.data, c.rms_eps);
            }
            keep("attn_out", il, o);
            ops::add(x, o);

            // Feed-forward block.
            xn.copy_from_slice(x);
            ops::rms_norm(xn, &lw.ffn_norm.data, c.rms_eps);
            keep("ffn_norm", il, xn);
            ops::matvec(&lw.ffn_gate.data, xn, gate);
            ops::matvec(&lw.ffn_up.data, xn, up);
            ops::glu(gate, up, c.act);
            ops::matvec(&lw.ffn_down.data, gate, o);
            if let Some(n) = &lw.post_ffn_norm {
                ops::rms_norm(o, &n.data, c.rms_eps);
            }
            keep("ffn_out", il, o);
            ops::add(x, o);
            keep("residual", il, x);
        }
        self.capture = cap;
        ops::rms_norm(x, &self.w.output_norm.data, c.rms_eps);
        ops::matvec(&self.w.lm_head().data, x, &mut self.logits);
        if let Some(cap) = c.final_softcap {
            ops::softcap(&mut self.logits, cap);
        }
        self.n_pos += 1;
        Ok(&self.logits)
    }
}
