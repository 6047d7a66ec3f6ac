//! f32 → quantized blocks, as ggml's reference quantizers (`quantize_row_*_ref` in
//! ggml-quants.c, the functions `llama-quantize` uses without an importance matrix) —
//! same rounding (`nearest_int`), same scale searches — so that a file we quantize holds
//! the bytes llama.cpp would write (tests/quantize.rs compares with llama.cpp's own
//! output). Each function fills whole blocks in their GGUF byte layout.

use super::GgmlType;
use crate::error::{Error, Result};

const QK: usize = 32;
const QK_K: usize = 256;
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's nearest_int: round half to even through the float mantissa (|x| < 2^22).
#[inline]
fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    ((v.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

#[inline]
fn f16_bytes(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

#[inline]
fn f16_round(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

/// Types `quantize` can write.
pub const QUANTIZE_TYPES: [GgmlType; 8] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// Quantize `x` (a whole number of blocks of `ty`) into `ty`'s bytes.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>> {
    let bs = ty.block_size() as usize;
    if !x.len().is_multiple_of(bs) {
        return Err(Error::Usage(format!("{} values are not a whole number of {ty} blocks of {bs}", x.len())));
    }
    let mut out = vec![0u8; x.len() / bs * ty.type_size() as usize];
    let ts = ty.type_size() as usize;
    let blocks = x.chunks_exact(bs).zip(out.chunks_exact_mut(ts));
    match ty {
        GgmlType::Q8_0 => blocks.for_each(|(x, y)| q8_0(x, y)),
        GgmlType::Q4_0 => blocks.for_each(|(x, y)| q4_0(x, y)),
        GgmlType::Q4_1 => blocks.for_each(|(x, y)| q4_1(x, y)),
        GgmlType::Q5_0 => blocks.for_each(|(x, y)| q5_0(x, y)),
        GgmlType::Q5_1 => blocks.for_each(|(x, y)| q5_1(x, y)),
        GgmlType::Q4K => blocks.for_each(|(x, y)| q4_k(x, y)),
        GgmlType::Q5K => blocks.for_each(|(x, y)| q5_k(x, y)),
        GgmlType::Q6K => blocks.for_each(|(x, y)| q6_k(x, y)),
        GgmlType::F32 => blocks.for_each(|(x, y)| y.copy_from_slice(&x[0].to_le_bytes())),
        GgmlType::F16 => blocks.for_each(|(x, y)| y.copy_from_slice(&f16_bytes(x[0]))),
        GgmlType::BF16 => blocks.for_each(|(x, y)| y.copy_from_slice(&half::bf16::from_f32(x[0]).to_le_bytes())),
        other => {
            return Err(Error::Usage(format!(
                "quantizing to {other} is not supported (supported: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)"
            )))
        }
    }
    Ok(out)
}

/// [d: f16][qs: 32 × i8]
fn q8_0(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16_bytes(d));
    for (q, v) in y[2..].iter_mut().zip(x) {
        *q = (v * id).round() as i8 as u8;
    }
}

/// The value of largest magnitude, with its sign.
fn signed_max(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// [d: f16][qs: 16]; weight j = d * (nibble - 8).
fn q4_0(x: &[f32], y: &mut [u8]) {
    let d = signed_max(x) / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16_bytes(d));
    for j in 0..QK / 2 {
        let x0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let x1 = ((x[QK / 2 + j] * id + 8.5) as i8).min(15) as u8;
        y[2 + j] = x0 | (x1 << 4);
    }
}

/// [d: f16][m: f16][qs: 16]; weight j = d * nibble + m.
fn q4_1(x: &[f32], y: &mut [u8]) {
    let min = x.iter().copied().fold(f32::MAX, f32::min);
    let max = x.iter().copied().fold(-f32::MAX, f32::max);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16_bytes(d));
    y[2..4].copy_from_slice(&f16_bytes(min));
    for j in 0..QK / 2 {
        let x0 = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
        let x1 = (((x[QK / 2 + j] - min) * id + 0.5) as i8).min(15) as u8;
        y[4 + j] = x0 | (x1 << 4);
    }
}

/// [d: f16][qh: u32][qs: 16]; weight j = d * (5-bit q - 16).
fn q5_0(x: &[f32], y: &mut [u8]) {
    let d = signed_max(x) / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16_bytes(d));
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let x0 = ((x[j] * id + 16.5) as i8).min(31) as u8;
        let x1 = ((x[QK / 2 + j] * id + 16.5) as i8).min(31) as u8;
        y[6 + j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4);
        qh |= (((x0 & 0x10) >> 4) as u32) << j;
        qh |= (((x1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    y[2..6].copy_from_slice(&qh.to_le_bytes());
}

/// [d: f16][m: f16][qh: u32][qs: 16]; weight j = d * q + m.
fn q5_1(x: &[f32], y: &mut [u8]) {
    let min = x.iter().copied().fold(f32::MAX, f32::min);
    let max = x.iter().copied().fold(-f32::MAX, f32::max);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    y[..2].copy_from_slice(&f16_bytes(d));
    y[2..4].copy_from_slice(&f16_bytes(min));
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let x0 = ((x[j] - min) * id + 0.5) as u8;
        let x1 = ((x[QK / 2 + j] - min) * id + 0.5) as u8;
        y[8 + j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4);
        qh |= (((x0 & 0x10) >> 4) as u32) << j;
        qh |= (((x1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    y[4..8].copy_from_slice(&qh.to_le_bytes());
}

/// ggml's make_qx_quants: a symmetric scale for `x` with levels -nmax..nmax-1 (stored
/// + nmax in `l`), refined by trying nearby scales (rmse_type 1: weights x²).
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8], rmse_type: i32) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    if rmse_type == 0 {
        for (li, &v) in l.iter_mut().zip(x) {
            *li = (nmax + nearest_int(iscale * v).clamp(-nmax, nmax - 1)) as u8;
        }
        return 1.0 / iscale;
    }
    let weight = |v: f32| -> f32 {
        match rmse_type {
            1 => v * v,
            2 => 1.0,
            3 => v.abs(),
            _ => v.abs().sqrt(),
        }
    };
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (li, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *li = (q + nmax) as u8;
        let w = weight(v);
        sumlx += w * v * q as f32;
        suml2 += w * (q * q) as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = weight(v);
            sumlx += w * v * q as f32;
            suml2 += w * (q * q) as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &v) in l.iter_mut().zip(x) {
                *li = (nmax + nearest_int(iscale * v).clamp(-nmax, nmax - 1)) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's make_qkx2_quants: scale and min (returned as -min in `the_min`) for levels
/// 0..nmax, searched over `nstep` candidate scales with per-weight `weights`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    the_min: &mut f32,
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> f32 {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        min = min.min(x[i]);
        max = max.max(x[i]);
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        *the_min = -min;
        return 0.0;
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        best_error += weights[i] * diff * diff;
    }
    if nstep < 1 {
        *the_min = -min;
        return scale;
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let w = weights[i];
            sum_l += w * q as f32;
            sum_l2 += w * (q * q) as f32;
            sum_xl += w * q as f32 * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * diff * diff;
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    scale
}

/// Scale and min of sub-block j from the 12 packed bytes (ggml's get_scale_min_k4).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Shared by Q4_K and Q5_K: the eight 32-weight sub-blocks' 6-bit scales and mins packed
/// into `scales` (12 bytes), d and dmin into `dm` (4 bytes), levels 0..nmax into `l`.
fn k_scales_mins(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    dm: &mut [u8],
    scales_out: &mut [u8],
    l: &mut [u8; QK_K],
) {
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut mins = [0f32; 8];
    let mut scales = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().map(|v| v * v).sum();
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        scales[j] = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut mins[j],
            &mut laux,
            rmin,
            0.1,
            nstep,
        );
        max_scale = max_scale.max(scales[j]);
        max_min = max_min.max(mins[j]);
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    scales_out.fill(0);
    for j in 0..QK_K / 32 {
        let ls = nearest_int(inv_scale * scales[j]).min(63) as u8;
        let lm = nearest_int(inv_min * mins[j]).min(63) as u8;
        if j < 4 {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            scales_out[j - 4] |= (ls >> 4) << 6;
            scales_out[j] |= (lm >> 4) << 6;
        }
    }
    dm[..2].copy_from_slice(&f16_bytes(max_scale / 63.0));
    dm[2..4].copy_from_slice(&f16_bytes(max_min / 63.0));
    let d_all = f16_round(max_scale / 63.0);
    let dmin_all = f16_round(max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (sc, m) = scale_min_k4(j, scales_out);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dmv = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dmv) / d).clamp(0, nmax) as u8;
        }
    }
}

/// [d: f16][dmin: f16][scales: 12][qs: 128]
fn q4_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let (dm, rest) = y.split_at_mut(4);
    let (scales, qs) = rest.split_at_mut(12);
    k_scales_mins(x, 15, -1.0, 20, dm, scales, &mut l);
    for (c, j) in (0..QK_K).step_by(64).enumerate() {
        for i in 0..32 {
            qs[32 * c + i] = l[j + i] | (l[j + i + 32] << 4);
        }
    }
}

