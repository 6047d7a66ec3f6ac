//! Lanterna's quantizers against ggml's own, type by type: tests/fixtures/quant/reference
//! holds `ggml_quantize_chunk` output (the function llama-quantize calls, no importance
//! matrix) for two inputs — ggml's test-quantize-fns data and seeded random values with
//! outliers — written by generate.py beside it. Then the round-trip error on ggml's data
//! against the thresholds of ggml's test-quantize-fns.cpp.

mod common;

use lanterna::quant::quantize::{quantize, QUANTIZE_TYPES};
use lanterna::quant::{dequantize, GgmlType};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant/reference");

/// ggml's test-quantize-fns.cpp: MAX_QUANTIZATION_TOTAL_ERROR (0.002) for every type of
/// 4 bits and more, _3BITS (0.004), _2BITS (0.0075), on its `array_rmse` (√Σd² / n).
fn ggml_threshold(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::Q2K => 0.0075,
        GgmlType::Q3K => 0.0040,
        _ => 0.002,
    }
}

/// Our round-trip error may exceed ggml's own on the same data by this fraction: a
/// per-type bound (Q8_0's error is 27× below ggml's generic 0.002 threshold, so that
/// threshold alone would let a much worse Q8_0 pass).
const ERROR_VS_GGML_REL: f64 = 1e-3;

fn read_f32(name: &str) -> Vec<f32> {
    let b = std::fs::read(format!("{DIR}/{name}.f32")).expect("reference input");
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn reference(input: &str, ty: GgmlType) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{input}.{}.bin", ty.name())).expect("reference output")
}

/// ggml's `array_rmse`: √(Σ (a−b)²) / n.
fn array_rmse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt() / a.len() as f64
}

fn round_trip(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut back = vec![0f32; n];
    dequantize(ty, q, &mut back).unwrap();
    back
}

#[test]
fn quantizers_write_ggmls_bytes() {
    for input in ["ggml", "random"] {
        let x = read_f32(input);
        for ty in QUANTIZE_TYPES {
            let (ours, theirs) = (quantize(ty, &x).unwrap(), reference(input, ty));
            assert_eq!(ours.len(), theirs.len(), "{input} {ty}: size");
            let ts = ty.type_size() as usize;
            let blocks = theirs.len() / ts;
            let differing = ours.chunks(ts).zip(theirs.chunks(ts)).filter(|(a, b)| a != b).count();
            let (e_ours, e_theirs) =
                (array_rmse(&x, &round_trip(ty, &ours, x.len())), array_rmse(&x, &round_trip(ty, &theirs, x.len())));
            println!("{input} {ty}: {differing} of {blocks} blocks differ from ggml's; round-trip error ours {e_ours:.3e}, ggml {e_theirs:.3e}");
            // Every byte, the K-quants' scale searches included.
            assert_eq!(differing, 0, "{input} {ty}: {differing} of {blocks} blocks differ");
            assert!(e_ours <= e_theirs * (1.0 + ERROR_VS_GGML_REL), "{input} {ty}: error {e_ours} vs ggml {e_theirs}");
        }
    }
}

#[test]
fn round_trip_errors_within_ggmls_thresholds() {
    let x = read_f32("ggml");
    for ty in QUANTIZE_TYPES {
        let e = array_rmse(&x, &round_trip(ty, &quantize(ty, &x).unwrap(), x.len()));
        assert!(e <= ggml_threshold(ty), "{ty}: round-trip error {e} over ggml's {}", ggml_threshold(ty));
        let ggml_own = array_rmse(&x, &round_trip(ty, &reference("ggml", ty), x.len()));
        assert!(e <= ggml_own * (1.0 + ERROR_VS_GGML_REL), "{ty}: round-trip error {e}, ggml's own {ggml_own}");
    }
    // Types we only read: ggml's own output through our dequantizer.
    for ty in [GgmlType::Q2K, GgmlType::Q3K] {
        let e = array_rmse(&x, &round_trip(ty, &reference("ggml", ty), x.len()));
        assert!(e <= ggml_threshold(ty), "{ty}: round-trip error {e} over ggml's {}", ggml_threshold(ty));
    }
}
