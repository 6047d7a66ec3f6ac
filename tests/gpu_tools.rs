//! `lanterna compare` and `lanterna profile`: the comparison passes on the real models
//! and catches a deliberately broken kernel by name; profiling accounts for the token's
//! time, writes a valid Chrome trace, and never changes the tokens.

mod common;

use std::process::Command;

use common::*;
use lanterna::compare::{compare, Tolerances};
use lanterna::cpu::CpuModel;
use lanterna::gguf::GgufFile;
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

fn models_for(m: &RealModel, n_ctx: usize) -> Option<(CpuModel, GpuModel, Tokenizer)> {
    let ctx = gpu()?;
    let g = GgufFile::open(model_path(m)).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    Some((CpuModel::load(&g, cfg.clone(), n_ctx).unwrap(), GpuModel::load_on(ctx, &g, cfg, n_ctx).unwrap(), tok))
}

fn compare_passes(m: &RealModel) {
    let Some((mut cpu, mut gpu, tok)) = models_for(m, 32) else { return };
    let mut seq = tok.encode("The capital of France is").unwrap();
    seq.extend(tok.encode(" Paris, and the capital").unwrap().iter().skip(usize::from(tok.add_bos)));
    let r = compare(&mut cpu, &mut gpu, &seq, Tolerances::default()).unwrap();
    let worst = r.tensors.iter().map(|t| t.nmse).fold(0f64, f64::max);
    println!("{}: {} tensors × {} positions, worst NMSE {worst:.2e}", m.name, r.tensors.len(), seq.len());
    assert!(r.pass, "{}: compare failed at {:?}", m.name, r.first_over.map(|i| &r.tensors[i]));
    assert_eq!(r.tensors.len(), cpu.cfg.n_layer * lanterna::model::CAPTURE_NAMES.len() + 1);
    assert!(r.tensors.iter().all(|t| t.nmse.is_finite() && t.max_abs.is_finite()));
}

#[test]
fn compare_passes_on_smollm2() {
    compare_passes(&SMOLLM2);
}

#[test]
fn compare_passes_on_gemma3() {
    compare_passes(&GEMMA3);
}

#[test]
fn compare_names_a_perturbed_kernel() {
    let Some((mut cpu, mut gpu, tok)) = models_for(&GEMMA3, 16) else { return };
    let seq = tok.encode("The capital of France is").unwrap();
    // Decoding's attention, which also does Gemma 3's q/k norms and RoPE: its output is
    // the first tensor off, and what it rotated (q, k) is still right.
    gpu.perturb("blk.2.attention", 0.25).unwrap();
    let r = compare(&mut cpu, &mut gpu, &seq, Tolerances::default()).unwrap();
    assert!(!r.pass);
    let first = &r.tensors[r.first_over.expect("a perturbed kernel must be found")];
    assert_eq!((first.tensor.as_str(), first.layer), ("attn", Some(2)), "{first:?}");
    // Everything before it is still within tolerance.
    assert!(r.tensors[..r.first_over.unwrap()].iter().all(|t| !t.over));
}

