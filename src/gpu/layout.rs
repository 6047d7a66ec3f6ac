//! The GPU layout of weights: most types exactly as the file stores them; the block types
//! whose size is not a whole number of words (the 32-weight types with f16 scales in front,
//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, and Q6_K and Q3_K with a trailing f16 scale) split, so that
//! a kernel reads each block's quants as whole aligned words (shaders/quant/split.wgsl).
//! Same bytes, same count, rearranged: a part of n blocks becomes the n bodies (each block
//! without its f16 scale fields) followed by the n blocks' scale fields.

use std::borrow::Cow;

use crate::quant::GgmlType;

/// Where a split type's f16 scale fields lie in its block: (byte offset, bytes); None for
/// types kept as stored.
pub fn split_fields(ty: GgmlType) -> Option<(usize, usize)> {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 => Some((0, 2)),
        Q4_1 | Q5_1 => Some((0, 4)),
        Q3K => Some((108, 2)),
        Q6K => Some((208, 2)),
        _ => None,
    }
}

/// Bytes of scale fields each block of a split type moves out; None for types kept as stored.
pub fn split_scale_bytes(ty: GgmlType) -> Option<usize> {
    split_fields(ty).map(|(_, n)| n)
}

/// `data` (whole blocks of `ty`, as stored) as the GPU holds it.
pub fn for_gpu(ty: GgmlType, data: &[u8]) -> Cow<'_, [u8]> {
    let Some((at, sb)) = split_fields(ty) else { return Cow::Borrowed(data) };
    let bs = ty.type_size() as usize;
    let (n, body) = (data.len() / bs, bs - sb);
    let mut out = vec![0u8; data.len()];
    let (bodies, scales) = out.split_at_mut(n * body);
    for (k, block) in data.chunks_exact(bs).enumerate() {
        scales[k * sb..(k + 1) * sb].copy_from_slice(&block[at..at + sb]);
        let b = &mut bodies[k * body..(k + 1) * body];
        b[..at].copy_from_slice(&block[..at]);
        b[at..].copy_from_slice(&block[at + sb..]);
    }
    Cow::Owned(out)
}

/// The file's layout back from the GPU's (tests check the round trip).
pub fn from_gpu(ty: GgmlType, data: &[u8]) -> Vec<u8> {
    let Some((at, sb)) = split_fields(ty) else { return data.to_vec() };
    let bs = ty.type_size() as usize;
    let (n, body) = (data.len() / bs, bs - sb);
    let (bodies, scales) = data.split_at(n * body);
    let mut out = Vec::with_capacity(data.len());
    for k in 0..n {
        let b = &bodies[k * body..(k + 1) * body];
        out.extend_from_slice(&b[..at]);
        out.extend_from_slice(&scales[k * sb..(k + 1) * sb]);
        out.extend_from_slice(&b[at..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_types_are_the_unaligned_ones_and_round_trip() {
        for ty in GgmlType::ALL {
            if let Some((at, sb)) = split_fields(ty) {
                // The shaders' SCALE_BYTES: the type's f16 fields, nothing else.
                let offs: Vec<usize> = (0..sb / 2).map(|i| at + 2 * i).collect();
                assert_eq!(ty.f16_scale_offsets(), offs.as_slice(), "{ty}");
                assert_eq!((ty.type_size() as usize - sb) % 4, 0, "{ty}: bodies must be whole words");
            } else {
                let quantized = ty.block_size() > 1;
                assert!(
                    !quantized || ty.type_size() % 4 == 0,
                    "{ty} is kept as stored, so its blocks must be whole words"
                );
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
