//! Continuous batching (`Executor::decode_batch`): several sequences, each in its own
//! region of the KV cache, one token each per step. What the server promises rests on
//! two facts checked here on the real SmolLM2, for both ways the GPU can run a batch: a
//! sequence's logits in a batch are bit-for-bit those it gets alone in another sequence
//! slot (no cross-talk), and running them together agrees with the decoding program.

mod common;

use common::*;
use lanterna::cpu::CpuModel;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::gpu::kernels::Batching;
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::sampler::argmax;
use lanterna::tokenizer::Tokenizer;

/// The batch runs the prompt program's kernels (matmul, chunk attention) where decoding
/// runs matvecs: the same f32 math in another order, ~1e-4 apart, as in gpu_model.rs's
/// chunked-prefill test; 1e-3 still catches a token attending to the wrong positions.
const BATCH_VS_DECODE_TOL: f32 = 1e-3;
const STEPS: usize = 6;
const N_CTX: usize = 96;
const PROMPTS: [&str; 3] =
    ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a small village by the sea, there lived"];

/// Greedy continuations of PROMPTS, prompt i in sequence `seqs[i]`, every decoding step
/// one batch of all of them: per prompt, its tokens and the logits of every step.
fn run(e: &mut dyn Executor, tok: &Tokenizer, seqs: &[usize]) -> Vec<(Vec<u32>, Vec<Vec<f32>>)> {
    let mut out: Vec<(Vec<u32>, Vec<Vec<f32>>)> = Vec::new();
    for (p, &s) in PROMPTS.iter().zip(seqs) {
        e.select_seq(s).unwrap();
        e.reset();
        let ids = tok.encode(p).unwrap();
        let logits = e.prefill(&ids, 0).unwrap().to_vec();
        out.push((vec![argmax(&logits)], Vec::new()));
    }
    for _ in 0..STEPS {
        let items: Vec<(usize, u32)> = seqs.iter().zip(&out).map(|(&s, (t, _))| (s, *t.last().unwrap())).collect();
        let rows = e.decode_batch(&items).unwrap();
        for (row, (toks, steps)) in rows.chunks(rows.len() / items.len()).zip(out.iter_mut()) {
            toks.push(argmax(row));
            steps.push(row.to_vec());
        }
    }
    out
}

fn check_no_cross_talk(e: &mut dyn Executor, tok: &Tokenizer) -> Vec<(Vec<u32>, Vec<Vec<f32>>)> {
    let together = run(e, tok, &[2, 0, 3]);
    for (i, want) in together.iter().enumerate() {
        // Alone, and in a sequence slot none of them used together.
        let alone = run_one(e, tok, i, 1);
        assert_eq!(alone.0, want.0, "prompt {i}: tokens alone differ from in the batch");
        assert!(alone.1 == want.1, "prompt {i}: logits alone are not bit-identical to the batch's");
    }
    together
}

fn run_one(e: &mut dyn Executor, tok: &Tokenizer, i: usize, seq: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    e.select_seq(seq).unwrap();
    e.reset();
    let ids = tok.encode(PROMPTS[i]).unwrap();
    let mut toks = vec![argmax(e.prefill(&ids, 0).unwrap())];
    let mut steps = Vec::new();
    for _ in 0..STEPS {
        let row = e.decode_batch(&[(seq, *toks.last().unwrap())]).unwrap();
        toks.push(argmax(&row));
        steps.push(row);
    }
    (toks, steps)
}

#[test]
fn gpu_batch_has_no_cross_talk_and_matches_decoding() {
    let Some(ctx) = gpu() else { return };
    let g = GgufFile::open(model_path(&SMOLLM2)).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let cfg = Config::from_gguf(&g).unwrap().with_seqs(4).unwrap();
    let mut m = GpuModel::load_on(ctx, &g, cfg, N_CTX).unwrap();
    let mut results = Vec::new();
    for batching in [Batching::Together, Batching::Apart] {
        m.set_batching(batching);
        results.push(check_no_cross_talk(&mut m, &tok));
    }
    let (together, apart) = (&results[0], &results[1]);
    // Apart is the decoding program itself; together must agree with it up to summation order.
    let mut worst = 0f32;
    for ((t_toks, t_steps), (a_toks, a_steps)) in together.iter().zip(apart) {
        assert_eq!(t_toks, a_toks, "together and apart chose different tokens");
        for (t, a) in t_steps.iter().zip(a_steps) {
            worst = t.iter().zip(a).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        }
    }
    assert!(worst < BATCH_VS_DECODE_TOL, "batched and decoding logits differ by {worst}");
    println!(
        "3 sequences × {STEPS} steps, together and apart: bit-identical alone; together vs apart max |d| {worst:.2e}"
    );
}

#[test]
fn cpu_sequences_keep_their_own_caches() {
    let g = GgufFile::open(model_path(&SMOLLM2)).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let cfg = Config::from_gguf(&g).unwrap().with_seqs(4).unwrap();
    let mut m = CpuModel::load(&g, cfg, N_CTX).unwrap();
    check_no_cross_talk(&mut m, &tok);
}

#[test]
fn a_batch_refuses_what_it_cannot_do() {
    let Some(ctx) = gpu() else { return };
    let g = GgufFile::open(model_path(&SMOLLM2)).unwrap();
    let cfg = Config::from_gguf(&g).unwrap().with_seqs(2).unwrap();
    let mut m = GpuModel::load_on(ctx, &g, cfg, 8).unwrap();
    m.set_batching(Batching::Together);
    let err = |r: lanterna::Result<Vec<f32>>| r.expect_err("must be refused").to_string();
    assert!(err(m.decode_batch(&[(0, 1), (0, 2)])).contains("twice"));
    assert!(err(m.decode_batch(&[(2, 1)])).contains("sequence 2"));
    assert!(err(m.decode_batch(&[])).contains("no tokens"));
    m.select_seq(1).unwrap();
    m.prefill(&[1; 8], 0).unwrap();
    assert!(err(m.decode_batch(&[(0, 1), (1, 1)])).contains("filled its context"));
    assert!(m.select_seq(2).is_err());
}
