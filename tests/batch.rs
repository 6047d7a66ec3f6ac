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
use lanterna::gpu::buffers::{copy_within, f32_buffer, f32_buffer_init, read_f32};
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

/// SmolLM2, its tokenizer, and a configuration of 4 sequences.
fn smollm2_with_4_seqs() -> (GgufFile, Tokenizer, Config) {
    let g = GgufFile::open(model_path(&SMOLLM2)).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let cfg = Config::from_gguf(&g).unwrap().with_seqs(4).unwrap();
    (g, tok, cfg)
}

#[test]
fn gpu_batch_has_no_cross_talk_and_matches_decoding() {
    let Some(ctx) = gpu() else { return };
    let (g, tok, cfg) = smollm2_with_4_seqs();
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
    let (g, tok, cfg) = smollm2_with_4_seqs();
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

/// A prompt whose first positions are copied from another sequence's cache (the server's
/// shared system prompt) gets the logits it gets computed from scratch, bit for bit, and
/// the sequence copied from goes on as if nothing had happened.
fn check_copied_prefix(e: &mut dyn Executor, tok: &Tokenizer) {
    let a = tok.encode(PROMPTS[2]).unwrap();
    let shared = 5;
    let mut b = a[..shared].to_vec();
    b.extend(tok.encode(" a dragon who loved").unwrap());
    assert_ne!(b[shared], a[shared], "the prompts must part after the shared positions");
    e.select_seq(0).unwrap();
    e.reset();
    let a_next = argmax(e.prefill(&a, 0).unwrap());
    e.select_seq(2).unwrap();
    e.reset();
    let want = e.prefill(&b, 0).unwrap().to_vec();

    e.select_seq(1).unwrap();
    e.reset();
    e.copy_prefix(0, shared).unwrap();
    assert_eq!(e.n_pos(), shared);
    let got = e.prefill(&b[shared..], shared).unwrap().to_vec();
    assert!(got == want, "logits after a copied prefix differ from those computed from scratch");

    let after_copy = e.decode_batch(&[(0, a_next)]).unwrap();
    e.select_seq(3).unwrap();
    e.reset();
    e.prefill(&a, 0).unwrap();
    assert!(e.decode_batch(&[(3, a_next)]).unwrap() == after_copy, "the copy disturbed sequence 0");

    e.select_seq(1).unwrap();
    let err = e.copy_prefix(0, a.len() + 2).expect_err("more than sequence 0 holds").to_string();
    assert!(err.contains("cannot copy"), "{err}");
    assert!(e.copy_prefix(4, 1).expect_err("no sequence 4").to_string().contains("sequence 4"));
}

#[test]
fn gpu_copied_prefix_equals_computed() {
    let Some(ctx) = gpu() else { return };
    let (g, tok, cfg) = smollm2_with_4_seqs();
    let mut m = GpuModel::load_on(ctx, &g, cfg, N_CTX).unwrap();
    check_copied_prefix(&mut m, &tok);
}

#[test]
fn cpu_copied_prefix_equals_computed() {
    let (g, tok, cfg) = smollm2_with_4_seqs();
    let mut m = CpuModel::load(&g, cfg, N_CTX).unwrap();
    check_copied_prefix(&mut m, &tok);
}

/// The cache copy goes through a scratch buffer a piece at a time (a long shared prefix
/// outgrows the chunk buffer): here 40 words in pieces of 7, so every piece boundary and
/// the short last piece are crossed; the words around the destination stay as they were.
#[test]
fn copy_within_moves_every_piece() {
    let Some(ctx) = gpu() else { return };
    let data: Vec<f32> = (0..101).map(|i| i as f32).collect();
    let buf = f32_buffer_init(&ctx, "buf", &data);
    let scratch = f32_buffer(&ctx, "scratch", 7);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    copy_within(&mut enc, &buf, 4 * 3, 4 * 55, 4 * 40, &scratch);
    ctx.submit(enc.finish(), "the copy").unwrap();
    let mut want = data.clone();
    want.copy_within(3..43, 55);
    assert_eq!(read_f32(&ctx, &buf, 101).unwrap(), want);
}
