use std::time::Instant;

use clap::{Args, ValueEnum};
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::sampler::{argmax, Rng};
use lanterna::{fetch, Error, Result};
use serde_json::json;

use super::device::{Device, DeviceArgs};

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Output {
    Md,
    Json,
    Csv,
}

#[derive(Args)]
pub struct BenchArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// Prompt lengths to time (prompt processing, "pp N"), comma-separated.
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_values_t = vec![64usize, 256])]
    pp: Vec<usize>,
    /// Tokens to generate ("tg N"), comma-separated.
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_values_t = vec![32usize])]
    tg: Vec<usize>,
    /// Timed repetitions of each test (after one warm-up that is not counted).
    #[arg(short = 'r', long, default_value_t = 5)]
    reps: usize,
    /// Sequences decoded together, as the server batches them ("tg N xP": P sequences
    /// each decoding N tokens, one batched step for all; aggregate tokens/s),
    /// comma-separated. 0: none of these tests.
    #[arg(short = 'P', long = "parallel", value_delimiter = ',', default_values_t = vec![0usize])]
    parallel: Vec<usize>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Md)]
    output: Output,
    /// A second device timed in the same run (`--device gpu --against cpu`): the two take
    /// turns, one repetition each, so a machine whose speed drifts slows both alike, and
    /// each test also gives the first's rate over the second's, the median of the paired
    /// repetitions' ratios.
    #[arg(long, value_enum)]
    against: Option<Device>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// One row of results: the test ("pp64") on one executor, its rates, and for decoding
/// the weight bytes a token reads.
struct Row {
    test: String,
    backend: String,
    rates: Vec<f64>,
    stats: Stats,
    bytes: Option<u64>,
    /// Against the executor of `--against`, where this row is the first device's.
    ratio: Option<Ratio>,
}

/// The first device's rates over the second's, repetition by repetition (each pair ran
/// back to back).
struct Ratio {
    against: String,
    median: f64,
    min: f64,
    max: f64,
}

fn ratio(a: &[f64], b: &[f64], against: &str) -> Ratio {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let (min, max) = r.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    Ratio { against: against.to_string(), median: stats(&r).median, min, max }
}

/// What the output names the model by.
struct ModelFacts {
    name: String,
    size: u64,
    params: u64,
}

/// Mean, sample standard deviation and median of the timed repetitions.
struct Stats {
    mean: f64,
    sd: f64,
    median: f64,
}

