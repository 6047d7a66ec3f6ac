use std::time::Instant;

use clap::{Args, ValueEnum};
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::sampler::{argmax, Rng};
use lanterna::{fetch, Error, Result};
use serde_json::json;

use super::device::DeviceArgs;

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
    #[command(flatten)]
    device: DeviceArgs,
}

/// One row of results: the test ("pp64"), its rates, and for decoding the weight bytes a token reads.
type Row = (String, Stats, Option<u64>);

/// What the output names the model by.
struct ModelFacts {
    name: String,
    size: u64,
    params: u64,
    backend: String,
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
    let mut exec = a.device.load(&g, cfg, n_ctx, |_| {})?;
    let facts = ModelFacts {
        name: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        size: g.tensors.iter().map(|t| t.n_bytes).sum(),
        params: g.tensors.iter().map(|t| t.n_elements).sum(),
        backend: exec.name(),
    };
    let mut rng = Rng::new(1234);
    let mut rows = Vec::new();
    for &n in a.pp.iter().filter(|&&n| n > 0) {
        let prompt: Vec<u32> = (0..n).map(|_| (rng.next_u64() % n_vocab as u64) as u32).collect();
        rows.push((format!("pp{n}"), stats(&time_prompt(exec.as_mut(), &prompt, a.reps)?), None));
    }
    for &n in a.tg.iter().filter(|&&n| n > 0) {
        rows.push((format!("tg{n}"), stats(&time_decode(exec.as_mut(), n, a.reps)?), Some(bytes_per_token)));
        for &p in a.parallel.iter().filter(|&&p| p > 0) {
            let rates = time_batch(exec.as_mut(), n, p, a.reps)?;
            rows.push((format!("tg{n} x{p}"), stats(&rates), None));
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

/// Tokens per second of processing `prompt`, per timed repetition (after a warm-up).
fn time_prompt(exec: &mut dyn Executor, prompt: &[u32], reps: usize) -> Result<Vec<f64>> {
    let mut rates = Vec::new();
    for r in 0..=reps {
        exec.reset();
        let t = Instant::now();
        exec.prefill(prompt, 0)?;
        if r > 0 {
            rates.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(rates)
}

/// Tokens per second of decoding `n` greedy tokens after one, per timed repetition.
fn time_decode(exec: &mut dyn Executor, n: usize, reps: usize) -> Result<Vec<f64>> {
    let mut rates = Vec::new();
    for r in 0..=reps {
        exec.reset();
        let mut tok = exec.prefill(&[1], 0).map(argmax)?;
        let t = Instant::now();
        for i in 0..n {
            tok = argmax(exec.forward(tok, 1 + i)?);
        }
        if r > 0 {
            rates.push(n as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(rates)
}

/// Aggregate tokens per second of `seqs` sequences each decoding `n` greedy tokens after
/// one, every step one batch (`Executor::decode_batch`), per timed repetition.
fn time_batch(exec: &mut dyn Executor, n: usize, seqs: usize, reps: usize) -> Result<Vec<f64>> {
    let mut rates = Vec::new();
    for r in 0..=reps {
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
        if r > 0 {
            rates.push((n * seqs) as f64 / t.elapsed().as_secs_f64());
        }
    }
    exec.select_seq(0).map(|_| rates)
}

fn gb_per_s(bytes: u64, st: &Stats) -> f64 {
    bytes as f64 * st.mean / 1e9
}

fn print_md(m: &ModelFacts, rows: &[Row]) {
    let gib = m.size as f64 / (1u64 << 30) as f64;
    let params = m.params as f64 / 1e6;
    println!("| model | size | params | backend | test | t/s | median t/s | weight MiB/token | GB/s |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for (test, st, bpt) in rows {
        let (mib, gbs) = match bpt {
            Some(b) => (format!("{:.1}", *b as f64 / (1 << 20) as f64), format!("{:.2}", gb_per_s(*b, st))),
            None => ("-".into(), "-".into()),
        };
        let (name, backend) = (&m.name, &m.backend);
        let (mean, sd, median) = (st.mean, st.sd, st.median);
        println!(
            "| {name} | {gib:.2} GiB | {params:.2} M | {backend} | {test} | {mean:.2} ± {sd:.2} | {median:.2} | {mib} | {gbs} |"
        );
    }
}

fn print_csv(m: &ModelFacts, rows: &[Row]) {
    println!("model,size_bytes,params,backend,test,tokens_per_s,sd,median,weight_bytes_per_token,gb_per_s");
    for (test, st, bpt) in rows {
        let gbs = bpt.map(|b| format!("{:.4}", gb_per_s(b, st))).unwrap_or_default();
        let bytes = bpt.map(|b| b.to_string()).unwrap_or_default();
        let (name, size, params, backend) = (&m.name, m.size, m.params, &m.backend);
        println!(
            "{name},{size},{params},\"{backend}\",{test},{:.4},{:.4},{:.4},{bytes},{gbs}",
            st.mean, st.sd, st.median
        );
    }
}

fn print_json(m: &ModelFacts, rows: &[Row], reps: usize) {
    let v: Vec<_> = rows
        .iter()
        .map(|(test, st, bpt)| {
            json!({"model": m.name, "size_bytes": m.size, "params": m.params, "backend": m.backend, "test": test,
                "tokens_per_s": st.mean, "sd": st.sd, "median_tokens_per_s": st.median, "reps": reps,
                "weight_bytes_per_token": bpt, "gb_per_s": bpt.map(|b| gb_per_s(b, st))})
        })
        .collect();
    println!("{}", serde_json::Value::Array(v));
}
