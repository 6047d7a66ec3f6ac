//! `lanterna quantize` against llama.cpp's own quantizer: the zoo's llama-spm model exists
//! as F32 and as llama.cpp's `llama-quantize` outputs (Q8_0, and Q4_K_M, whose matrices are
//! Q4_K and Q6_K). Quantizing the F32 weights must give llama.cpp's bytes exactly. Then the
//! command itself: sizes, what Q8_0 and Q4_0 cost in logit error and perplexity, and the
//! Q8_0 file running on the GPU.
//!
//! The zoo models come from `$LANTERNA_ZOO` or `../shared/fixtures/zoo` (as tests/zoo.rs);
//! their absence is a failure (common::missing).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lanterna::cpu::CpuModel;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::quant::quantize::quantize;
use lanterna::quant::{dequantize, GgmlType};
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

fn zoo(file: &str) -> Option<PathBuf> {
    zoo_model("llama-spm", file)
}

/// Every tensor of llama.cpp's file whose type is not F32, re-quantized from the F32 file.
struct Comparison {
    tensors: usize,
    blocks: usize,
    /// Blocks whose bytes differ from llama.cpp's.
    differing: usize,
    /// Σ squared error against the F32 weights: ours, llama.cpp's.
    err_ours: f64,
    err_theirs: f64,
    types: Vec<GgmlType>,
}

