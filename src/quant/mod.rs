//! ggml tensor types: their block layouts and CPU dequantization.
//!
//! The CPU dequantizers here are the numerical reference for everything else: the GPU
//! shaders read the same bytes and must produce the same values. One file per block
//! family; each `#[repr(C)]` block struct has a compile-time size assert so the layout
//! cannot silently drift from ggml's.

mod float;
mod kquants;
mod legacy;
pub mod quantize;

pub use float::{dequantize_bf16, dequantize_f16, dequantize_f32};
pub use kquants::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, QK_K};
pub use legacy::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, QK};

use crate::error::{Error, Result};

/// One quantization block as it lies in the file. Every field is made of bytes
/// (alignment 1), so a block can be viewed straight out of an mmap'd tensor.
pub trait Block: bytemuck::Pod {
    /// Weights per block.
    const WEIGHTS: usize;
    /// Write this block's `WEIGHTS` values into `out`.
    fn dequantize(&self, out: &mut [f32]);
}

fn dequant_blocks<B: Block>(data: &[u8], out: &mut [f32]) {
    let blocks: &[B] = bytemuck::cast_slice(data);
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(B::WEIGHTS)) {
        b.dequantize(o);
    }
}

/// A little-endian f16 stored as two bytes.
#[inline]
pub(crate) fn f16le(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

/// The tensor types Lanterna reads. Ids are ggml's (`enum ggml_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    BF16,
}

impl GgmlType {
    pub const ALL: [GgmlType; 13] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
    ];

    pub fn from_id(id: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            30 => BF16,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            BF16 => 30,
        }
    }

    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            BF16 => "BF16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
        }
    }

    /// Weights per block.
    pub fn block_size(self) -> u64 {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => QK as u64,
            Q2K | Q3K | Q4K | Q5K | Q6K => QK_K as u64,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        use std::mem::size_of;
        use GgmlType::*;
        (match self {
            F32 => 4,
            F16 | BF16 => 2,
            Q4_0 => size_of::<BlockQ4_0>(),
            Q4_1 => size_of::<BlockQ4_1>(),
            Q5_0 => size_of::<BlockQ5_0>(),
            Q5_1 => size_of::<BlockQ5_1>(),
            Q8_0 => size_of::<BlockQ8_0>(),
            Q2K => size_of::<BlockQ2K>(),
            Q3K => size_of::<BlockQ3K>(),
            Q4K => size_of::<BlockQ4K>(),
            Q5K => size_of::<BlockQ5K>(),
            Q6K => size_of::<BlockQ6K>(),
        }) as u64
    }

    /// Bytes of a row of `n` weights, or None if `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.type_size())
    }

    /// Byte offsets of the f16 scale (and min) fields inside one block; empty for the float
    /// types. Generators of random test and benchmark blocks overwrite these with finite values.
    pub fn f16_scale_offsets(self) -> &'static [usize] {
        use std::mem::offset_of;
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 => &[],
            Q4_0 => &[offset_of!(BlockQ4_0, d)],
            Q4_1 => &[offset_of!(BlockQ4_1, d), offset_of!(BlockQ4_1, m)],
            Q5_0 => &[offset_of!(BlockQ5_0, d)],
            Q5_1 => &[offset_of!(BlockQ5_1, d), offset_of!(BlockQ5_1, m)],
            Q8_0 => &[offset_of!(BlockQ8_0, d)],
            Q2K => &[offset_of!(BlockQ2K, d), offset_of!(BlockQ2K, dmin)],
            Q3K => &[offset_of!(BlockQ3K, d)],
            Q4K => &[offset_of!(BlockQ4K, d), offset_of!(BlockQ4K, dmin)],
            Q5K => &[offset_of!(BlockQ5K, d), offset_of!(BlockQ5K, dmin)],
            Q6K => &[offset_of!(BlockQ6K, d)],
        }
    }

    /// Bits per weight, for reports.
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Dequantize `data` (whole blocks of type `ty`) into `out`, which must hold exactly
/// `data.len() / type_size * block_size` values.
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) -> Result<()> {
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    if !data.len().is_multiple_of(ts) || data.len() / ts * bs != out.len() {
        return Err(Error::Usage(format!("dequantize {ty}: {} bytes do not make {} values", data.len(), out.len())));
    }
    match ty {
        GgmlType::F32 => dequantize_f32(data, out),
        GgmlType::F16 => dequantize_f16(data, out),
        GgmlType::BF16 => dequantize_bf16(data, out),
        GgmlType::Q4_0 => dequant_blocks::<BlockQ4_0>(data, out),
        GgmlType::Q4_1 => dequant_blocks::<BlockQ4_1>(data, out),
        GgmlType::Q5_0 => dequant_blocks::<BlockQ5_0>(data, out),
        GgmlType::Q5_1 => dequant_blocks::<BlockQ5_1>(data, out),
        GgmlType::Q8_0 => dequant_blocks::<BlockQ8_0>(data, out),
        GgmlType::Q2K => dequant_blocks::<BlockQ2K>(data, out),
        GgmlType::Q3K => dequant_blocks::<BlockQ3K>(data, out),
        GgmlType::Q4K => dequant_blocks::<BlockQ4K>(data, out),
        GgmlType::Q5K => dequant_blocks::<BlockQ5K>(data, out),
        GgmlType::Q6K => dequant_blocks::<BlockQ6K>(data, out),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::GgmlType::*;

    /// Where ggml-quants.h puts each block's f16 fields.
    #[test]
    fn scale_offsets_match_ggml_layouts() {
        let want: [(super::GgmlType, &[usize]); 13] = [
            (F32, &[]),
            (F16, &[]),
            (BF16, &[]),
            (Q4_0, &[0]),
            (Q4_1, &[0, 2]),
            (Q5_0, &[0]),
            (Q5_1, &[0, 2]),
            (Q8_0, &[0]),
            (Q2K, &[80, 82]),
            (Q3K, &[108]),
            (Q4K, &[0, 2]),
            (Q5K, &[0, 2]),
            (Q6K, &[208]),
        ];
        for (ty, offs) in want {
            assert_eq!(ty.f16_scale_offsets(), offs, "{ty}");
        }
    }
}
