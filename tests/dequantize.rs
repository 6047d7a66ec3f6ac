//! Each CPU dequantizer against gguf-py's numpy implementation (an independent
//! reference; see tests/fixtures/quant/generate.py) on seeded random blocks.

use lanterna::quant::{dequantize, GgmlType};

/// f32 arithmetic in a different order (numpy vs Rust) may differ by an ulp or two;
/// 1e-6 relative is what the issue allows and far below any layout mistake (a wrong
/// nibble or scale changes values by whole quantization steps, ≥ 1e-2 relative).
const REL_TOL: f32 = 1e-6;

fn fixture(ty: GgmlType, ext: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/quant/{}.{ext}", env!("CARGO_MANIFEST_DIR"), ty.name());
    std::fs::read(&p).unwrap_or_else(|e| panic!("missing fixture {p}: {e}"))
}

fn check(ty: GgmlType) {
    let raw = fixture(ty, "bin");
    let want: Vec<f32> =
        fixture(ty, "f32").chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(raw.len() as u64 / ty.type_size() * ty.block_size(), want.len() as u64, "{ty}: fixture sizes disagree");
    let mut got = vec![f32::NAN; want.len()];
    dequantize(ty, &raw, &mut got).unwrap();
    let exact = matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if exact {
            assert_eq!(g.to_bits(), w.to_bits(), "{ty}[{i}]: got {g}, gguf-py {w}");
        } else {
            let err = (g - w).abs();
            assert!(err <= REL_TOL * w.abs().max(1e-30) || err == 0.0, "{ty}[{i}]: got {g}, gguf-py {w} (|d| = {err})");
        }
    }
    // The fixtures must exercise the type: not all zeros.
    assert!(want.iter().filter(|v| **v != 0.0).count() > want.len() / 2, "{ty}: degenerate fixture");
}

#[test]
fn f32_exact() {
    check(GgmlType::F32)
}
#[test]
fn f16_exact() {
    check(GgmlType::F16)
}
#[test]
fn bf16_exact() {
    check(GgmlType::BF16)
}
#[test]
fn q4_0() {
    check(GgmlType::Q4_0)
}
#[test]
fn q4_1() {
    check(GgmlType::Q4_1)
}
#[test]
fn q5_0() {
    check(GgmlType::Q5_0)
}
#[test]
fn q5_1() {
    check(GgmlType::Q5_1)
}
#[test]
fn q8_0() {
    check(GgmlType::Q8_0)
}
#[test]
fn q2_k() {
    check(GgmlType::Q2K)
}
#[test]
fn q3_k() {
    check(GgmlType::Q3K)
}
#[test]
fn q4_k() {
    check(GgmlType::Q4K)
}
#[test]
fn q5_k() {
    check(GgmlType::Q5K)
}
#[test]
fn q6_k() {
    check(GgmlType::Q6K)
}

#[test]
fn every_type_has_a_fixture() {
    for ty in GgmlType::ALL {
        assert!(!fixture(ty, "bin").is_empty(), "{ty}");
    }
}

#[test]
fn wrong_length_is_an_error_not_a_panic() {
    let mut out = vec![0f32; 32];
    assert!(dequantize(GgmlType::Q4_0, &[0u8; 17], &mut out).is_err());
    assert!(dequantize(GgmlType::Q4K, &[0u8; 144], &mut out).is_err());
}
