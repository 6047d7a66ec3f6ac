//! The CPU twins of the GPU kernels: plain f32 loops, written to be read. Each function
//! has the name of the shader it is the reference for. Where llama.cpp's CPU backend
//! uses a specific order or precision (f64 sums in RMSNorm and softmax, the cumulative
//! f32 theta of RoPE), it is followed so both agree to float rounding.

use rayon::prelude::*;

use crate::model::RopeStyle;

/// out[r] = Σ_c w[r, c] · x[c] for a row-major `[rows, cols]` matrix (ggml `[cols, rows]`).
pub fn matvec(w: &[f32], x: &[f32], out: &mut [f32]) {
    let cols = x.len();
    debug_assert_eq!(w.len(), cols * out.len());
    // Rows in parallel; enough rows per task that the scheduling cost disappears.
    out.par_chunks_mut(64).enumerate().for_each(|(ci, chunk)| {
        for (i, o) in chunk.iter_mut().enumerate() {
            let r = ci * 64 + i;
            *o = dot(&w[r * cols..(r + 1) * cols], x);
        }
    });
}

/// y[t, r] = Σ_c w[r, c] · x[t, c] for `n` tokens (`x` is [n, cols], `y` [n, rows]): the
/// CPU twin of matmul.wgsl. Each row's weights are read once for every token while they
/// are in cache, which is what makes a prompt cheaper per token than decoding; each value
/// is the same `dot` as `matvec`'s, so the two agree to the bit.
pub fn matmul(w: &[f32], x: &[f32], y: &mut [f32], n: usize) {
    let cols = x.len() / n;
    let rows = y.len() / n;
    debug_assert_eq!(w.len(), cols * rows);
    // Row-major [rows, n] first, so that parallel tasks own whole rows; then transposed.
    let mut by_row = vec![0f32; rows * n];
    by_row.par_chunks_mut(64 * n).enumerate().for_each(|(ci, chunk)| {
        for (i, out) in chunk.chunks_exact_mut(n).enumerate() {
            let r = ci * 64 + i;
            let wr = &w[r * cols..(r + 1) * cols];
            for (t, o) in out.iter_mut().enumerate() {
                *o = dot(wr, &x[t * cols..(t + 1) * cols]);
            }
        }
    });
    for (r, row) in by_row.chunks_exact(n).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            y[t * rows + r] = v;
        }
    }
}

/// Dot product with 8 independent f32 accumulators (vectorizes; like ggml's SIMD sums).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// x ← x / sqrt(mean(x²) + eps) · w
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    let scale = 1.0 / ((sum / x.len() as f64) as f32 + eps).sqrt();
    for (v, g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

/// (cos θ, sin θ) for each rotated pair at position `pos`, as ggml_rope_ext computes them
/// with ext_factor 0 (no YaRN): θ_i = scale · pos · base^(-2i/n_rot) / freq_factor_i, with
/// base^(-2/n_rot) accumulated in f32 exactly as ggml does. The GPU's RoPE table is
/// built with this same function.
pub fn rope_cos_sin(
    n_rot: usize,
    pos: usize,
    base: f32,
    scale: f32,
    freq_factors: Option<&[f32]>,
    mscale: f32,
) -> Vec<(f32, f32)> {
    let theta_scale = base.powf(-2.0 / n_rot as f32);
    let mut cs = Vec::with_capacity(n_rot / 2);
    let mut theta = pos as f32;
    for i in 0..n_rot / 2 {
        let ff = freq_factors.map_or(1.0, |f| f[i]);
        let t = scale * (theta / ff);
        cs.push((t.cos() * mscale, t.sin() * mscale));
        theta *= theta_scale;
    }
    cs
}

/// Rotate the first `n_rot` dimensions of each `head_dim`-wide head of `x` by position `pos`.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &mut [f32],
    head_dim: usize,
    n_rot: usize,
    pos: usize,
    base: f32,
    scale: f32,
    freq_factors: Option<&[f32]>,
    style: RopeStyle,
) {
    rope_with(x, head_dim, n_rot, &rope_cos_sin(n_rot, pos, base, scale, freq_factors, 1.0), style);
}