/// [d: f16][dmin: f16][scales: 12][qh: 32][qs: 128]
fn q5_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let (dm, rest) = y.split_at_mut(4);
    let (scales, rest) = rest.split_at_mut(12);
    let (qh, qs) = rest.split_at_mut(32);
    k_scales_mins(x, 31, -0.5, 15, dm, scales, &mut l);
    qh.fill(0);
    let (mut m1, mut m2) = (1u8, 2u8);
    for (c, n) in (0..QK_K).step_by(64).enumerate() {
        for j in 0..32 {
            let mut l1 = l[n + j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = l[n + j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            qs[32 * c + j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
}

/// [ql: 128][qh: 64][scales: 16 × i8][d: f16]
fn q6_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for ib in 0..QK_K / 16 {
        let s = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16], 1);
        scales[ib] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    let (ql, rest) = y.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    let (sc, d) = rest.split_at_mut(16);
    if max_abs_scale < GROUP_MAX_EPS {
        ql.fill(0);
        qh.fill(0);
        sc.fill(0);
        d.copy_from_slice(&f16_bytes(0.0));
        return;
    }
    let iscale = -128.0 / max_scale;
    d.copy_from_slice(&f16_bytes(1.0 / iscale));
    for (s, &v) in sc.iter_mut().zip(&scales) {
        *s = nearest_int(iscale * v).min(127) as i8 as u8;
    }
    let d_all = f16_round(1.0 / iscale);
    for j in 0..QK_K / 16 {
        let dj = d_all * (sc[j] as i8) as f32;
        if dj == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = nearest_int(x[16 * j + ii] / dj).clamp(-32, 31);
            l[16 * j + ii] = (q + 32) as u8;
        }
    }
    for (h, j) in (0..QK_K).step_by(128).enumerate() {
        for i in 0..32 {
            let q1 = l[j + i] & 0xF;
            let q2 = l[j + i + 32] & 0xF;
            let q3 = l[j + i + 64] & 0xF;
            let q4 = l[j + i + 96] & 0xF;
            ql[64 * h + i] = q1 | (q3 << 4);
            ql[64 * h + i + 32] = q2 | (q4 << 4);
            qh[32 * h + i] = (l[j + i] >> 4)
                | ((l[j + i + 32] >> 4) << 2)
                | ((l[j + i + 64] >> 4) << 4)
                | ((l[j + i + 96] >> 4) << 6);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize;

    /// llama.cpp's tests/test-quantize-fns.cpp: 4096 values 0.1 + 2 cos(i), a quantize →
    /// dequantize round trip, and its bound on sqrt(Σ diff²) / n for 4-bit and wider types.
    const MAX_QUANTIZATION_TOTAL_ERROR: f64 = 0.002;

    #[test]
    fn round_trip_error_within_llama_cpp_bound() {
        let x: Vec<f32> = (0..32 * 128).map(|i| 0.1 + 2.0 * (i as f32).cos()).collect();
        for ty in QUANTIZE_TYPES {
            let q = quantize(ty, &x).unwrap();
            assert_eq!(q.len() as u64, x.len() as u64 / ty.block_size() * ty.type_size());
            let mut back = vec![0f32; x.len()];
            dequantize(ty, &q, &mut back).unwrap();
            let err = x.iter().zip(&back).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt() / x.len() as f64;
            assert!(err < MAX_QUANTIZATION_TOTAL_ERROR, "{ty}: error {err}");
        }
    }

    #[test]
    fn nearest_int_rounds_half_to_even_like_ggml() {
        assert_eq!([0.5, 1.5, 2.5, -0.5, -1.5, 3.49].map(nearest_int), [0, 2, 2, 0, -2, 3]);
    }

    #[test]
    fn zero_blocks_stay_zero() {
        for ty in QUANTIZE_TYPES {
            let x = vec![0f32; 256];
            let mut back = vec![1f32; 256];
            dequantize(ty, &quantize(ty, &x).unwrap(), &mut back).unwrap();
            assert!(back.iter().all(|&v| v == 0.0), "{ty}");
        }
    }
}
