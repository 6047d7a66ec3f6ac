//! Every model family, on both executors, against llama.cpp: the tiny random-weight zoo
//! (one model per family, F32 / Q8_0 / Q4_K_M; see tests/fixtures/zoo/README.md).
//!
//! The reference JSONs are committed; the models are read from `$LANTERNA_ZOO`, else
//! `../shared/fixtures/zoo` beside the repository when it exists, else the few committed
//! in tests/fixtures/zoo. A model that cannot be found fails the test in CI and is
//! reported loudly elsewhere.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use lanterna::cpu::CpuModel;
use lanterna::generate::{generate, Executor};
use lanterna::gguf::GgufFile;
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::sampler::{Sampler, SamplerConfig};
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

/// Greedy ids must follow the exact-math reference until its top-1 margin is below this
/// (set by the issue; f32 summation order and llama.cpp's f16 GELU table move logits by
/// up to ~0.02, so closer calls may flip).
const MIN_MARGIN: f32 = 0.25;
/// Largest |logit difference| at the last prompt position, on every token (set by the
/// issue: exact-math differences are ~1e-3, llama.cpp's f16 GELU table adds ~0.02 on Gemma).
const LOGIT_TOL: f32 = 0.05;

fn zoo_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("LANTERNA_ZOO") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(root.join("../shared/fixtures/zoo"));
    dirs.push(root.join("tests/fixtures/zoo"));
    dirs
}

fn find_model(case: &str, file: &str) -> Option<PathBuf> {
    zoo_dirs().into_iter().map(|d| d.join(case).join(file)).find(|p| p.is_file())
}

fn run_case(case: &str) {
    let gpu_ctx_available = gpu().is_some();
    let mut missing = Vec::new();
    let mut checked = 0;
    for ty in ["F32", "Q8_0", "Q4_K_M"] {
        let refp = format!("{}/tests/fixtures/zoo/{case}/{case}-{ty}.ref.json", env!("CARGO_MANIFEST_DIR"));
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&refp).unwrap()).unwrap();
        let file = r["file"].as_str().unwrap().to_string();
        let Some(path) = find_model(case, &file) else {
            missing.push(file);
            continue;
        };
        let g = GgufFile::open(&path).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let cfg = Config::from_gguf(&g).unwrap();
        let mut execs: Vec<Box<dyn Executor>> = vec![Box::new(CpuModel::load(&g, cfg.clone(), 256).unwrap())];
        if gpu_ctx_available {
            execs.push(Box::new(GpuModel::load_on(gpu().unwrap(), &g, cfg, 256).unwrap()));
        }
        for t in r["tokenize_only"].as_array().unwrap() {
            assert_eq!(tok.encode(t["text"].as_str().unwrap()).unwrap(), ids(&t["ids"]), "{file}: tokenize {:?}", t["text"]);
        }
        for p in r["prompts"].as_array().unwrap() {
            let pid = p["id"].as_str().unwrap();
            let prompt = ids(&p["prompt_ids"]);
            assert_eq!(tok.encode(p["text"].as_str().unwrap()).unwrap(), prompt, "{file} {pid}: prompt tokens");
            // The exact-math flavour: f32 KV cache, and for quantized files f32 dequantized weights.
            let exact = if p["dequant_f32"].is_null() { &p["kv_f32"] } else { &p["dequant_f32"] };
            let want = ids(&exact["greedy_ids"]);
            let need = required_prefix(&floats(&exact["greedy_margins"]), MIN_MARGIN);
            let want_logits = floats(&exact["last_prompt_logits"]);
            for ex in execs.iter_mut() {
                let mut s = Sampler::new(SamplerConfig { temperature: 0.0, ..Default::default() });
                let gen = generate(ex.as_mut(), &tok, &mut s, &prompt, want.len(), true, |_| Ok(())).unwrap();
                let same = common_prefix(&gen.tokens, &want);
                assert!(same >= need, "{file} {pid} on {}: follows llama.cpp for {same} tokens, {need} required\n ours {:?}\n want {want:?}", ex.name(), gen.tokens);
                let worst = gen.first_logits.iter().zip(&want_logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(worst <= LOGIT_TOL, "{file} {pid} on {}: last-prompt logits differ by up to {worst}", ex.name());
                println!("{file} {pid} {:<5}: {same}/{} greedy (required {need}), logits max |d| {worst:.4}", ex.name().split(':').next().unwrap_or(""), want.len());
            }
        }
        checked += 1;
    }
    if !missing.is_empty() {
        let msg = format!("zoo models not found in {:?}: {missing:?}", zoo_dirs());
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("\n********** {msg} **********\n");
    }
    assert!(checked > 0 || std::env::var_os("CI").is_none(), "{case}: no model checked");
}

#[test]
fn llama_spm() { run_case("llama-spm") }
#[test]
fn llama3_bpe() { run_case("llama3-bpe") }
#[test]
fn deepseek_coder() { run_case("deepseek-coder") }
#[test]
fn codellama() { run_case("codellama") }
#[test]
fn mistral() { run_case("mistral") }
#[test]
fn qwen2() { run_case("qwen2") }
#[test]
fn qwen3() { run_case("qwen3") }
#[test]
fn gemma() { run_case("gemma") }
#[test]
fn gemma2() { run_case("gemma2") }
#[test]
fn gemma3() { run_case("gemma3") }
#[test]
fn phi3() { run_case("phi3") }
