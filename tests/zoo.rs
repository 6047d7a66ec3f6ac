//! Every model family, on both executors, against llama.cpp: the tiny random-weight zoo
//! (one model per family, F32 / Q8_0 / Q4_K_M; see tests/fixtures/zoo/README.md).
//!
//! The reference JSONs are committed; the models are read from `$LANTERNA_ZOO` alone when
//! it is set, else `../shared/fixtures/zoo` and the few committed in tests/fixtures/zoo
//! (`common::zoo_dirs`). A model that cannot be found fails the test.

mod common;

use common::*;
use lanterna::cpu::CpuModel;
use lanterna::generate::{generate, Executor};
use lanterna::gguf::GgufFile;
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::sampler::{argmax, Sampler, SamplerConfig};
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

/// Greedy ids must follow the exact-math reference until its top-1 margin is below this
/// (set by the issue; f32 summation order and llama.cpp's f16 GELU table move logits by
/// up to ~0.02, so closer calls may flip).
const MIN_MARGIN: f32 = 0.25;
/// Largest |logit difference| at the last prompt position, on every token (set by the
/// issue: exact-math differences are ~1e-3, llama.cpp's f16 GELU table adds ~0.02 on Gemma).
const LOGIT_TOL: f32 = 0.05;

/// Teacher-forced on llama.cpp's greedy ids, our top-1 must be llama.cpp's at every step
/// whose reference margin is at least MIN_MARGIN, even after a near-tie step where free
/// greedy generation may part. Returns (steps checked, steps).
fn teacher_forced_argmax(
    ex: &mut dyn Executor,
    prompt: &[u32],
    want: &[u32],
    margins: &[f32],
    what: &str,
) -> (usize, usize) {
    ex.reset();
    let mut logits = ex.prefill(prompt, 0).unwrap().to_vec();
    let mut checked = 0;
    for (i, (&w, &m)) in want.iter().zip(margins).enumerate() {
        if m >= MIN_MARGIN {
            assert_eq!(argmax(&logits), w, "{what}: teacher-forced step {i} (reference margin {m})");
            checked += 1;
        }
        if i + 1 < want.len() {
            logits = ex.forward(w, prompt.len() + i).unwrap().to_vec();
        }
    }
    (checked, want.len())
}

fn run_case(case: &str) {
    let gpu_ctx_available = gpu().is_some();
    for ty in ["F32", "Q8_0", "Q4_K_M"] {
        let refp = format!("{}/tests/fixtures/zoo/{case}/{case}-{ty}.ref.json", env!("CARGO_MANIFEST_DIR"));
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&refp).unwrap()).unwrap();
        let file = r["file"].as_str().unwrap().to_string();
        let Some(path) = zoo_model(case, &file) else { continue };
        let g = GgufFile::open(&path).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        let cfg = Config::from_gguf(&g).unwrap();
        let mut execs: Vec<Box<dyn Executor>> = vec![Box::new(CpuModel::load(&g, cfg.clone(), 256).unwrap())];
        if gpu_ctx_available {
            execs.push(Box::new(GpuModel::load_on(gpu().unwrap(), &g, cfg, 256).unwrap()));
        }
        for t in r["tokenize_only"].as_array().unwrap() {
            assert_eq!(
                tok.encode(t["text"].as_str().unwrap()).unwrap(),
                ids(&t["ids"]),
                "{file}: tokenize {:?}",
                t["text"]
            );
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
                assert!(
                    worst <= LOGIT_TOL,
                    "{file} {pid} on {}: last-prompt logits differ by up to {worst}",
                    ex.name()
                );
                let what = format!("{file} {pid} on {}", ex.name());
                let (checked, n) =
                    teacher_forced_argmax(ex.as_mut(), &prompt, &want, &floats(&exact["greedy_margins"]), &what);
                println!(
                    "{file} {pid} {:<5}: {same}/{} greedy (required {need}), teacher-forced top-1 = llama.cpp at {checked}/{n} steps (all with margin >= {MIN_MARGIN}), logits max |d| {worst:.4}",
                    ex.name().split(':').next().unwrap_or(""),
                    want.len()
                );
            }
        }
    }
}

#[test]
fn llama_spm() {
    run_case("llama-spm")
}
#[test]
fn llama3_bpe() {
    run_case("llama3-bpe")
}
#[test]
fn deepseek_coder() {
    run_case("deepseek-coder")
}
#[test]
fn codellama() {
    run_case("codellama")
}
#[test]
fn mistral() {
    run_case("mistral")
}
#[test]
fn qwen2() {
    run_case("qwen2")
}
#[test]
fn qwen3() {
    run_case("qwen3")
}
#[test]
fn gemma() {
    run_case("gemma")
}
#[test]
fn gemma2() {
    run_case("gemma2")
}
#[test]
fn gemma3() {
    run_case("gemma3")
}
#[test]
fn phi3() {
    run_case("phi3")
}

/// The CPU reference runs a prompt in chunks (each weight row read once for a chunk of
/// tokens); every value must be the one it computes for a lone token, to the bit, on every
/// family (biases, q/k norms, sliding windows, soft-caps, fused tensors): 70 tokens, so
/// chunks end mid-prompt and the last one is partial.
#[test]
fn cpu_prompt_chunks_are_token_by_token_to_the_bit() {
    let cases = ["llama-spm", "llama3-bpe", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"];
    for case in cases {
        let Some(path) = zoo_model(case, &format!("{case}-Q4_K_M.gguf")) else { continue };
        let g = GgufFile::open(&path).unwrap();
        let cfg = Config::from_gguf(&g).unwrap();
        let mut r = lanterna::sampler::Rng::new(11);
        let tokens: Vec<u32> = (0..70).map(|_| (r.next_u64() % cfg.n_vocab as u64) as u32).collect();
        let mut chunked = CpuModel::load(&g, cfg.clone(), 128).unwrap();
        let mut single = CpuModel::load(&g, cfg, 128).unwrap();
        let last = chunked.prefill(&tokens, 0).unwrap().to_vec();
        let want = lanterna::generate::logits_one_by_one(&mut single, &tokens, 0, 0).unwrap();
        let n_vocab = last.len();
        assert_eq!(last, want[69 * n_vocab..], "{case}: the prompt's last logits");
        // The caches the chunks filled serve the next token as the lone tokens' do.
        assert_eq!(chunked.forward(5, 70).unwrap(), single.forward(5, 70).unwrap(), "{case}: the next token");
        // From token 40 the first chunk's logits are not wanted; from 20 they partly are.
        for from in [20, 40] {
            chunked.reset();
            let got = chunked.logits_from(&tokens, 0, from).unwrap();
            assert_eq!(got, want[from * n_vocab..], "{case}: logits from token {from}");
        }
        println!("{case}: 70-token prompt in chunks = token by token, to the bit");
    }
}
