//! The GPU layout of weights: most types exactly as the file stores them; the 32-weight
//! block types with f16 scales in front (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) split, so that a
//! kernel reads each block's quants as whole aligned words (shaders/quant/split.wgsl).
//! Same bytes, same count, rearranged: a part of n blocks becomes the n bodies (each block
//! without its leading scale fields) followed by the n blocks' scale fields.

use std::borrow::Cow;

use crate::quant::GgmlType;

/// Bytes of scale fields at the front of each block of a type uploaded split; None for
/// types kept as stored.
pub fn split_scale_bytes(ty: GgmlType) -> Option<usize> {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => Some(2),
        Q4_1 | Q5_1 => Some(4),
        _ => None,
    }
}

/// `data` (whole blocks of `ty`, as stored) as the GPU holds it.
pub fn for_gpu(ty: GgmlType, data: &[u8]) -> Cow<'_, [u8]> {
    let Some(sb) = split_scale_bytes(ty) else { return Cow::Borrowed(data) };
    let bs = ty.type_size() as usize;
    let n = data.len() / bs;
    let mut out = vec![0u8; data.len()];
    let (bodies, scales) = out.split_at_mut(n * (bs - sb));
    for (k, block) in data.chunks_exact(bs).enumerate() {
        scales[k * sb..(k + 1) * sb].copy_from_slice(&block[..sb]);
        bodies[k * (bs - sb)..(k + 1) * (bs - sb)].copy_from_slice(&block[sb..]);
    }
    Cow::Owned(out)
}

/// The file's layout back from the GPU's (tests check the round trip).
pub fn from_gpu(ty: GgmlType, data: &[u8]) -> Vec<u8> {
    let Some(sb) = split_scale_bytes(ty) else { return data.to_vec() };
    let bs = ty.type_size() as usize;
    let n = data.len() / bs;
    let (bodies, scales) = data.split_at(n * (bs - sb));
    let mut out = Vec::with_capacity(data.len());
    for k in 0..n {
        out.extend_from_slice(&scales[k * sb..(k + 1) * sb]);
        out.extend_from_slice(&bodies[k * (bs - sb)..(k + 1) * (bs - sb)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_types_are_the_ones_with_leading_f16_scales_and_round_trip() {
        for ty in GgmlType::ALL {
            if let Some(sb) = split_scale_bytes(ty) {
                // The shaders' SCALE_BYTES: the f16 fields at the block's front, nothing else.
                let offs: Vec<usize> = (0..sb / 2).map(|i| 2 * i).collect();
                assert_eq!(ty.f16_scale_offsets(), offs.as_slice(), "{ty}");
                assert_eq!((ty.type_size() as usize - sb) % 4, 0, "{ty}: bodies must be whole words");
            }
            // 7 blocks of patterned bytes: the split moves bytes, never changes or loses one.
            let data: Vec<u8> = (0..7 * ty.type_size() as usize).map(|i| (i * 31 % 251) as u8).collect();
            let gpu = for_gpu(ty, &data);
            assert_eq!(gpu.len(), data.len());
            assert_eq!(from_gpu(ty, &gpu), data, "{ty}");
            if split_scale_bytes(ty).is_some() {
                assert_ne!(gpu.as_ref(), data.as_slice(), "{ty} is split");
            }
        }
    }
}
