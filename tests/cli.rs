//! The acceptance commands themselves, run as a user runs them: `lanterna tokenize`,
//! `lanterna run --device cpu --temp 0 -n 32 --ignore-eos --json`, and bad files.

mod common;

use std::process::{Command, Output};

use common::*;
use lanterna::gguf::writer::GgufWriter;
use lanterna::gguf::MetaValue;
use lanterna::gpu::kernels::{AdapterClass, MatvecShape};
use serde_json::Value;

/// See tests/llamacpp_cpu.rs: below this reference margin greedy paths may part.
const MIN_MARGIN: f32 = 0.25;

fn lanterna(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanterna")).args(args).output().expect("run lanterna")
}

fn json_out(args: &[&str]) -> Value {
    let o = lanterna(args);
    assert!(o.status.success(), "lanterna {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("lanterna {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn check_cli(m: &RealModel) {
    let path = model_path(m);
    let path = path.to_str().unwrap();
    let exact = fixture(m, "dequant_f32");
    for (pid, text, want_ids, p) in prompts(&exact) {
        let t = json_out(&["tokenize", "-m", path, "--json", &text]);
        assert_eq!(ids(&t["ids"]), want_ids, "{} {pid}: tokenize", m.name);
        assert_eq!(t["pieces"].as_array().unwrap().len(), want_ids.len());

        let r = json_out(&[
            "run",
            "-m",
            path,
            "--device",
            "cpu",
            "--temp",
            "0",
            "-n",
            "32",
            "--ignore-eos",
            "--json",
            "-p",
            &text,
        ]);
        assert_eq!(ids(&r["prompt_tokens"]), want_ids, "{} {pid}: run's prompt tokens", m.name);
        let got = ids(&r["tokens"]);
        assert_eq!(got.len(), 32);
        assert_eq!(r["stop"], "length");
        assert!(r["device"].as_str().unwrap().contains("cpu"));
        assert!(r["timings"]["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["text"].as_str().is_some());
        let need = required_prefix(&floats(&p["step_margins"]), MIN_MARGIN);
        let same = common_prefix(&got, &ids(&p["greedy_ids"]));
        assert!(same >= need, "{} {pid}: run follows llama.cpp for {same} tokens, {need} required", m.name);
    }
    for t in exact["tokenize_only"].as_array().unwrap() {
        let text = t["text"].as_str().unwrap();
        let out = json_out(&["tokenize", "-m", path, "--json", text]);
        assert_eq!(ids(&out["ids"]), ids(&t["ids"]), "{}: tokenize {text:?}", m.name);
    }
}

#[test]
fn smollm2_cli_matches_llamacpp() {
    check_cli(&SMOLLM2);
}

#[test]
fn gemma3_cli_matches_llamacpp() {
    check_cli(&GEMMA3);
}

#[test]
fn eos_stops_generation_unless_ignored() {
    // SmolLM2 greedy on P1 emits <|im_end|> (its EOS) at step 29 in llama.cpp's run.
    let path = model_path(&SMOLLM2);
    let p = path.to_str().unwrap();
    let r = json_out(&[
        "run",
        "-m",
        p,
        "--device",
        "cpu",
        "--temp",
        "0",
        "-n",
        "40",
        "--json",
        "-p",
        "The capital of France is",
    ]);
    let toks = ids(&r["tokens"]);
    assert_eq!(r["stop"], "eos");
    assert_eq!(*toks.last().unwrap(), 2, "stopped on <|im_end|>");
    assert!(toks.len() < 40);
}

#[test]
fn same_seed_same_tokens() {
    let path = model_path(&SMOLLM2);
    let p = path.to_str().unwrap();
    let args = [
        "run",
        "-m",
        p,
        "--device",
        "cpu",
        "--temp",
        "1.0",
        "--seed",
        "1234",
        "-n",
        "12",
        "--ignore-eos",
        "--json",
        "-p",
        "Once upon a time",
    ];
    let a = ids(&json_out(&args)["tokens"]);
    let b = ids(&json_out(&args)["tokens"]);
    assert_eq!(a, b);
    let mut other = args;
    other[8] = "99";
    let c = ids(&json_out(&other)["tokens"]);
    assert_ne!(a, c, "a different seed should (with overwhelming likelihood) give different tokens at temperature 1");
}

fn assert_clean_failure(args: &[&str], must_mention: &str) {
    let o = lanterna(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "lanterna {args:?} succeeded");
    assert!(!err.contains("panicked"), "lanterna {args:?} panicked: {err}");
    assert!(err.lines().any(|l| l.starts_with("error: ") && l.contains(must_mention)), "lanterna {args:?}: {err}");
}

fn tiny_file(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("lanterna-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn small_gguf() -> GgufWriter {
    let mut w = GgufWriter::default();
    w.kv("general.architecture", MetaValue::String("llama".into()));
    w.tensor_f32("token_embd.weight", &[4, 3], &[0.5; 12]);
    w
}

#[test]
fn bad_files_exit_nonzero_with_a_message() {
    let mut b = small_gguf().to_bytes();
    b[0] = b'X';
    let p = tiny_file("magic.gguf", &b);
    for cmd in ["info", "tokenize"] {
        let mut args = vec![cmd, "-m", &p];
        if cmd == "tokenize" {
            args.push("hi");
        }
        assert_clean_failure(&args, "not a GGUF file");
    }
    assert_clean_failure(&["run", "-m", &p, "-p", "hi"], "not a GGUF file");

    let (b, table_at, _) = small_gguf().to_bytes_with_layout();
    let p = tiny_file("table.gguf", &b[..table_at + 10]);
    assert_clean_failure(&["info", "-m", &p], "truncated");

    let mut w = small_gguf();
    w.tensors[0].1 = vec![4, 3000];
    let p = tiny_file("past-end.gguf", &w.to_bytes());
    assert_clean_failure(&["info", "-m", &p], "past the end of the file");

    let p = tiny_file("empty.gguf", b"");
    assert_clean_failure(&["info", "-m", &p], "magic");

    let mut w = small_gguf();
    w.metadata[0].1 = MetaValue::String("mamba".into());
    let p = tiny_file("arch.gguf", &w.to_bytes());
    assert_clean_failure(
        &["info", "-m", &p],
        "not supported (supported: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3)",
    );
}

#[test]
fn prompt_longer_than_context_is_refused() {
    let path = model_path(&SMOLLM2);
    let p = path.to_str().unwrap();
    assert_clean_failure(
        &["run", "-m", p, "--device", "cpu", "--ctx", "8", "-n", "4", "-p", "one two three four five six"],
        "context holds 8",
    );
}

#[test]
fn devices_lists_the_adapter() {
    let Some(ctx) = gpu() else { return };
    let o = lanterna(&["devices"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("[0]") && out.contains("max storage binding") && out.contains("features:"), "{out}");
    let name = ctx.adapter.get_info().name;
    assert!(out.contains(&name), "the tests' adapter {name} is not listed:\n{out}");
}

#[test]
fn run_on_the_gpu_as_a_user_does() {
    if gpu().is_none() {
        return;
    }
    let path = model_path(&SMOLLM2);
    let exact = fixture(&SMOLLM2, "dequant_f32");
    let (_, text, want_ids, p) = prompts(&exact).into_iter().next().unwrap();
    let r = json_out(&[
        "run",
        "-m",
        path.to_str().unwrap(),
        "--device",
        "gpu",
        "--temp",
        "0",
        "-n",
        "32",
        "--ignore-eos",
        "--json",
        "-p",
        &text,
    ]);
    assert!(r["device"].as_str().unwrap().starts_with("gpu: "), "{}", r["device"]);
    assert_eq!(ids(&r["prompt_tokens"]), want_ids);
    let need = required_prefix(&floats(&p["step_margins"]), MIN_MARGIN);
    assert!(common_prefix(&ids(&r["tokens"]), &ids(&p["greedy_ids"])) >= need);
    assert!(r["timings"]["decode_tokens_per_s"].as_f64().unwrap() > 0.0);

    // Streaming mode prints the decode rate and the upload on stderr.
    let o = lanterna(&["run", "-m", path.to_str().unwrap(), "--device", "gpu", "--temp", "0", "-n", "4", "-p", &text]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("uploaded") && err.contains("MiB of weights"), "{err}");
    assert!(err.contains("decode") && err.contains("tokens/s"), "{err}");
}

#[test]
fn bench_reports_llama_bench_columns_in_md_and_json() {
    if gpu().is_none() {
        return;
    }
    let path = model_path(&SMOLLM2);
    let path = path.to_str().unwrap();
    // Short tests keep this quick on lavapipe; the figures themselves are not asserted.
    let args = ["bench", "-m", path, "-p", "9", "-n", "3", "-r", "2", "--device", "gpu"];
    let v = json_out(&[&args[..], &["-o", "json"]].concat());
    let rows = v.as_array().expect("an array of tests");
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp9", "tg3"]);
    for r in rows {
        let (mean, median) = (r["tokens_per_s"].as_f64().unwrap(), r["median_tokens_per_s"].as_f64().unwrap());
        assert!(mean > 0.0 && median > 0.0 && r["sd"].as_f64().unwrap() >= 0.0, "{r}");
        assert_eq!(r["reps"], 2);
        assert!(r["backend"].as_str().unwrap().starts_with("gpu: "), "{r}");
        assert!(r["params"].as_u64().unwrap() > 100_000_000, "{r}");
    }
    // Decode rows carry the weight bytes read per token and the rate they imply.
    let tg = &rows[1];
    let bytes = tg["weight_bytes_per_token"].as_f64().unwrap();
    let want = weight_bytes_per_token(&lanterna::gguf::GgufFile::open(path).unwrap());
    assert_eq!(bytes as u64, want, "weight bytes per token against the file's tensor table (tied LM head)");
    let gbs = tg["gb_per_s"].as_f64().unwrap();
    assert!((gbs - bytes * tg["tokens_per_s"].as_f64().unwrap() / 1e9).abs() < 1e-9 * bytes.max(1.0), "{tg}");
    assert!(rows[0]["weight_bytes_per_token"].is_null());

    let o = lanterna(&[&args[..], &["-o", "md"]].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("| model | size | params | backend | test | t/s |"), "{out}");
    assert_eq!(lines.len(), 4, "header, rule and one row per test:\n{out}");
    assert!(lines[2].contains("| pp9 |") && lines[3].contains("| tg3 |"), "{out}");
}

/// `--against`: both devices' rows for every test, their repetitions taken in turns, and
/// the first device's rows carrying the median of the paired repetitions' rate ratios.
#[test]
fn bench_against_a_second_device_pairs_its_repetitions() {
    if gpu().is_none() {
        return;
    }
    let path = model_path(&SMOLLM2);
    let args = ["bench", "-m", path.to_str().unwrap(), "-p", "7", "-n", "3", "-r", "3", "--device", "gpu"];
    let v = json_out(&[&args[..], &["--against", "cpu", "-o", "json"]].concat());
    let rows = v.as_array().expect("an array of rows");
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp7", "pp7", "tg3", "tg3"]);
    let rates =
        |r: &Value| -> Vec<f64> { r["rates"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    for pair in rows.chunks(2) {
        let (gpu, cpu) = (&pair[0], &pair[1]);
        assert!(gpu["backend"].as_str().unwrap().starts_with("gpu: "), "{gpu}");
        assert!(cpu["backend"].as_str().unwrap().starts_with("cpu"), "{cpu}");
        assert!(cpu["against"].is_null(), "only the first device's rows carry the ratio: {cpu}");
        let (a, b) = (rates(gpu), rates(cpu));
        assert_eq!((a.len(), b.len()), (3, 3), "{gpu} {cpu}");
        // Three paired ratios: their median is the middle one, whatever the machine's speed.
        let mut r: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        r.sort_by(f64::total_cmp);
        let q = &gpu["against"];
        assert_eq!(q["backend"], cpu["backend"], "{q}");
        for (key, want) in [("ratio_min", r[0]), ("ratio_median", r[1]), ("ratio_max", r[2])] {
            assert!((q[key].as_f64().unwrap() - want).abs() <= 1e-12 * want, "{key}: {q} against {r:?}");
        }
        let mean = a.iter().sum::<f64>() / 3.0;
        assert!((gpu["tokens_per_s"].as_f64().unwrap() - mean).abs() <= 1e-9 * mean, "the mean of its rates: {gpu}");
    }

    let o = lanterna(&[&args[..], &["--against", "cpu"]].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2 + 4 + 1 + 2 + 2, "rows of both devices, then a table of the ratios:\n{out}");
    assert!(lines[7].starts_with("| test | backend | against | rate ratio"), "{out}");
    assert!(lines[9].starts_with("| pp7 | gpu: ") && lines[10].starts_with("| tg3 | gpu: "), "{out}");
}

/// An untied model (its own `output.weight`): the embedding table costs one row per token.
#[test]
fn bench_bytes_per_token_follow_the_tensor_table_when_untied() {
    if gpu().is_none() {
        return;
    }
    let v = json_out(&["bench", "-m", TINY, "-p", "5", "-n", "2", "-r", "1", "-o", "json", "--device", "gpu"]);
    let tg = &v.as_array().unwrap()[1];
    let g = lanterna::gguf::GgufFile::open(TINY).unwrap();
    assert!(g.tensor("output.weight").is_some());
    assert_eq!(tg["weight_bytes_per_token"].as_u64(), Some(weight_bytes_per_token(&g)), "{tg}");
}

#[test]
fn info_shows_the_memory_plan_and_whether_it_fits() {
    let path = model_path(&SMOLLM2);
    let p = path.to_str().unwrap();
    let o = lanterna(&["info", "-m", p, "--ctx", "1024"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in ["GPU memory plan (context 1024", "weights Q4_1", "weights Q8_0", "KV cache", "activations", "total"] {
        assert!(out.contains(want), "{want}: {out}");
    }
    if gpu().is_none() {
        return;
    }
    assert!(out.lines().any(|l| l.starts_with("verdict:") && l.contains("fits (")), "{out}");
    // A context no adapter holds in one buffer: the verdict says so and names a context that fits.
    let o = lanterna(&["info", "-m", p, "--ctx", "100000000"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let verdict = out.lines().find(|l| l.starts_with("verdict:")).unwrap_or_else(|| panic!("{out}"));
    assert!(verdict.contains("does not fit") && verdict.contains("try --ctx"), "{verdict}");
}

#[test]
fn plan_answers_the_seed_question_in_one_line() {
    let o = lanterna(&["plan", "--params", "175B"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    // 175e9 × 2 bytes: GPT-3 in FP16 is 350 GB of weights.
    assert_eq!(out.lines().next(), Some("175.00 B parameters in F16: 350.0 GB of weights alone"));
    assert!(out.contains("| F32 | 32.00 | 700.0 GB | 875.0 GB |"), "{out}");
    let o = lanterna(&["plan", "--params", "7B", "--ctx", "4096"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--layers"));
}

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf");

/// `lanterna run` on the committed tiny model with extra environment variables.
fn run_tiny(device: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lanterna"));
    c.args(["run", "-m", TINY, "--device", device, "--temp", "0", "-n", "4", "--ignore-eos", "--json", "-p", "Hello"])
        .args(extra);
    c.env_remove("LANTERNA_BACKEND").env_remove("LANTERNA_ADAPTER");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run lanterna")
}

fn device_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["device"].as_str().unwrap().to_string()
}

/// Vulkan and EGL loaders pointed at nothing: no adapter on any backend.
const NO_ADAPTER: [(&str, &str); 2] =
    [("VK_ICD_FILENAMES", "/nonexistent.json"), ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json")];

/// The decode rates `--device auto` printed: (software adapter's, CPU reference's).
fn auto_rates(stderr: &str) -> (f64, f64) {
    let line = stderr.lines().find(|l| l.contains("decodes this model at")).unwrap_or_else(|| panic!("{stderr}"));
    let num = |after: &str| -> f64 {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap().parse().unwrap()
    };
    (num("decodes this model at "), num("the CPU reference at "))
}

/// `--device auto`: a real GPU at once, untimed; on a software adapter the faster of it
/// and the CPU reference, timed on first use and cached, and a cache that says otherwise
/// decides; no adapter: the CPU.
#[test]
fn device_auto_takes_a_gpu_or_the_faster_of_a_software_adapter_and_the_cpu() {
    let Some(ctx) = gpu() else { return };
    if ctx.info.device_type != wgpu::DeviceType::Cpu {
        let o = run_tiny("auto", &[], &[]);
        assert!(!String::from_utf8_lossy(&o.stderr).contains("software adapter"));
        assert!(device_of(&o).starts_with("gpu: "));
        return;
    }
    let dir = std::env::temp_dir().join(format!("lanterna-auto-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.join("tune.json");
    let env = [("LANTERNA_TUNE_CACHE", cache.to_str().unwrap())];
    for (run, how) in [(1, "measured now"), (2, "cached in")] {
        let o = run_tiny("auto", &[], &env);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let (gpu_rate, cpu_rate) = auto_rates(&err);
        assert!(err.contains(how), "run {run}: {err}");
        let device = device_of(&o);
        assert_eq!(
            device.starts_with("gpu: "),
            gpu_rate >= cpu_rate,
            "run {run}: {device} at {gpu_rate} vs {cpu_rate}"
        );
    }
    // The cache decides both ways.
    let g = lanterna::gguf::GgufFile::open(TINY).unwrap();
    let (adapter, model) = (lanterna::auto::adapter_key(&ctx.info), lanterna::auto::model_key(&g));
    for (gpu_rate, cpu_rate, want) in [(50.0, 10.0, "gpu: "), (10.0, 50.0, "cpu")] {
        let rates = serde_json::json!({ &adapter: { &model: { "gpu": gpu_rate, "cpu": cpu_rate } } });
        std::fs::write(dir.join("tune.auto.json"), rates.to_string()).unwrap();
        let device = device_of(&run_tiny("auto", &[], &env));
        assert!(device.starts_with(want), "cache {gpu_rate} vs {cpu_rate}: ran on {device}");
    }
    let _ = std::fs::remove_dir_all(&dir);

    let o = run_tiny("auto", &[], &NO_ADAPTER);
    assert_eq!(device_of(&o), "cpu (f32 reference)");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no GPU adapter found; running on the CPU reference path"));

    // Asking for the GPU outright never falls back.
    let o = run_tiny("gpu", &[], &NO_ADAPTER);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("no GPU adapter found"), "{err}");
}

#[test]
fn backend_and_adapter_come_from_flags_or_the_environment() {
    let Some(ctx) = gpu() else { return };
    let backend = format!("{:?}", ctx.info.backend).to_lowercase();
    let other = if backend == "vulkan" { "dx12" } else { "vulkan" };
    // The environment picks a backend that has no adapter here: the GPU run fails…
    let o = run_tiny("gpu", &[], &[("LANTERNA_BACKEND", other)]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("no GPU adapter found"),
        "LANTERNA_BACKEND={other}"
    );
    // …and the flag overrides it.
    assert!(device_of(&run_tiny("gpu", &["--backend", &backend], &[("LANTERNA_BACKEND", other)])).starts_with("gpu: "));
    let o = run_tiny("gpu", &[], &[("LANTERNA_BACKEND", "bogus")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown backend 'bogus'"));

    // Adapter index: 0 exists, one past the list does not, and a non-number is refused.
    let n = lanterna::gpu::context::adapters(wgpu::Backends::all()).len();
    assert!(device_of(&run_tiny("gpu", &[], &[("LANTERNA_ADAPTER", "0")])).starts_with("gpu: "));
    let o = run_tiny("gpu", &[], &[("LANTERNA_ADAPTER", &n.to_string())]);
    assert!(!o.status.success(), "adapter {n} of {n} should not exist");
    let o = run_tiny("gpu", &[], &[("LANTERNA_ADAPTER", "first")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("LANTERNA_ADAPTER='first' is not an adapter index"));
    // The flag wins over the variable.
    assert!(device_of(&run_tiny("gpu", &["--adapter", "0"], &[("LANTERNA_ADAPTER", "first")])).starts_with("gpu: "));
}

/// Two candidates for the tuner test: the CPU class's default and one more. Each
/// candidate is pipelines lavapipe compiles at first use (seconds each for Q6_K), so the
/// test times two rather than the class's six.
const TEST_SHAPES: &str = "16/1/8,16/1/16";

/// `lanterna` on the committed tiny model with its own tuning cache, tuning allowed.
fn with_tune_cache(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanterna"))
        .args(args)
        .env_remove("LANTERNA_NO_TUNE")
        .env("LANTERNA_TUNE_CACHE", cache)
        .env("LANTERNA_TUNE_SHAPES", TEST_SHAPES)
        .output()
        .expect("run lanterna")
}

fn greedy_tokens(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["tokens"].as_array().expect("tokens").clone()
}

/// `lanterna tune` caches one shape per matrix the model decodes with, each one the tuner
/// could pick (from the candidates `LANTERNA_TUNE_SHAPES` names, or the default); a run finds the cache and says so, a run with an empty cache tunes first,
/// and all give the tokens the default shapes give (`--no-tune`).
#[test]
fn tune_caches_a_shape_per_matrix_and_runs_use_it() {
    let Some(ctx) = gpu() else { return };
    let dir = std::env::temp_dir().join(format!("lanterna-tune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("tune.json");
    // The tiny model in Q8_0: its decoders compile in about a second, the K-quants' in up
    // to ten, and a cold CI machine compiles every candidate's pipelines.
    let q8 = dir.join("tiny-q8_0.gguf");
    let model = q8.to_str().unwrap();
    let o = lanterna(&["quantize", TINY, model, "--type", "q8_0", "--allow-requantize"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = with_tune_cache(&["tune", "-m", model, "--steps", "1"], &cache);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    let rows = table.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| matrix")).count();
    let saved: Value = serde_json::from_slice(&std::fs::read(&cache).expect("the cache file")).unwrap();
    let adapters = saved.as_object().unwrap();
    assert_eq!(adapters.len(), 1, "{saved}");
    let (adapter, shapes) = adapters.iter().next().unwrap();
    assert!(adapter.starts_with(&ctx.info.name), "{adapter}");
    let shapes = shapes.as_object().unwrap();
    // q+k+v fused, attn_output, ffn gate/up, ffn_down, the LM head: at least four matrices.
    assert!(shapes.len() >= 4 && shapes.len() == rows, "{table}\n{saved}");
    let class = if adapter.ends_with("cpu class") { AdapterClass::Cpu } else { AdapterClass::Gpu };
    std::env::set_var("LANTERNA_TUNE_SHAPES", TEST_SHAPES);
    let mut allowed = lanterna::gpu::tune::candidates_from_env(class).unwrap();
    allowed.push(MatvecShape::default_for(class));
    for (key, s) in shapes {
        let s: MatvecShape = serde_json::from_value(s.clone()).unwrap();
        assert!(allowed.contains(&s), "{key}: {s} is no candidate");
    }

    let run =
        ["run", "-m", model, "--device", "gpu", "--temp", "0", "-n", "6", "--ignore-eos", "--json", "-p", "Hello"];
    let cached = with_tune_cache(&run, &cache);
    let err = String::from_utf8_lossy(&cached.stderr);
    assert!(err.contains("tuned (cached in") && !err.contains("timing matvec shapes"), "{err}");
    let fresh_cache = dir.join("fresh.json");
    let fresh = with_tune_cache(&run, &fresh_cache);
    assert!(String::from_utf8_lossy(&fresh.stderr).contains("timing matvec shapes"));
    assert!(fresh_cache.is_file(), "the first run caches its tuning");
    let mut no_tune = run.to_vec();
    no_tune.push("--no-tune");
    let untuned = with_tune_cache(&no_tune, &cache);
    assert!(String::from_utf8_lossy(&untuned.stderr).contains("not tuned"));
    let want = greedy_tokens(&untuned);
    assert_eq!(greedy_tokens(&cached), want);
    assert_eq!(greedy_tokens(&fresh), want);
    let _ = std::fs::remove_dir_all(&dir);
}
