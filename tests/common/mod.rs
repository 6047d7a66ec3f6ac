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

pub const SMOLLM2: RealModel =
    RealModel { name: "smollm2", file: "SmolLM2-135M-Instruct.Q4_1.gguf", fixture: "smollm2-135m-instruct-q4_1" };
pub const GEMMA3: RealModel =
    RealModel { name: "gemma3", file: "gemma-3-270m-q4_k_m.gguf", fixture: "gemma-3-270m-q4_k_m" };

/// The cached model file. Missing models fail the test loudly: a test that cannot see
/// its model has proven nothing.
pub fn model_path(m: &RealModel) -> PathBuf {
    let p = lanterna::fetch::cache_dir().join(m.file);
    assert!(
        p.is_file(),
        "\n\n*** MISSING: {} not found at {} ***\nRun scripts/fetch-models.sh (scripts/test.sh does it for you) or set LANTERNA_MODELS.\n",
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

/// The one opt-out: with `LANTERNA_TEST_ALLOW_SKIP=1`, a test whose adapter, model or
/// fixture is missing records what it skipped and returns; without it (the default,
/// whatever else the environment says) the test fails. `scripts/test.sh` lists the
/// recorded skips at the end of the run.
pub const ALLOW_SKIP: &str = "LANTERNA_TEST_ALLOW_SKIP";

/// Where skips are recorded, one line each: `test binary: what was skipped`.
pub fn skip_log() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lanterna-skipped.txt")
}

/// Something a test needs is not there: fail, unless the opt-out is set, in which case
/// record the skip (and say so on stderr) and let the caller return.
pub fn missing(what: &str) {
    let allowed = std::env::var(ALLOW_SKIP).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        allowed,
        "\n\n*** MISSING: {what} ***\nA test that cannot run has proven nothing, so this is a failure. Run scripts/test.sh \
         (it fetches the models, locates the zoo and installs lavapipe), or set {ALLOW_SKIP}=1 to skip and list it.\n"
    );
    let test = std::thread::current().name().unwrap_or("?").to_string();
    // The test binary's name without cargo's hash suffix: `zoo-0123abcd` → `zoo`.
    let bin = std::env::args()
        .next()
        .and_then(|a| PathBuf::from(a).file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let bin = bin.rsplit_once('-').map_or(bin.as_str(), |(b, _)| b);
    let line = format!("{bin} {test}: {what}\n");
    eprintln!("SKIPPED ({ALLOW_SKIP}): {line}");
    use std::io::Write;
    let log = skip_log();
    let _ = std::fs::create_dir_all(log.parent().unwrap());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("skip log");
    f.write_all(line.as_bytes()).expect("skip log");
}

/// The GPU for tests. No adapter fails the test (see [`missing`]); `None` only under the opt-out.
pub fn gpu() -> Option<lanterna::gpu::GpuContext> {
    match lanterna::gpu::GpuContext::new(&Default::default()) {
        Ok(c) => Some(c),
        Err(e) => {
            missing(&format!("a GPU adapter ({e}); scripts/install-lavapipe.sh installs a software one"));
            None
        }
    }
}

/// Normalized mean squared error Σ(a−b)² / Σb², the measure of ggml's test-backend-ops.
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|v| v.is_finite()), "non-finite GPU output");
    let num: f64 = got.iter().zip(want).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// Seeded values uniform in [-1, 1).
pub fn rand_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut r = lanterna::sampler::Rng::new(seed);
    (0..n).map(|_| (r.next_f64() * 2.0 - 1.0) as f32).collect()
}

/// Seeded random blocks of a tensor type with finite f16 scales (random bytes there
/// would be NaN or huge).
pub fn rand_tensor(ty: lanterna::quant::GgmlType, n_weights: usize, seed: u64) -> Vec<u8> {
    use lanterna::quant::GgmlType::*;
    let mut r = lanterna::sampler::Rng::new(seed);
    match ty {
        F32 => return rand_f32(n_weights, seed).iter().flat_map(|v| v.to_le_bytes()).collect(),
        F16 => return rand_f32(n_weights, seed).iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
        BF16 => return rand_f32(n_weights, seed).iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
        _ => {}
    }
    let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
    let mut bytes: Vec<u8> = (0..n_weights / bs * ts).map(|_| r.next_u64() as u8).collect();
    for blk in bytes.chunks_exact_mut(ts) {
        for &off in ty.f16_scale_offsets() {
            let mag = 10f64.powf(-3.0 * r.next_f64()) * (r.next_f64() * 2.0 - 1.0);
            blk[off..off + 2].copy_from_slice(&half::f16::from_f64(mag).to_le_bytes());
        }
    }
    bytes
}

