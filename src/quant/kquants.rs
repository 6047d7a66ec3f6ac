//! The 256-weight "K-quant" super-blocks: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
//! Layouts and dequantization order follow ggml-quants.c (`dequantize_row_q*_K`);
//! a super-block holds 16 or 8 sub-blocks, each with its own 4-, 6- or 8-bit scale.

use bytemuck::{Pod, Zeroable};

use super::{f16le, Block};

/// Weights per K-quant super-block.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K / Q5_K (and of Q3_K's scales).
pub const K_SCALE_SIZE: usize = 12;

/// 2-bit weights; 16 sub-blocks of 16 with 4-bit scale and 4-bit min each.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ2K {
    pub scales: [u8; QK_K / 16],
    pub qs: [u8; QK_K / 4],
    pub d: [u8; 2],
    pub dmin: [u8; 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ2K>() == 84);

/// 3-bit weights (2 low bits in `qs`, the high bit in `hmask`), 16 signed 6-bit scales.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; K_SCALE_SIZE],
    pub d: [u8; 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ3K>() == 110);

/// 4-bit weights; 8 sub-blocks of 32 with 6-bit scale and 6-bit min each.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4K>() == 144);

/// 5-bit weights: Q4_K plus a fifth bit per weight in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5K {
    pub d: [u8; 2],
    pub dmin: [u8; 2],
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ5K>() == 176);

/// 6-bit weights (4 low bits in `ql`, 2 high bits in `qh`), 16 signed 8-bit scales.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: [u8; 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == 210);

/// Scale and min of sub-block `j` (0..8) from the 12 packed bytes of Q4_K / Q5_K.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; K_SCALE_SIZE]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q3_K's sixteen 6-bit scales, unpacked and re-centred (ggml subtracts 32).
pub fn q3k_scales(packed: &[u8; K_SCALE_SIZE]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let mut aux = [0u32; 4];
    for (i, a) in aux.iter_mut().take(3).enumerate() {
        *a = u32::from_le_bytes([packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]]);
    }
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4);
    aux[3] = ((aux[1] >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4);
    aux[0] = (aux[0] & KMASK2) | ((tmp & KMASK1) << 4);
    aux[1] = (aux[1] & KMASK2) | (((tmp >> 2) & KMASK1) << 4);
    let mut out = [0i8; 16];
    for (i, a) in aux.iter().enumerate() {
        for (k, b) in a.to_le_bytes().iter().enumerate() {
            out[4 * i + k] = (*b as i8).wrapping_sub(32);
        }
    }
    out
}

impl Block for BlockQ2K {
    const WEIGHTS: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let (d, min) = (f16le(self.d), f16le(self.dmin));
        let mut is = 0;
        let mut yi = 0;
        for n in 0..QK_K / 128 {
            let q = &self.qs[32 * n..32 * n + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let sc = self.scales[is];
                    is += 1;
                    let dl = d * (sc & 0x0F) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for l in 0..16 {
                        y[yi] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                        yi += 1;
                    }
                }
            }
        }
    }
}

impl Block for BlockQ3K {
    const WEIGHTS: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let d_all = f16le(self.d);
        let scales = q3k_scales(&self.scales);
        let mut is = 0;
        let mut yi = 0;
        let mut m: u8 = 1;
        for n in 0..QK_K / 128 {
            let q = &self.qs[32 * n..32 * n + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let dl = d_all * scales[is] as f32;
                    is += 1;
                    for l in 0..16 {
                        let i = l + 16 * half;
                        let lo = ((q[i] >> shift) & 3) as i8;
                        let hi = if self.hmask[i] & m != 0 { 0 } else { 4 };
                        y[yi] = dl * (lo - hi) as f32;
                        yi += 1;
                    }
                }
                m <<= 1;
            }
        }
    }
}

impl Block for BlockQ4K {
    const WEIGHTS: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let (d, min) = (f16le(self.d), f16le(self.dmin));
        for j in 0..QK_K / 64 {
            let q = &self.qs[32 * j..32 * j + 32];
            let (sc1, m1) = scale_min_k4(2 * j, &self.scales);
            let (sc2, m2) = scale_min_k4(2 * j + 1, &self.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let y = &mut y[64 * j..64 * j + 64];
            for l in 0..32 {
                y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
                y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

impl Block for BlockQ5K {
    const WEIGHTS: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let (d, min) = (f16le(self.d), f16le(self.dmin));
        let (mut u1, mut u2) = (1u8, 2u8);
        for j in 0..QK_K / 64 {
            let ql = &self.qs[32 * j..32 * j + 32];
            let (sc1, m1) = scale_min_k4(2 * j, &self.scales);
            let (sc2, m2) = scale_min_k4(2 * j + 1, &self.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let y = &mut y[64 * j..64 * j + 64];
            for l in 0..32 {
                let h1 = if self.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if self.qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * ((ql[l] & 0x0F) + h1) as f32 - m1;
                y[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

impl Block for BlockQ6K {
    const WEIGHTS: usize = QK_K;
    fn dequantize(&self, y: &mut [f32]) {
        let d = f16le(self.d);
        for n in 0..QK_K / 128 {
            let ql = &self.ql[64 * n..64 * n + 64];
            let qh = &self.qh[32 * n..32 * n + 32];
            let sc = &self.scales[8 * n..8 * n + 8];
            let y = &mut y[128 * n..128 * n + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                y[l] = d * sc[is] as f32 * q1 as f32;
                y[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                y[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                y[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
            }
        }
    }
}