fn stats(v: &[f64]) -> Stats {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n == 0 {
        0.0
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Stats { mean, sd: var.sqrt(), median }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if a.reps == 0 {
        return Err(Error::Usage("-r must be at least 1".into()));
    }
    let path = fetch::resolve(a.model.as_deref())?;
    let g = GgufFile::open(&path)?;
    let seqs = a.parallel.iter().copied().max().unwrap_or(0).max(1);
    let cfg = Config::from_gguf(&g)?.with_seqs(seqs)?;
    let n_ctx = a.pp.iter().copied().max().unwrap_or(0).max(1) + a.tg.iter().copied().max().unwrap_or(0) + 1;
    if n_ctx > cfg.n_ctx_train.max(n_ctx.min(4096)) {
        let msg = format!("the tests need {n_ctx} positions; the model was trained on {}", cfg.n_ctx_train);
        return Err(Error::Context(msg));
    }
    let bytes_per_token = weight_bytes_per_token(&g);
    let n_vocab = cfg.n_vocab;
    let mut execs = vec![a.device.load(&g, cfg.clone(), n_ctx, |_| {})?];
    if let Some(device) = a.against {
        let other = DeviceArgs { device, ..a.device.clone() };
        execs.push(other.load(&g, cfg, n_ctx, |_| {})?);
    }
    let facts = ModelFacts {
        name: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        size: g.tensors.iter().map(|t| t.n_bytes).sum(),
        params: g.tensors.iter().map(|t| t.n_elements).sum(),
    };
    let mut rng = Rng::new(1234);
    let mut rows = Vec::new();
    for &n in a.pp.iter().filter(|&&n| n > 0) {
        let prompt: Vec<u32> = (0..n).map(|_| (rng.next_u64() % n_vocab as u64) as u32).collect();
        let rates = measure(&mut execs, a.reps, |e| time_prompt(e, &prompt))?;
        rows.extend(test_rows(format!("pp{n}"), &execs, rates, None));
    }
    for &n in a.tg.iter().filter(|&&n| n > 0) {
        let rates = measure(&mut execs, a.reps, |e| time_decode(e, n))?;
        rows.extend(test_rows(format!("tg{n}"), &execs, rates, Some(bytes_per_token)));
        for &p in a.parallel.iter().filter(|&&p| p > 0) {
            let rates = measure(&mut execs, a.reps, |e| time_batch(e, n, p))?;
            rows.extend(test_rows(format!("tg{n} x{p}"), &execs, rates, None));
        }
    }
    match a.output {
        Output::Md => print_md(&facts, &rows),
        Output::Csv => print_csv(&facts, &rows),
        Output::Json => print_json(&facts, &rows, a.reps),
    }
    Ok(())
}

/// Weight bytes one decoded token reads: everything, except that an untied embedding is
/// read one row at a time.
fn weight_bytes_per_token(g: &GgufFile) -> u64 {
    let size: u64 = g.tensors.iter().map(|t| t.n_bytes).sum();
    let embd = g.tensor("token_embd.weight").map_or(0, |t| {
        if g.tensor("output.weight").is_some() {
            t.n_bytes - t.n_bytes / t.n_rows() as u64
        } else {
            0
        }
    });
    size - embd
}

/// Each executor's rates of `rep`, one untimed warm-up each first, then `reps` rounds in
/// which every executor runs once in turn.
fn measure(
    execs: &mut [Box<dyn Executor>],
    reps: usize,
    mut rep: impl FnMut(&mut dyn Executor) -> Result<f64>,
) -> Result<Vec<Vec<f64>>> {
    for e in execs.iter_mut() {
        rep(e.as_mut())?;
    }
    let mut rates = vec![Vec::with_capacity(reps); execs.len()];
    for _ in 0..reps {
        for (e, r) in execs.iter_mut().zip(&mut rates) {
            r.push(rep(e.as_mut())?);
        }
    }
    Ok(rates)
}

/// A test's rows, one per executor; the first's carries its ratio to the second's.
fn test_rows(test: String, execs: &[Box<dyn Executor>], rates: Vec<Vec<f64>>, bytes: Option<u64>) -> Vec<Row> {
    let paired = match rates.as_slice() {
        [a, b] => Some(ratio(a, b, &execs[1].name())),
        _ => None,
    };
    let mut rows: Vec<Row> = execs
        .iter()
        .zip(rates)
        .map(|(e, rates)| Row {
            test: test.clone(),
            backend: e.name(),
            stats: stats(&rates),
            rates,
            bytes,
            ratio: None,
        })
        .collect();
    rows[0].ratio = paired;
    rows
}

/// Tokens per second of processing `prompt` once.
fn time_prompt(exec: &mut dyn Executor, prompt: &[u32]) -> Result<f64> {
    exec.reset();
    let t = Instant::now();
    exec.prefill(prompt, 0)?;
    Ok(prompt.len() as f64 / t.elapsed().as_secs_f64())
}

/// Tokens per second of decoding `n` greedy tokens after one.
fn time_decode(exec: &mut dyn Executor, n: usize) -> Result<f64> {
    exec.reset();
    let mut tok = exec.prefill(&[1], 0).map(argmax)?;
    let t = Instant::now();
    for i in 0..n {
        tok = argmax(exec.forward(tok, 1 + i)?);
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// Aggregate tokens per second of `seqs` sequences each decoding `n` greedy tokens after
/// one, every step one batch (`Executor::decode_batch`).
fn time_batch(exec: &mut dyn Executor, n: usize, seqs: usize) -> Result<f64> {
    let mut toks = Vec::new();
    for s in 0..seqs {
        exec.select_seq(s)?;
        exec.reset();
        // A different first token each, so that the sequences really differ.
        toks.push(exec.prefill(&[1 + s as u32], 0).map(argmax)?);
    }
    let t = Instant::now();
    for _ in 0..n {
        let items: Vec<(usize, u32)> = toks.iter().copied().enumerate().collect();
        let rows = exec.decode_batch(&items)?;
        toks = rows.chunks(rows.len() / seqs).map(argmax).collect();
    }
    let rate = (n * seqs) as f64 / t.elapsed().as_secs_f64();
    exec.select_seq(0).map(|_| rate)
}

fn gb_per_s(bytes: u64, st: &Stats) -> f64 {
    bytes as f64 * st.mean / 1e9
}

fn print_md(m: &ModelFacts, rows: &[Row]) {
    let gib = m.size as f64 / (1u64 << 30) as f64;
    let params = m.params as f64 / 1e6;
    println!("| model | size | params | backend | test | t/s | median t/s | weight MiB/token | GB/s |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        let (mib, gbs) = match r.bytes {
            Some(b) => (format!("{:.1}", b as f64 / (1 << 20) as f64), format!("{:.2}", gb_per_s(b, &r.stats))),
            None => ("-".into(), "-".into()),
        };
        let (name, backend, test) = (&m.name, &r.backend, &r.test);
        let (mean, sd, median) = (r.stats.mean, r.stats.sd, r.stats.median);
        println!(
            "| {name} | {gib:.2} GiB | {params:.2} M | {backend} | {test} | {mean:.2} ± {sd:.2} | {median:.2} | {mib} | {gbs} |"
        );
    }
    let paired: Vec<(&Row, &Ratio)> = rows.iter().filter_map(|r| r.ratio.as_ref().map(|q| (r, q))).collect();
    if !paired.is_empty() {
        println!();
        println!("| test | backend | against | rate ratio (median of paired reps) | min | max |");
        println!("| ---: | --- | --- | ---: | ---: | ---: |");
        for (r, q) in paired {
            let (test, backend, against) = (&r.test, &r.backend, &q.against);
            println!("| {test} | {backend} | {against} | {:.3} | {:.3} | {:.3} |", q.median, q.min, q.max);
        }
    }
}

fn print_csv(m: &ModelFacts, rows: &[Row]) {
    println!("model,size_bytes,params,backend,test,tokens_per_s,sd,median,weight_bytes_per_token,gb_per_s");
    for r in rows {
        let gbs = r.bytes.map(|b| format!("{:.4}", gb_per_s(b, &r.stats))).unwrap_or_default();
        let bytes = r.bytes.map(|b| b.to_string()).unwrap_or_default();
        let (name, size, params, backend, test) = (&m.name, m.size, m.params, &r.backend, &r.test);
        println!(
            "{name},{size},{params},\"{backend}\",{test},{:.4},{:.4},{:.4},{bytes},{gbs}",
            r.stats.mean, r.stats.sd, r.stats.median
        );
    }
}

fn print_json(m: &ModelFacts, rows: &[Row], reps: usize) {
    let v: Vec<_> = rows
        .iter()
        .map(|r| {
            let (st, bpt) = (&r.stats, r.bytes);
            let mut o = json!({"model": m.name, "size_bytes": m.size, "params": m.params, "backend": r.backend,
                "test": r.test, "tokens_per_s": st.mean, "sd": st.sd, "median_tokens_per_s": st.median, "reps": reps,
                "rates": r.rates, "weight_bytes_per_token": bpt, "gb_per_s": bpt.map(|b| gb_per_s(b, st))});
            if let Some(q) = &r.ratio {
                o["against"] = json!({"backend": q.against, "ratio_median": q.median, "ratio_min": q.min,
                    "ratio_max": q.max});
            }
            o
        })
        .collect();
    println!("{}", serde_json::Value::Array(v));
}
