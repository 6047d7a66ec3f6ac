//! The CPU reference path against llama.cpp on the two real models.
//!
//! The target is llama.cpp's `dequant_f32` flavour: llama.cpp run on an exact f32
//! dequantization of the file with an f32 KV cache — the same math this path does.
//! (On the quantized file itself llama.cpp rounds activations to 8 bits; how far we
//! follow that run is printed, not asserted.)

mod common;

use common::*;
use lanterna::cpu::CpuModel;
use lanterna::generate::{generate, top2_margin};
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::sampler::{argmax, Sampler, SamplerConfig};
use lanterna::tokenizer::{StreamDecoder, Tokenizer};

/// Greedy ids must match until the reference's own top-1 margin drops below this:
/// below it, f32 summation-order differences (~1e-3) plus llama.cpp's f16 GELU table on
/// Gemma (~1e-2) can legitimately flip the choice. Value set by the issue.
const MIN_MARGIN: f32 = 0.25;
/// Largest |logit difference| allowed on the reference's top-20 tokens at the last
/// prompt position. Exact-math differences are ~1e-3 (SmolLM2) to ~2e-2 (Gemma's GELU
/// table); a dequantization or layout bug moves logits by whole units. Set by the issue.
const TOP20_TOL: f32 = 0.1;
const N_GEN: usize = 32;

fn check_model(m: &RealModel) {
    let g = GgufFile::open(model_path(m)).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let mut exec = CpuModel::load(&g, cfg, 256).unwrap();
    let exact = fixture(m, "dequant_f32");
    let primary = fixture(m, "");

    for ((pid, text, want_ids, p), (_, _, _, pp)) in prompts(&exact).into_iter().zip(prompts(&primary)) {
        let got_ids = tok.encode(&text).unwrap();
        assert_eq!(got_ids, want_ids, "{} {pid}: prompt tokenization", m.name);

        let mut sampler = Sampler::new(SamplerConfig { temperature: 0.0, ..Default::default() });
        let gen = generate(&mut exec, &tok, &mut sampler, &got_ids, N_GEN, true, |_| Ok(())).unwrap();
        assert_eq!(gen.tokens.len(), N_GEN);

        // First-position logits: same argmax, top-20 within tolerance.
        let top20 = top20_first(&p);
        assert_eq!(argmax(&gen.first_logits), top20[0].0, "{} {pid}: first-position argmax", m.name);
        let mut worst = 0f32;
        for &(id, want) in &top20 {
            let d = (gen.first_logits[id as usize] - want).abs();
            worst = worst.max(d);
            assert!(
                d <= TOP20_TOL,
                "{} {pid}: logit of token {id} is {}, llama.cpp {want}",
                m.name,
                gen.first_logits[id as usize]
            );
        }

        // Greedy continuation.
        let want = ids(&p["greedy_ids"]);
        let margins = floats(&p["step_margins"]);
        let need = required_prefix(&margins, MIN_MARGIN);
        let same = common_prefix(&gen.tokens, &want);
        assert!(
            same >= need,
            "{} {pid}: greedy ids part from llama.cpp's exact-math run at step {same}, but its margins only allow that from step {need}\n ours {:?}\n want {:?}",
            m.name, gen.tokens, want
        );
        let vs_primary = common_prefix(&gen.tokens, &ids(&pp["greedy_ids"]));
        println!(
            "{} {pid}: {same}/{N_GEN} greedy tokens as llama.cpp exact math (required {need}); {vs_primary}/{N_GEN} as llama.cpp on the file as is; top-20 max |d| {worst:.4}; first margin {:.3}",
            m.name,
            top2_margin(&gen.first_logits)
        );

        // Every step, teacher-forced on llama.cpp's greedy prefix, whatever our own greedy did.
        let (w, at) = check_step_top5(&mut exec, &format!("{} {pid} cpu", m.name), &got_ids, &p, step_top5_tol(m));
        println!("{} {pid}: teacher-forced top-5 over {N_GEN} steps, max |d| {w:.4} (step {at})", m.name);

        // Streaming never splits a character: the streamed text equals the whole decode.
        let mut sd = StreamDecoder::default();
        let streamed: String = gen.tokens.iter().map(|&t| sd.push(&tok, t)).collect::<String>() + &sd.finish();
        assert_eq!(streamed, tok.decode(&gen.tokens));
    }

    for t in exact["tokenize_only"].as_array().unwrap() {
        let text = t["text"].as_str().unwrap();
        assert_eq!(tok.encode(text).unwrap(), ids(&t["ids"]), "{}: tokenize {text:?}", m.name);
    }
}

#[test]
fn smollm2_matches_llamacpp() {
    check_model(&SMOLLM2);
}

#[test]
fn gemma3_matches_llamacpp() {
    check_model(&GEMMA3);
}