#[test]
fn compare_cli_fails_and_names_the_tensor() {
    if gpu().is_none() {
        return;
    }
    let p = model_path(&SMOLLM2);
    let o = Command::new(env!("CARGO_BIN_EXE_lanterna"))
        .args([
            "compare",
            "-m",
            p.to_str().unwrap(),
            "-p",
            "The capital of France is",
            "-n",
            "2",
            "--perturb",
            "blk.3.ffn_down",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("first over tolerance: ffn_out in layer 3"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| l.starts_with("ffn_out") && l.contains(" 3 ") && l.contains("<-- first over tolerance")),
        "{out}"
    );
}

fn lanterna_json(args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_lanterna")).args(args).output().unwrap();
    assert!(o.status.success(), "lanterna {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn profile_checks(m: &RealModel) {
    if gpu().is_none() {
        return;
    }
    let p = model_path(m);
    let p = p.to_str().unwrap();
    let trace = std::env::temp_dir().join(format!("lanterna-trace-{}-{}.json", m.name, std::process::id()));
    let prompt = "Once upon a time";
    let prof =
        lanterna_json(&["profile", "-m", p, "-p", prompt, "-n", "4", "--json", "--trace", trace.to_str().unwrap()]);
    for phase in ["prefill", "decode"] {
        let ph = &prof[phase];
        let (k, w) = (ph["kernel_ms_per_token"].as_f64().unwrap(), ph["wall_ms_per_token"].as_f64().unwrap());
        println!("{} {phase}: kernels {k:.2} ms, token {w:.2} ms per token", m.name);
        // Durations, not speeds: what holds on any device, however fast or busy.
        assert!(k > 0.0 && w > 0.0, "{} {phase}: kernels {k} ms, token {w} ms", m.name);
        assert!(ph["kernels"].as_array().unwrap().iter().any(|r| r["kernel"].as_str().unwrap().starts_with("matvec_")));
    }

    // The trace is Chrome trace-event JSON: complete events with names, times, durations.
    let t: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let ev = t["traceEvents"].as_array().unwrap();
    let slices: Vec<&Value> = ev.iter().filter(|e| e["ph"] == "X" && e["tid"] == 0).collect();
    assert!(!slices.is_empty());
    for e in &slices {
        assert!(e["name"].is_string() && e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0, "{e}");
    }
    assert!(slices.iter().any(|e| e["name"] == "blk.0.attn_qkv"), "q, k and v are one dispatch");
    assert!(slices.iter().any(|e| e["name"] == "blk.0.ffn_gate_up"), "gate and up are one dispatch");
    assert!(slices.iter().any(|e| e["name"] == "output"));
    let n_tokens = ev.iter().filter(|e| e["ph"] == "X" && e["tid"] == 1).count();
    assert_eq!(n_tokens, prof["prompt_tokens"].as_array().unwrap().len() + 4);
    assert_eq!(slices.len() % n_tokens, 0, "every token has the same passes");
    check_trace_covers_dispatches_and_counts_bytes(m, &slices, n_tokens);
    let _ = std::fs::remove_file(&trace);

    // Profiling never changes the tokens.
    let run = lanterna_json(&[
        "run",
        "-m",
        p,
        "--device",
        "gpu",
        "--temp",
        "0",
        "-n",
        "4",
        "--ignore-eos",
        "--json",
        "-p",
        prompt,
    ]);
    assert_eq!(ids(&run["tokens"]), ids(&prof["tokens"]), "{}: profiled and plain runs differ", m.name);
}

/// The trace has one slice per dispatch of the decoding step, for every token, and each
/// weight-reading kernel reports exactly the bytes of its tensor (from the file's tensor
/// table, `common::ggml_bytes`) plus its f32 input, and its f32 output.
fn check_trace_covers_dispatches_and_counts_bytes(m: &RealModel, slices: &[&Value], n_tokens: usize) {
    let g = GgufFile::open(model_path(m)).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let gm = GpuModel::load_on(gpu().unwrap(), &g, cfg, 64).unwrap();
    let dispatches = gm.programs.decode.dispatches().count();
    assert_eq!(slices.len(), dispatches * n_tokens, "{}: one timed slice per dispatch per token", m.name);
    let tensor = |name: &str| {
        let t = g
            .tensor(&format!("{name}.weight"))
            .or_else(|| (name == "output").then(|| g.tensor("token_embd.weight")).flatten());
        t.unwrap_or_else(|| panic!("no tensor for dispatch {name}"))
    };
    // A tensor past the binding limit is split into parts, one dispatch each: add them up.
    let mut by_name = std::collections::BTreeMap::<(u64, &str), (&str, u64, u64, u64)>::new();
    for e in slices.iter().filter(|e| e["args"]["phase"] == "decode") {
        let key = (e["args"]["token"].as_u64().unwrap(), e["name"].as_str().unwrap());
        let s = by_name.entry(key).or_insert((e["cat"].as_str().unwrap(), 0, 0, 0));
        s.1 += e["args"]["read_bytes"].as_u64().unwrap();
        s.2 += e["args"]["written_bytes"].as_u64().unwrap();
        s.3 += 1;
    }
    let mut checked = 0;
    for (&(_, name), &(kernel, read, written, parts)) in &by_name {
        let (want_read, want_written) = if kernel.starts_with("matvec_qkv") {
            // q, k and v in one dispatch: their three tensors, the shared input once.
            let ts = ["attn_q", "attn_k", "attn_v"].map(|n| tensor(&name.replace("attn_qkv", n)));
            let bytes: u64 = ts.iter().map(|t| ggml_bytes(t.ty, t.dims[0] * t.dims[1])).sum();
            (bytes + ts[0].dims[0] * 4, ts.iter().map(|t| t.dims[1] * 4).sum())
        } else if kernel.starts_with("matvec_gate_up") {
            // gate and up in one dispatch: both tensors, the shared input once, one output.
            let ts = ["ffn_gate", "ffn_up"].map(|n| tensor(&name.replace("ffn_gate_up", n)));
            let bytes: u64 = ts.iter().map(|t| ggml_bytes(t.ty, t.dims[0] * t.dims[1])).sum();
            (bytes + ts[0].dims[0] * 4, ts[0].dims[1] * 4)
        } else if kernel.starts_with("matvec_") {
            let t = tensor(name);
            let (cols, rows) = (t.dims[0], t.dims[1]);
            let (read, written) = (ggml_bytes(t.ty, cols * rows) + parts * cols * 4, rows * 4);
            // A fused activation also reads the gate; a fused residual add reads and writes the stream.
            match kernel.rsplit_once('+').map(|(_, f)| f) {
                Some("glu") => (read + rows * 4, written),
                Some("add") => (read + rows * 4, written + rows * 4),
                _ => (read, written),
            }
        } else if kernel.starts_with("embed_") {
            let t = tensor(name);
            (ggml_bytes(t.ty, t.dims[0]), t.dims[0] * 4)
        } else if kernel == "rms_norm" {
            // The input (as long as the output) and the f32 weights.
            (written + tensor(name).dims[0] * 4, written)
        } else {
            continue;
        };
        // A fused RMS norm also reads its weight and writes the normed input (as wide as
        // the tensor's rows are long), in each part's dispatch.
        let (want_read, want_written) = if kernel.starts_with("matvec_") && kernel.contains("_rms_") {
            let first = name.replace("ffn_gate_up", "ffn_gate").replace("attn_qkv", "attn_q");
            let bytes = parts * tensor(&first).dims[0] * 4;
            (want_read + bytes, want_written + bytes)
        } else {
            (want_read, want_written)
        };
        assert_eq!(
            (read, written),
            (want_read, want_written),
            "{}: {name} ({kernel}, {parts} parts) bytes read, written",
            m.name
        );
        checked += 1;
    }
    assert!(checked > 0);
    println!(
        "{}: {} slices = {dispatches} dispatches × {n_tokens} tokens; {checked} weight-reading slices with exact bytes",
        m.name,
        slices.len()
    );
}

#[test]
fn profile_smollm2() {
    profile_checks(&SMOLLM2);
}

#[test]
fn profile_gemma3() {
    profile_checks(&GEMMA3);
}

/// A model deeper than the ones above: the committed tiny llama with its first layer
/// repeated to 70 layers (two compute passes each). The profiler must give every dispatch
/// of a token its timing, however many passes the step has.
#[test]
fn profile_a_70_layer_model() {
    use lanterna::generate::Executor;
    use lanterna::gguf::{writer::GgufWriter, MetaValue};
    const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf");
    const LAYERS: u32 = 70;
    let mut w = GgufWriter::from_file(&GgufFile::open(TINY).unwrap());
    let first: Vec<_> = w.tensors.iter().filter(|t| t.0.starts_with("blk.0.")).cloned().collect();
    w.tensors.retain(|t| !t.0.starts_with("blk."));
    for il in 0..LAYERS {
        for (name, dims, ty, bytes) in &first {
            w.tensor(&name.replacen("blk.0.", &format!("blk.{il}."), 1), dims, *ty, bytes.clone());
        }
    }
    w.metadata.retain(|(k, _)| k != "llama.block_count");
    w.kv("llama.block_count", MetaValue::U32(LAYERS));
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let Some(ctx) = gpu() else { return };
    let mut m = GpuModel::load_on(ctx, &g, cfg, 16).unwrap();
    m.enable_profiling().unwrap();
    m.forward(1, 0).expect("a profiled step of a 70-layer model");
    let timings = m.take_timings();
    assert_eq!(timings.len(), m.programs.decode.dispatches().count(), "one timing per dispatch");
    assert!(timings.iter().any(|t| t.label == "blk.69.attention"), "the last layer is timed");
}
