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