fn compare_with_llama_cpp(f32_file: &GgufFile, theirs: &GgufFile) -> Comparison {
    let mut c = Comparison { tensors: 0, blocks: 0, differing: 0, err_ours: 0.0, err_theirs: 0.0, types: Vec::new() };
    for t in &theirs.tensors {
        if t.ty == GgmlType::F32 {
            continue;
        }
        let x = f32_file.dequantize(f32_file.tensor(&t.name).unwrap()).unwrap();
        let ours = quantize(t.ty, &x).unwrap();
        let want = theirs.tensor_data(t);
        assert_eq!(ours.len(), want.len(), "{}", t.name);
        let ts = t.ty.type_size() as usize;
        c.blocks += want.len() / ts;
        c.differing += ours.chunks(ts).zip(want.chunks(ts)).filter(|(a, b)| a != b).count();
        let mut back = vec![0f32; x.len()];
        dequantize(t.ty, &ours, &mut back).unwrap();
        c.err_ours += x.iter().zip(&back).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        c.err_theirs += x.iter().zip(theirs.dequantize(t).unwrap()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        c.tensors += 1;
        if !c.types.contains(&t.ty) {
            c.types.push(t.ty);
        }
    }
    c
}

/// llama.cpp was built with -march=native, where GCC contracts a*b+c into fused
/// multiply-adds; the K-quant scale searches compare sums of such products, so a handful
/// of near-tie blocks can pick the other candidate. At most this fraction of blocks may
/// differ, and the error against the F32 weights must be the same within 0.1%.
const K_QUANT_DIFFERING_BLOCKS: f64 = 0.01;
const K_QUANT_ERROR_REL: f64 = 1e-3;

#[test]
fn quantizers_write_llama_cpps_bytes() {
    let (Some(f32p), Some(q8p), Some(q4kp)) =
        (zoo("llama-spm-F32.gguf"), zoo("llama-spm-Q8_0.gguf"), zoo("llama-spm-Q4_K_M.gguf"))
    else {
        return;
    };
    let f = GgufFile::open(f32p).unwrap();
    for p in [q8p, q4kp] {
        let c = compare_with_llama_cpp(&f, &GgufFile::open(&p).unwrap());
        println!(
            "{}: {} tensors ({:?}), {} of {} blocks differ from llama.cpp's; squared error vs F32: ours {:.6e}, llama.cpp {:.6e}",
            p.display(),
            c.tensors,
            c.types,
            c.differing,
            c.blocks,
            c.err_ours,
            c.err_theirs
        );
        assert!(c.tensors > 0);
        if c.types == [GgmlType::Q8_0] {
            // No scale search: every byte must match.
            assert_eq!(c.differing, 0);
        } else {
            assert!(
                (c.differing as f64) < K_QUANT_DIFFERING_BLOCKS * c.blocks as f64,
                "{} of {} blocks",
                c.differing,
                c.blocks
            );
            assert!((c.err_ours - c.err_theirs).abs() < K_QUANT_ERROR_REL * c.err_theirs);
        }
    }
}

fn lanterna(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lanterna")).args(args).output().unwrap()
}

/// Last-prompt logits and greedy tokens of a file on the CPU reference path.
fn logits_of(path: &Path, prompt: &str) -> Vec<f32> {
    let g = GgufFile::open(path).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let mut m = CpuModel::load(&g, cfg, 64).unwrap();
    m.prefill(&tok.encode(prompt).unwrap(), 0).unwrap().to_vec()
}

#[test]
fn quantize_command_sizes_costs_and_gpu_run() {
    let Some(f32p) = zoo("llama-spm-F32.gguf") else { return };
    let dir = std::env::temp_dir().join(format!("lanterna-quantize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prompt = "The quick brown fox";
    let base_logits = logits_of(&f32p, prompt);
    let mut errors = Vec::new();
    let f32_size = std::fs::metadata(&f32p).unwrap().len() as f64;
    for (ty, name) in [(GgmlType::Q8_0, "q8_0"), (GgmlType::Q4_0, "q4_0")] {
        let out = dir.join(format!("llama-spm-{name}.gguf"));
        let o = lanterna(&["quantize", f32p.to_str().unwrap(), out.to_str().unwrap(), "--type", name]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains(&format!("{0}/{0}", GgufFile::open(&f32p).unwrap().tensors.len())),
            "progress bar reaches the end"
        );
        let g = GgufFile::open(&out).unwrap();
        for t in &g.tensors {
            let want = if t.dims.iter().skip(1).any(|&d| d > 1) { ty } else { GgmlType::F32 };
            assert_eq!(t.ty, want, "{}", t.name);
        }
        let size = std::fs::metadata(&out).unwrap().len() as f64;
        let logits = logits_of(&out, prompt);
        let max_d = base_logits.iter().zip(&logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let n = nmse(&logits, &base_logits);
        println!(
            "{name}: {:.1}% of the F32 file; last-prompt logits vs F32: max |d| {max_d:.4}, NMSE {n:.2e}",
            100.0 * size / f32_size
        );
        errors.push(n);
        // Sizes follow from the block layouts: 34 bytes per 32 weights for Q8_0 (26.6% of
        // f32), 18 for Q4_0 (14.1%), plus F32 norms and metadata.
        let expect = ty.type_size() as f64 / ty.block_size() as f64 / 4.0;
        assert!(size / f32_size > expect && size / f32_size < expect + 0.01, "{name}: {size} bytes");
        // 8-bit weights are within 1/254 of their block's largest; through this model's two
        // random layers that measured 6.9e-4 NMSE: ten times that flags a broken path.
        if ty == GgmlType::Q8_0 {
            assert!(n < 7e-3, "{name}: logits NMSE {n}");
        }
        if ty == GgmlType::Q8_0 && gpu().is_some() {
            let run_on = |device: &str| -> Value {
                let path = out.to_str().unwrap();
                let args = [
                    "run",
                    "-m",
                    path,
                    "--device",
                    device,
                    "--temp",
                    "0",
                    "-n",
                    "8",
                    "--ignore-eos",
                    "--json",
                    "-p",
                    prompt,
                ];
                let o = lanterna(&args);
                assert!(o.status.success(), "{device}: {}", String::from_utf8_lossy(&o.stderr));
                serde_json::from_slice(&o.stdout).unwrap()
            };
            let (gpu_run, cpu_run) = (run_on("gpu"), run_on("cpu"));
            assert_eq!(gpu_run["tokens"], cpu_run["tokens"], "the quantized file on the GPU follows the CPU path");
            println!("q8_0 on the GPU: {} tokens, same as the CPU: {}", ids(&gpu_run["tokens"]).len(), gpu_run["text"]);
        }
    }
    // Fewer bits cost more.
    assert!(errors[1] > errors[0], "Q4_0 error {} should exceed Q8_0's {}", errors[1], errors[0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn quantizing_a_quantized_file_needs_the_flag() {
    let q = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf");
    let out = std::env::temp_dir().join(format!("lanterna-requant-{}.gguf", std::process::id()));
    let o = lanterna(&["quantize", q, out.to_str().unwrap(), "--type", "q8_0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("is already Q") && err.contains("--allow-requantize"), "{err}");
    assert!(!out.exists(), "nothing is written on failure");
    let o = lanterna(&["quantize", q, out.to_str().unwrap(), "--type", "q8_0", "--allow-requantize"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("warning") && err.contains("requantized from Q"), "{err}");
    assert!(GgufFile::open(&out).unwrap().tensors.iter().any(|t| t.ty == GgmlType::Q8_0));
    std::fs::remove_file(&out).ok();
}

/// `general.file_type` for every type, against llama.h's `enum llama_ftype` written out
/// here: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q2_K 10,
/// Q3_K_S 11, Q4_K_S 14, Q5_K_S 16, Q6_K 18, BF16 32 (the `_S` K-quant variants are the
/// ones "mostly" of their type). The quantized file carries it.
#[test]
fn file_type_follows_llama_h() {
    use lanterna::requantize::file_type;
    let want = [
        (GgmlType::F32, 0),
        (GgmlType::F16, 1),
        (GgmlType::Q4_0, 2),
        (GgmlType::Q4_1, 3),
        (GgmlType::Q8_0, 7),
        (GgmlType::Q5_0, 8),
        (GgmlType::Q5_1, 9),
        (GgmlType::Q2K, 10),
        (GgmlType::Q3K, 11),
        (GgmlType::Q4K, 14),
        (GgmlType::Q5K, 16),
        (GgmlType::Q6K, 18),
        (GgmlType::BF16, 32),
    ];
    for (ty, ftype) in want {
        assert_eq!(file_type(ty), ftype, "{ty}");
    }
    let g = GgufFile::from_bytes(fallback_sample().to_bytes()).unwrap();
    for ty in lanterna::quant::quantize::QUANTIZE_TYPES {
        let w = lanterna::requantize::quantize_model(&g, ty, false, |_, _, _| {}).unwrap();
        let out = GgufFile::from_bytes(w.to_bytes()).unwrap();
        assert_eq!(out.get("general.file_type"), Some(&lanterna::gguf::MetaValue::U32(file_type(ty))), "{ty}");
    }
}

/// Matrices whose rows are 512, 96 (whole 32-blocks, not 256-blocks) and 40 (neither)
/// weights wide, and a vector.
fn fallback_sample() -> lanterna::gguf::writer::GgufWriter {
    let mut w =
        lanterna::gguf::writer::GgufWriter { version: 3, alignment: 32, metadata: Vec::new(), tensors: Vec::new() };
    w.kv("general.architecture", lanterna::gguf::MetaValue::String("llama".into()));
    for (name, cols) in [("wide.weight", 512u64), ("k32.weight", 96), ("odd.weight", 40)] {
        w.tensor_f32(name, &[cols, 3], &rand_f32(cols as usize * 3, cols));
    }
    w.tensor_f32("norm.weight", &[96], &rand_f32(96, 7));
    w
}

/// llama.cpp's fallbacks (llama-quant.cpp, `convert_incompatible_tensor`) where a row is not
/// a whole number of the target's blocks: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and F16
/// when even that does not divide the row; vectors stay F32.
#[test]
fn rows_that_are_not_whole_blocks_fall_back_as_llama_cpp() {
    use GgmlType::*;
    let g = GgufFile::from_bytes(fallback_sample().to_bytes()).unwrap();
    // (target, wide, k32, odd)
    let want = [
        (Q8_0, Q8_0, Q8_0, F16),
        (Q4_0, Q4_0, Q4_0, F16),
        (Q4_1, Q4_1, Q4_1, F16),
        (Q5_0, Q5_0, Q5_0, F16),
        (Q5_1, Q5_1, Q5_1, F16),
        (Q4K, Q4K, Q5_0, F16),
        (Q5K, Q5K, Q5_1, F16),
        (Q6K, Q6K, Q8_0, F16),
    ];
    for (target, wide, k32, odd) in want {
        let mut notes = Vec::new();
        let w = lanterna::requantize::quantize_model(&g, target, false, |_, _, r| {
            notes.push((r.name.clone(), r.note.clone()))
        })
        .unwrap();
        let out = GgufFile::from_bytes(w.to_bytes()).unwrap();
        let ty = |n: &str| out.tensor(n).unwrap().ty;
        assert_eq!(
            (ty("wide.weight"), ty("k32.weight"), ty("odd.weight"), ty("norm.weight")),
            (wide, k32, odd, F32),
            "target {target}"
        );
        // The fallback is reported, and the values survive it.
        let noted = |n: &str| {
            notes.iter().any(|(name, note)| name == n && note.as_deref().is_some_and(|s| s.contains("not whole")))
        };
        assert_eq!(noted("k32.weight"), k32 != target, "{target}");
        assert!(noted("odd.weight"));
        let (a, b) = (
            g.dequantize(g.tensor("odd.weight").unwrap()).unwrap(),
            out.dequantize(out.tensor("odd.weight").unwrap()).unwrap(),
        );
        assert!(nmse(&b, &a) < 1e-6, "F16 keeps 11 bits: {target}");
    }
}