/// Rotate with precomputed (cos, sin) pairs.
pub fn rope_with(x: &mut [f32], head_dim: usize, n_rot: usize, cs: &[(f32, f32)], style: RopeStyle) {
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in cs.iter().enumerate() {
            let (a, b) = match style {
                RopeStyle::Norm => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + n_rot / 2),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }
}

/// Append a token's K or V row to a layer's cache as the cache type keeps it: the CPU
/// twin of rope.wgsl's store (an f16 cache rounds every value to the nearest half).
pub fn kv_store(cache: &mut Vec<f32>, row: &[f32], kv: crate::model::KvType) {
    cache.extend(row.iter().map(|&v| kv.round(v)));
}

/// In-place numerically stable softmax (max subtracted; sum in f64 as ggml does).
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// One query head against the cached keys/values of its KV head.
/// `keys`: `[n_pos, k_stride]` with this head's slice at `k_off`; likewise `values`.
/// Positions before `first` are outside the sliding window.
#[allow(clippy::too_many_arguments)]
pub fn attention_head(
    q: &[f32],
    keys: &[f32],
    k_stride: usize,
    k_off: usize,
    values: &[f32],
    v_stride: usize,
    v_off: usize,
    first: usize,
    n_pos: usize,
    scale: f32,
    softcap_at: Option<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    let hdv = out.len();
    let mut scores: Vec<f32> =
        (first..n_pos).map(|p| dot(q, &keys[p * k_stride + k_off..p * k_stride + k_off + hd]) * scale).collect();
    if let Some(cap) = softcap_at {
        softcap(&mut scores, cap);
    }
    softmax(&mut scores);
    out.iter_mut().for_each(|o| *o = 0.0);
    for (p, w) in (first..n_pos).zip(&scores) {
        let v = &values[p * v_stride + v_off..p * v_stride + v_off + hdv];
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * x;
        }
    }
}

