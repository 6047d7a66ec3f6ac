//! The sampler against llama.cpp's semantics at intermediate settings. The expected
//! candidate sets and probabilities come from an independent port of llama.cpp's
//! `llama-sampling.cpp` (tests/fixtures/sampler/generate.py, which writes sampler.json):
//! temperature, top-k, top-p, min-p, the repetition penalty and its window, and their
//! order in the chain. Seeded draws must then follow those probabilities.

use lanterna::sampler::{Sampler, SamplerConfig};
use serde_json::Value;

/// Probabilities: the fixture computes in f32 as llama.cpp does, we in f64; f32 softmax
/// over ≤ 301 candidates is good to a few 1e-7, so 1e-5 is loose for rounding and tight
/// for any semantic change (a temperature applied before top-p moves them by > 1e-2).
const PROB_TOL: f64 = 1e-5;
/// Draws per frequency check, and how many standard deviations a candidate's frequency may
/// stray from its probability: at 5 sd a correct sampler fails about once in 10^6 seeds
/// per candidate.
const DRAWS: usize = 20_000;
const FREQ_SIGMAS: f64 = 5.0;

fn cases() -> Vec<Value> {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sampler/sampler.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).expect("sampler fixture")).expect("sampler JSON");
    v["cases"].as_array().unwrap().clone()
}

fn config(c: &Value, seed: u64) -> SamplerConfig {
    let f = |k: &str| c["config"][k].as_f64().unwrap();
    SamplerConfig {
        temperature: f("temperature") as f32,
        top_k: f("top_k") as usize,
        top_p: f("top_p") as f32,
        min_p: f("min_p") as f32,
        repeat_penalty: f("repeat_penalty") as f32,
        repeat_last_n: f("repeat_last_n") as usize,
        seed,
    }
}

fn inputs(c: &Value) -> (Vec<f32>, Vec<u32>) {
    let logits = c["logits"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    let history = c["history"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    (logits, history)
}

fn expected(c: &Value) -> Vec<(u32, f64)> {
    c["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn candidates_and_probabilities_follow_llama_cpp() {
    let all = cases();
    assert!(all.len() >= 20, "fixture has {} cases", all.len());
    for c in &all {
        let name = c["name"].as_str().unwrap();
        let (logits, history) = inputs(c);
        let want = expected(c);
        let got = Sampler::new(config(c, 0)).candidates(&logits, &history);
        let ids = |v: &[(u32, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "{name}: candidate set");
        for ((id, p), (_, q)) in got.iter().zip(&want) {
            assert!((p - q).abs() <= PROB_TOL, "{name}: token {id} has probability {p}, llama.cpp {q}");
        }
    }
}

#[test]
fn seeded_draws_follow_the_expected_distribution() {
    for c in cases().iter().filter(|c| expected(c).len() > 1 && expected(c).len() <= 40) {
        let name = c["name"].as_str().unwrap();
        let (logits, history) = inputs(c);
        let want = expected(c);
        let mut s = Sampler::new(config(c, 1234));
        let mut counts = std::collections::HashMap::<u32, usize>::new();
        for _ in 0..DRAWS {
            *counts.entry(s.sample(&logits, &history)).or_default() += 1;
        }
        for t in counts.keys() {
            assert!(want.iter().any(|w| w.0 == *t), "{name}: drew {t}, which llama.cpp's chain cuts");
        }
        for &(id, p) in &want {
            let f = *counts.get(&id).unwrap_or(&0) as f64 / DRAWS as f64;
            let sd = (p * (1.0 - p) / DRAWS as f64).sqrt();
            assert!(
                (f - p).abs() <= FREQ_SIGMAS * sd + 1.0 / DRAWS as f64,
                "{name}: token {id} drawn with frequency {f}, probability {p}"
            );
        }
    }
}

/// What a GPU step reads back: the best `needs(history)` pairs (sampler::top_of, the
/// shader's CPU twin) must give the very tokens the whole vocabulary gives, seed for seed,
/// in every fixture case (penalties included: they can lift tokens from below the top-k).
#[test]
fn the_best_candidates_alone_give_the_same_tokens() {
    use lanterna::sampler::top_of;
    let mut compared = 0;
    for c in &cases() {
        let name = c["name"].as_str().unwrap();
        let (logits, history) = inputs(c);
        for temperature in [0.0, config(c, 0).temperature] {
            let cfg = SamplerConfig { temperature, ..config(c, 99) };
            let (mut whole, mut top) = (Sampler::new(cfg.clone()), Sampler::new(cfg));
            let Some(k) = top.needs(&history) else { continue };
            let best = top_of(&logits, k);
            for draw in 0..200 {
                let (a, b) = (whole.sample(&logits, &history), top.sample_from(&best, &history));
                assert_eq!(
                    a, b,
                    "{name} at temperature {temperature}, draw {draw}: top-{k} chose {b}, the vocabulary {a}"
                );
            }
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} configurations read back candidates");
}

/// A penalty lowers a logit, so the token just past the top-k can take its place: the
/// readback must then hold it too.
#[test]
fn penalised_tokens_widen_the_readback() {
    use lanterna::sampler::top_of;
    let logits = [5.0, 4.0, 3.9, 1.0, 0.5];
    let cfg = SamplerConfig { temperature: 0.0, repeat_penalty: 2.0, ..Default::default() };
    let mut s = Sampler::new(cfg);
    assert_eq!(s.needs(&[0, 0, 1]), Some(3));
    assert_eq!(s.sample_from(&top_of(&logits, 3), &[0, 0, 1]), 2, "5/2 and 4/2 fall below 3.9");
    assert_eq!(s.needs(&[]), Some(1));
    let greedy_k0 = Sampler::new(SamplerConfig { top_k: 0, temperature: 0.7, ..Default::default() });
    assert_eq!(greedy_k0.needs(&[]), None, "top-k 0 samples from the whole vocabulary");
}
