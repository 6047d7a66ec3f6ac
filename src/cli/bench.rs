use std::time::Instant;

use clap::{Args, ValueEnum};
use lanterna::cpu::CpuModel;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::gpu::{AdapterChoice, GpuModel};
use lanterna::model::Config;
use lanterna::sampler::{argmax, Rng};
use lanterna::{models, Error, Result};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Output {
    Md,
    Json,
    Csv,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum BenchDevice {
    Gpu,
    Cpu,
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
    #[arg(long, value_enum, default_value_t = BenchDevice::Gpu)]
    device: BenchDevice,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Md)]
    output: Output,
    #[arg(long)]
    backend: Option<String>,
    #[arg(long)]
    adapter: Option<usize>,
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
    let path = models::resolve(a.model.as_deref())?;
    let g = GgufFile::open(&path)?;
    let cfg = Config::from_gguf(&g)?;
    let n_ctx = a.pp.iter().copied().max().unwrap_or(0).max(1) + a.tg.iter().copied().max().unwrap_or(0) + 1;
    if n_ctx > cfg.n_ctx_train.max(n_ctx.min(4096)) {
        return Err(Error::Context(format!(
            "the tests need {n_ctx} positions; the model was trained on {}",
            cfg.n_ctx_train
        )));
    }
    let params: u64 = g.tensors.iter().map(|t| t.n_elements).sum();
    let size: u64 = g.tensors.iter().map(|t| t.n_bytes).sum();
    // Weight bytes one decoded token reads: everything, except that an untied embedding
    // is read one row at a time.
    let embd = g.tensor("token_embd.weight").map_or(0, |t| {
        if g.tensor("output.weight").is_some() {
            t.n_bytes - t.n_bytes / t.n_rows() as u64
        } else {
            0
        }
    });
    let bytes_per_token = size - embd;
    let n_vocab = cfg.n_vocab;
    let mut exec: Box<dyn Executor> = match a.device {
        BenchDevice::Gpu => {
            Box::new(GpuModel::load(&g, cfg, n_ctx, &AdapterChoice::from_args(a.backend.clone(), a.adapter)?)?)
        }
        BenchDevice::Cpu => Box::new(CpuModel::load(&g, cfg, n_ctx)?),
    };
    let backend = exec.name();
    let model_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut rng = Rng::new(1234);
    let mut rows = Vec::new();

    for &n in &a.pp {
        if n == 0 {
            continue;
        }
        let prompt: Vec<u32> = (0..n).map(|_| (rng.next_u64() % n_vocab as u64) as u32).collect();
        let mut rates = Vec::new();
        for r in 0..=a.reps {
            exec.reset();
            let t = Instant::now();
            exec.prefill(&prompt, 0)?;
            if r > 0 {
                rates.push(n as f64 / t.elapsed().as_secs_f64());
            }
        }
        rows.push((format!("pp{n}"), stats(&rates), None));
    }
    for &n in &a.tg {
        if n == 0 {
            continue;
        }
        let mut rates = Vec::new();
        for r in 0..=a.reps {
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
        rows.push((format!("tg{n}"), stats(&rates), Some(bytes_per_token)));
    }

    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match a.output {
        Output::Md => {
            println!("| model | size | params | backend | test | t/s | median t/s | weight MiB/token | GB/s |");
            println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
            for (test, st, bpt) in &rows {
                let (mib, gbs) = match bpt {
                    Some(b) => {
                        (format!("{:.1}", *b as f64 / (1 << 20) as f64), format!("{:.2}", *b as f64 * st.mean / 1e9))
                    }
                    None => ("-".into(), "-".into()),
                };
                println!(
                    "| {model_name} | {:.2} GiB | {:.2} M | {backend} | {test} | {:.2} ± {:.2} | {:.2} | {mib} | {gbs} |",
                    gib(size),
                    params as f64 / 1e6,
                    st.mean,
                    st.sd,
                    st.median
                );
            }
        }
        Output::Csv => {
            println!("model,size_bytes,params,backend,test,tokens_per_s,sd,median,weight_bytes_per_token,gb_per_s");
            for (test, st, bpt) in &rows {
                let gbs = bpt.map(|b| format!("{:.4}", b as f64 * st.mean / 1e9)).unwrap_or_default();
                let bytes = bpt.map(|b| b.to_string()).unwrap_or_default();
                println!(
                    "{model_name},{size},{params},\"{backend}\",{test},{:.4},{:.4},{:.4},{bytes},{gbs}",
                    st.mean, st.sd, st.median
                );
            }
        }
        Output::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(test, st, bpt)| {
                    json!({"model": model_name, "size_bytes": size, "params": params, "backend": backend, "test": test,
                        "tokens_per_s": st.mean, "sd": st.sd, "median_tokens_per_s": st.median, "reps": a.reps,
                        "weight_bytes_per_token": bpt, "gb_per_s": bpt.map(|b| b as f64 * st.mean / 1e9)})
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
    }
    Ok(())
}