/// Where the zoo of tiny models is: `$LANTERNA_ZOO` alone when it is set (so a wrong path
/// fails rather than falling back), else `../shared/fixtures/zoo` beside the repository and
/// the few models committed in tests/fixtures/zoo. `scripts/test.sh` sets `LANTERNA_ZOO`.
pub fn zoo_dirs() -> Vec<PathBuf> {
    if let Some(d) = std::env::var_os("LANTERNA_ZOO") {
        return vec![PathBuf::from(d)];
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![root.join("../shared/fixtures/zoo"), root.join("tests/fixtures/zoo")]
}

/// A zoo model `case/file`, or `None` after [`missing`] (which fails unless opted out).
pub fn zoo_model(case: &str, file: &str) -> Option<PathBuf> {
    let found = zoo_dirs().into_iter().map(|d| d.join(case).join(file)).find(|p| p.is_file());
    if found.is_none() {
        missing(&format!("zoo model {case}/{file} (looked in {:?}; set LANTERNA_ZOO)", zoo_dirs()));
    }
    found
}

/// Teacher-forced fidelity at every step: run `prompt`, then feed llama.cpp's greedy tokens
/// one by one; at each step compare our logits of llama.cpp's top-5 ids (`step_top5`, also
/// teacher-forced on the greedy prefix) with its values. Returns the worst |difference| and
/// the step where it happened; panics naming the step past `tol`.
pub fn check_step_top5(
    exec: &mut dyn lanterna::generate::Executor,
    what: &str,
    prompt: &[u32],
    p: &Value,
    tol: f32,
) -> (f32, usize) {
    let greedy = ids(&p["greedy_ids"]);
    let steps = p["step_top5"].as_array().expect("step_top5");
    assert_eq!(steps.len(), greedy.len(), "{what}: one top-5 per greedy step");
    exec.reset();
    let mut logits = exec.prefill(prompt, 0).expect("prefill").to_vec();
    let mut worst = (0f32, 0usize);
    for (i, step) in steps.iter().enumerate() {
        for e in step.as_array().unwrap() {
            let (id, want) = (e[0].as_u64().unwrap() as usize, e[1].as_f64().unwrap() as f32);
            let d = (logits[id] - want).abs();
            assert!(
                d <= tol,
                "{what}: step {i}, token {id}: logit {} vs llama.cpp {want} (|d| {d} > {tol})",
                logits[id]
            );
            if d > worst.0 {
                worst = (d, i);
            }
        }
        if i + 1 < steps.len() {
            logits = exec.forward(greedy[i], prompt.len() + i).expect("forward").to_vec();
        }
    }
    worst
}

/// Bytes of `n` weights of a GGML type, from ggml's own table (ggml.c `type_traits`:
/// block size, bytes per block), written out here rather than taken from `lanterna::quant`
/// so that figures derived from it are an independent check.
pub fn ggml_bytes(ty: lanterna::quant::GgmlType, n: u64) -> u64 {
    let (block, size) = match ty.name() {
        "F32" => (1, 4),
        "F16" | "BF16" => (1, 2),
        "Q4_0" => (32, 18),
        "Q4_1" => (32, 20),
        "Q5_0" => (32, 22),
        "Q5_1" => (32, 24),
        "Q8_0" => (32, 34),
        "Q2_K" => (256, 84),
        "Q3_K" => (256, 110),
        "Q4_K" => (256, 144),
        "Q5_K" => (256, 176),
        "Q6_K" => (256, 210),
        other => panic!("no ggml size for {other}"),
    };
    assert_eq!(n % block, 0, "{n} weights of {} are not whole blocks", ty.name());
    n / block * size
}

/// Weight bytes one decoded token reads, from the file's tensor table: every tensor once,
/// except the embedding table, of which only the token's row is read — unless the table is
/// also the LM head (no `output.weight`), which reads all of it.
pub fn weight_bytes_per_token(g: &lanterna::gguf::GgufFile) -> u64 {
    let mut total = 0;
    for t in &g.tensors {
        let n: u64 = t.dims.iter().product();
        let bytes = ggml_bytes(t.ty, n);
        total += if t.name == "token_embd.weight" && g.tensor("output.weight").is_some() {
            bytes / t.dims[1]
        } else {
            bytes
        };
    }
    total
}

/// Teacher-forced top-5 logits against llama.cpp's exact math (`check_step_top5`), per
/// model. Measured worst over 3 prompts × 32 steps on both executors: SmolLM2 1e-4 (f32
/// summation order), Gemma-3 9.6e-3 (llama.cpp's CPU GEGLU goes through an f16 table).
/// About 3–10× those; a wrong RoPE frequency, window boundary or cache slot moves logits by
/// tenths to whole units.
pub fn step_top5_tol(m: &RealModel) -> f32 {
    match m.name {
        "smollm2" => 1e-3,
        _ => 0.03,
    }
}

/// A prompt record's `top20_first`: (id, logit) of llama.cpp's 20 largest logits at the last
/// prompt position, largest first.
pub fn top20_first(p: &Value) -> Vec<(u32, f32)> {
    p["top20_first"]
        .as_array()
        .expect("top20_first")
        .iter()
        .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
        .collect()
}
