//! Shared by the integration tests: where the real models are, and llama.cpp's
//! reference outputs for them (tests/fixtures/llamacpp, copied from shared/fixtures).
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

pub struct RealModel {
    pub name: &'static str,
    pub file: &'static str,
    /// Fixture stem in tests/fixtures/llamacpp.
    pub fixture: &'static str,
}

pub const SMOLLM2: RealModel = RealModel { name: "smollm2", file: "SmolLM2-135M-Instruct.Q4_1.gguf", fixture: "smollm2-135m-instruct-q4_1" };
pub const GEMMA3: RealModel = RealModel { name: "gemma3", file: "gemma-3-270m-q4_k_m.gguf", fixture: "gemma-3-270m-q4_k_m" };

/// The cached model file. Missing models fail the test loudly: a test that cannot see
/// its model has proven nothing.
pub fn model_path(m: &RealModel) -> PathBuf {
    let p = lanterna::models::cache_dir().join(m.file);
    assert!(
        p.is_file(),
        "\n\n*** {} not found at {} ***\nRun scripts/fetch-models.sh (scripts/test.sh does it for you) or set LANTERNA_MODELS.\n",
        m.file,
        p.display()
    );
    p
}

pub fn fixture(m: &RealModel, flavour: &str) -> Value {
    let suffix = if flavour.is_empty() { String::new() } else { format!(".{flavour}") };
    let p = format!("{}/tests/fixtures/llamacpp/{}{suffix}.json", env!("CARGO_MANIFEST_DIR"), m.fixture);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("missing fixture {p}: {e}"));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad fixture {p}: {e}"))
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("id array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("float array").iter().map(|x| x.as_f64().expect("float") as f32).collect()
}

/// Prompts of a fixture, in a stable order: (id, text, prompt ids, prompt record).
pub fn prompts(fx: &Value) -> Vec<(String, String, Vec<u32>, Value)> {
    let obj = fx["prompts"].as_object().expect("prompts");
    let mut v: Vec<_> = obj
        .iter()
        .map(|(k, p)| (k.clone(), p["text"].as_str().expect("text").to_string(), ids(&p["ids"]), p.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// How many leading greedy tokens must agree with a reference: all of them, up to and
/// including the first step whose reference top-1 margin is below `min_margin` (from
/// there on a correct runtime with different rounding may honestly take the other branch).
pub fn required_prefix(margins: &[f32], min_margin: f32) -> usize {
    match margins.iter().position(|&m| m < min_margin) {
        Some(i) => i, // tokens 0..i must match; token i is a near-tie
        None => margins.len(),
    }
}

pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The GPU for tests. In CI (`CI` set) a missing adapter fails the test: GPU tests must
/// never pass by not running. Elsewhere it says so loudly and the test returns early.
pub fn gpu() -> Option<lanterna::gpu::GpuContext> {
    match lanterna::gpu::GpuContext::new(&Default::default()) {
        Ok(c) => Some(c),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("no GPU adapter in CI: {e}. .ci/run installs lavapipe (scripts/install-lavapipe.sh).");
            }
            eprintln!("\n\n********** GPU TEST NOT RUN: {e} **********\n(install lavapipe with scripts/install-lavapipe.sh)\n");
            None
        }
    }
}

/// Normalized mean squared error Σ(a−b)² / Σb², the measure of ggml's test-backend-ops.
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|v| v.is_finite()), "non-finite GPU output");
    let num: f64 = got.iter().zip(want).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// Seeded values uniform in [-1, 1).
pub fn rand_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut r = lanterna::sampler::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

/// Seeded random blocks of a tensor type with finite f16 scales (random bytes there
/// would be NaN or huge).
pub fn rand_tensor(ty: lanterna::quant::GgmlType, n_weights: usize, seed: u64) -> Vec<u8> {
    use lanterna::quant::GgmlType::*;
    let mut r = lanterna::sampler::Rng::new(seed);
    match ty {
        F32 => return rand_f32(n_weights, seed).iter().flat_map(|v| v.to_le_bytes()).collect(),
        F16 => return rand_f32(n_weights, seed).iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        BF16 => return rand_f32(n_weights, seed).iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
        _ => {}
    }
    let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
    let mut bytes: Vec<u8> = (0..n_weights / bs * ts).map(|_| r.next_u64() as u8).collect();
    for blk in bytes.chunks_exact_mut(ts) {
        for &off in ty.f16_scale_offsets() {
            let mag = 10f64.powf(-3.0 * r.next_f64()) * (r.next_f64() * 2.0 - 1.0);
            blk[off..off + 2].copy_from_slice(&half::f16::from_f64(mag).to_le_bytes());
        }
    }
    bytes
}