/// x ← cap · tanh(x / cap): Gemma 2's soft-capping of attention scores and logits.
pub fn softcap(x: &mut [f32], cap: f32) {
    for v in x.iter_mut() {
        *v = cap * (*v / cap).tanh();
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// tanh-approximated GELU (ggml_gelu's formula, evaluated exactly).
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// gate ← act(gate) · up
pub fn glu(gate: &mut [f32], up: &[f32], act: crate::model::Activation) {
    use crate::model::Activation::*;
    for (g, u) in gate.iter_mut().zip(up) {
        *g = match act {
            Silu => silu(*g),
            GeluTanh => gelu_tanh(*g),
        } * u;
    }
}

/// x ← x + y
pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Rng;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
    }

    /// f32 sums of ~100 terms of size ~1 agree with f64 to about 1e-5 relative.
    const F32_SUM_TOL: f32 = 1e-4;

    #[test]
    fn matvec_matches_a_naive_f64_loop() {
        let (rows, cols) = (131, 77); // not multiples of 8 or 64
        let w = rand_vec(rows * cols, 1);
        let x = rand_vec(cols, 2);
        let mut out = vec![0.0; rows];
        matvec(&w, &x, &mut out);
        for r in 0..rows {
            let want: f64 = (0..cols).map(|c| w[r * cols + c] as f64 * x[c] as f64).sum();
            assert!((out[r] as f64 - want).abs() < F32_SUM_TOL as f64, "row {r}: {} vs {want}", out[r]);
        }
    }

    #[test]
    fn matmul_is_matvec_for_every_token_to_the_bit() {
        // 70 rows (a partial parallel chunk) and 5 tokens; cols not a multiple of 8.
        let (rows, cols, n) = (70, 37, 5);
        let w = rand_vec(rows * cols, 3);
        let x = rand_vec(n * cols, 4);
        let mut y = vec![0f32; n * rows];
        matmul(&w, &x, &mut y, n);
        for t in 0..n {
            let mut want = vec![0f32; rows];
            matvec(&w, &x[t * cols..(t + 1) * cols], &mut want);
            assert_eq!(&y[t * rows..(t + 1) * rows], &want[..], "token {t}");
        }
    }

    #[test]
    fn rms_norm_gives_unit_rms() {
        let mut x = rand_vec(93, 3);
        rms_norm(&mut x, &vec![1.0; 93], 0.0);
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / 93.0).sqrt();
        assert!((rms - 1.0).abs() < F32_SUM_TOL, "{rms}");
    }

    #[test]
    fn softmax_is_a_distribution_and_keeps_order() {
        let mut x = rand_vec(41, 4);
        x[5] = 80.0; // large values must not overflow
        let orig = x.clone();
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < F32_SUM_TOL);
        assert_eq!(crate::sampler::argmax(&x), 5);
        // Order: a larger input never gets a smaller probability.
        for i in 0..x.len() {
            for j in 0..x.len() {
                if orig[i] < orig[j] {
                    assert!(x[i] <= x[j], "inputs {} < {} but probabilities {} > {}", orig[i], orig[j], x[i], x[j]);
                }
            }
        }
        // Values: exp(x - max) / Σ, computed in f64.
        let max = orig.iter().cloned().fold(f32::MIN, f32::max) as f64;
        let sum: f64 = orig.iter().map(|&v| (v as f64 - max).exp()).sum();
        for (p, &v) in x.iter().zip(&orig) {
            assert!((*p as f64 - (v as f64 - max).exp() / sum).abs() < 1e-7, "{p} for input {v}");
        }
    }

    #[test]
    fn rope_rotates_pairs_and_keeps_their_length() {
        for style in [RopeStyle::Norm, RopeStyle::Neox] {
            let (hd, n_rot) = (10, 6); // partial rotation: dims 6..10 untouched
            let orig = rand_vec(2 * hd, 5);
            let mut x = orig.clone();
            rope(&mut x, hd, n_rot, 7, 10000.0, 1.0, None, style);
            let pair = |i: usize| match style {
                RopeStyle::Norm => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + n_rot / 2),
            };
            for h in 0..2 {
                for i in 0..n_rot / 2 {
                    let (a, b) = pair(i);
                    let n0 = orig[h * hd + a].hypot(orig[h * hd + b]);
                    let n1 = x[h * hd + a].hypot(x[h * hd + b]);
                    assert!((n0 - n1).abs() < 1e-5, "{style:?} head {h} pair {i}");
                }
                assert_eq!(&x[h * hd + n_rot..(h + 1) * hd], &orig[h * hd + n_rot..(h + 1) * hd]);
            }
            // Dimension pair 0 turns by exactly `pos` radians.
            let (a, b) = pair(0);
            let ang = x[b].atan2(x[a]) - orig[b].atan2(orig[a]);
            let d = (ang - 7.0).rem_euclid(std::f32::consts::TAU);
            assert!(!(1e-4..=std::f32::consts::TAU - 1e-4).contains(&d), "{style:?}: turned by {ang}");
            // Position 0 is the identity.
            let mut y = orig.clone();
            rope(&mut y, hd, n_rot, 0, 10000.0, 1.0, None, style);
            assert_eq!(y, orig);
        }
    }

    #[test]
    fn activations_match_their_definitions() {
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert_eq!(gelu_tanh(0.0), 0.0);
    }

    #[test]
    fn attention_over_one_position_returns_its_value() {
        let q = rand_vec(8, 6);
        let k = rand_vec(8, 7);
        let v = rand_vec(8, 8);
        let mut out = vec![0.0; 8];
        attention_head(&q, &k, 8, 0, &v, 8, 0, 0, 1, 0.3, None, &mut out);
        assert_eq!(out, v);
    }
}
