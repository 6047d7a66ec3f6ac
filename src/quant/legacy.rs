//! The 32-weight block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml-quants.c layouts).
//! Low nibbles hold weights 0..16 of a block, high nibbles weights 16..32.

use bytemuck::{Pod, Zeroable};

use super::{f16le, Block};

/// Weights per legacy block.
pub const QK: usize = 32;

/// x = d * (q - 8), q in 0..16
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

/// x = d * q + m, q in 0..16
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

/// x = d * (q - 16), q in 0..32; the fifth bits of all 32 weights are in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_0>() == 22);

/// x = d * q + m, q in 0..32
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: [u8; 2],
    pub m: [u8; 2],
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ5_1>() == 24);

/// x = d * q, q a signed byte
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: [u8; 2],
    pub qs: [i8; QK],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

impl Block for BlockQ4_0 {
    const WEIGHTS: usize = QK;
    fn dequantize(&self, y: &mut [f32]) {
        let d = f16le(self.d);
        for j in 0..QK / 2 {
            y[j] = ((self.qs[j] & 0x0F) as i32 - 8) as f32 * d;
            y[j + QK / 2] = ((self.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    }
}

impl Block for BlockQ4_1 {
    const WEIGHTS: usize = QK;
    fn dequantize(&self, y: &mut [f32]) {
        let (d, m) = (f16le(self.d), f16le(self.m));
        for j in 0..QK / 2 {
            y[j] = (self.qs[j] & 0x0F) as f32 * d + m;
            y[j + QK / 2] = (self.qs[j] >> 4) as f32 * d + m;
        }
    }
}

impl Block for BlockQ5_0 {
    const WEIGHTS: usize = QK;
    fn dequantize(&self, y: &mut [f32]) {
        let d = f16le(self.d);
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..QK / 2 {
            let xh0 = ((qh >> j) << 4) & 0x10;
            let xh1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((self.qs[j] as u32 & 0x0F) | xh0) as i32 - 16;
            let x1 = ((self.qs[j] as u32 >> 4) | xh1) as i32 - 16;
            y[j] = x0 as f32 * d;
            y[j + QK / 2] = x1 as f32 * d;
        }
    }
}

impl Block for BlockQ5_1 {
    const WEIGHTS: usize = QK;
    fn dequantize(&self, y: &mut [f32]) {
        let (d, m) = (f16le(self.d), f16le(self.m));
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..QK / 2 {
            let xh0 = ((qh >> j) << 4) & 0x10;
            let xh1 = (qh >> (j + 12)) & 0x10;
            let x0 = (self.qs[j] as u32 & 0x0F) | xh0;
            let x1 = (self.qs[j] as u32 >> 4) | xh1;
            y[j] = x0 as f32 * d + m;
            y[j + QK / 2] = x1 as f32 * d + m;
        }
    }
}

impl Block for BlockQ8_0 {
    const WEIGHTS: usize = QK;
    fn dequantize(&self, y: &mut [f32]) {
        let d = f16le(self.d);
        for (yj, &q) in y.iter_mut().zip(&self.qs) {
            *yj = q as f32 * d;
        }
    }
}
