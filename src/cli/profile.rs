use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::gpu::profile::{stream_rate, OpTiming};
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::sampler::argmax;
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

use super::device::{AdapterArgs, CtxArgs, KvArgs, TuneArgs};
use serde_json::json;

#[derive(Args)]
pub struct ProfileArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    #[arg(short, long, default_value = "The capital of France is")]
    prompt: String,
    /// Tokens to generate (greedy) after the prompt.
    #[arg(short = 'n', long = "n-predict", default_value_t = 16)]
    n: usize,
    /// Write a Chrome trace-event file (Perfetto, chrome://tracing): one slice per pass.
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
    /// Print the tables as JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ctx: CtxArgs,
    #[command(flatten)]
    kv: KvArgs,
    #[command(flatten)]
    gpu: AdapterArgs,
    #[command(flatten)]
    tune: TuneArgs,
}

/// One profiled forward step.
struct TokenRun {
    phase: &'static str,
    wall_start_us: f64,
    wall_ms: f64,
    ops: Vec<OpTiming>,
}

#[derive(Default)]
struct KernelStats {
    calls: usize,
    ns: f64,
    read: u64,
    written: u64,
}

fn table(runs: &[&TokenRun], ceiling_gbs: f64, json: bool) -> serde_json::Value {
    let mut by: BTreeMap<String, KernelStats> = BTreeMap::new();
    for r in runs {
        for o in &r.ops {
            let s = by.entry(o.kernel.clone()).or_default();
            s.calls += 1;
            s.ns += o.dur_ns;
            s.read += o.read;
            s.written += o.written;
        }
    }
    let n_tok = runs.len().max(1) as f64;
    let kernel_ms: f64 = by.values().map(|s| s.ns).sum::<f64>() / 1e6;
    let wall_ms: f64 = runs.iter().map(|r| r.wall_ms).sum();
    let mut rows: Vec<(&String, &KernelStats)> = by.iter().collect();
    rows.sort_by(|a, b| b.1.ns.total_cmp(&a.1.ns));
    let mut out = Vec::new();
    if !json {
        println!(
            "{:<20} {:>6} {:>10} {:>10} {:>7} {:>10} {:>10} {:>8} {:>8}",
            "kernel", "calls", "total ms", "mean µs", "share", "read MB", "write MB", "GB/s", "% ceil"
        );
    }
    for (k, s) in rows {
        let gbs = (s.read + s.written) as f64 / s.ns.max(1.0);
        let share = 100.0 * s.ns / 1e6 / kernel_ms.max(1e-9);
        let pct = 100.0 * gbs / ceiling_gbs;
        if !json {
            println!(
                "{:<20} {:>6} {:>10.2} {:>10.1} {:>6.1}% {:>10.2} {:>10.2} {:>8.2} {:>7.1}%",
                k,
                s.calls,
                s.ns / 1e6,
                s.ns / 1e3 / s.calls as f64,
                share,
                s.read as f64 / 1e6,
                s.written as f64 / 1e6,
                gbs,
                pct
            );
        }
        out.push(json!({"kernel": k, "calls": s.calls, "total_ms": s.ns / 1e6, "mean_us": s.ns / 1e3 / s.calls as f64, "share": share,
            "read_bytes": s.read, "written_bytes": s.written, "gb_per_s": gbs, "percent_of_ceiling": pct}));
    }
    if !json {
        println!(
            "per token: kernels {:.2} ms, wall {:.2} ms ({:.1}% of the token in timed kernels)",
            kernel_ms / n_tok,
            wall_ms / n_tok,
            100.0 * kernel_ms / wall_ms.max(1e-9)
        );
    }
    json!({"tokens": runs.len(), "kernel_ms_per_token": kernel_ms / n_tok, "wall_ms_per_token": wall_ms / n_tok, "kernels": out})
}

fn trace(runs: &[TokenRun], path: &std::path::Path) -> Result<()> {
    let mut events = vec![
        json!({"name": "process_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "lanterna GPU"}}),
        json!({"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "passes"}}),
        json!({"name": "thread_name", "ph": "M", "pid": 0, "tid": 1, "args": {"name": "tokens"}}),
    ];
    for (i, r) in runs.iter().enumerate() {
        events.push(json!({"name": format!("token {i} ({})", r.phase), "cat": r.phase, "ph": "X", "pid": 0, "tid": 1,
            "ts": r.wall_start_us, "dur": r.wall_ms * 1e3}));
        for o in &r.ops {
            events.push(json!({"name": o.label, "cat": o.kernel, "ph": "X", "pid": 0, "tid": 0,
                "ts": r.wall_start_us + o.start_ns / 1e3, "dur": o.dur_ns / 1e3,
                "args": {"kernel": o.kernel, "token": i, "phase": r.phase, "read_bytes": o.read, "written_bytes": o.written}}));
        }
    }
    let doc = json!({"traceEvents": events, "displayTimeUnit": "ms"});
    std::fs::write(path, serde_json::to_vec(&doc).map_err(|e| Error::Usage(e.to_string()))?)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// The prompt one token at a time, then `n` greedy tokens, each step timed; also the
/// generated tokens.
fn profile_tokens(m: &mut GpuModel, prompt: &[u32], n: usize) -> Result<(Vec<TokenRun>, Vec<u32>)> {
    let t0 = Instant::now();
    let mut runs = Vec::new();
    let mut tokens = Vec::new();
    let mut next = 0u32;
    for pos in 0..prompt.len() + n {
        let (t, phase) = if pos < prompt.len() { (prompt[pos], "prefill") } else { (next, "decode") };
        if pos >= prompt.len() {
            tokens.push(t);
        }
        let start = t0.elapsed().as_secs_f64() * 1e6;
        let w = Instant::now();
        let logits = m.forward(t, pos)?;
        let wall_ms = w.elapsed().as_secs_f64() * 1e3;
        next = argmax(logits);
        runs.push(TokenRun { phase, wall_start_us: start, wall_ms, ops: m.take_timings() });
    }
    Ok((runs, tokens))
}

pub fn run(a: ProfileArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = a.kv.apply(Config::from_gguf(&g)?)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let prompt = tok.encode(&a.prompt)?;
    let n_ctx = a.ctx.n_ctx(&cfg)?;
    if prompt.len() + a.n > n_ctx {
        return Err(Error::Context(format!(
            "the prompt ({} tokens) plus {} needs more than the context of {n_ctx}",
            prompt.len(),
            a.n
        )));
    }
    let mut m = GpuModel::load(&g, cfg, n_ctx, &a.gpu.choice()?)?;
    a.tune.prepare(&mut m)?;
    let mode = m.enable_profiling()?;
    let ceiling = stream_rate(&m.ctx, 1 << 24)?;
    if !a.json {
        println!("adapter: {}", m.ctx.describe());
        println!("timing: {}", mode.describe());
        println!("kernels: {}", m.kernel_config());
        println!("ceiling: plain f32 streaming kernel {ceiling:.2} GB/s (read + write)");
    }

    let (runs, tokens) = profile_tokens(&mut m, &prompt, a.n)?;
    // The last forward only produces logits for a token we do not keep; it is still a decode step.
    let prefill: Vec<&TokenRun> = runs.iter().filter(|r| r.phase == "prefill").collect();
    let decode: Vec<&TokenRun> = runs.iter().filter(|r| r.phase == "decode").collect();
    if !a.json {
        println!("\nprefill ({} tokens, one at a time):", prefill.len());
    }
    let pj = table(&prefill, ceiling, a.json);
    if !a.json {
        println!("\ndecode ({} tokens):", decode.len());
    }
    let dj = table(&decode, ceiling, a.json);
    if let Some(p) = &a.trace {
        trace(&runs, p)?;
        if !a.json {
            println!("\ntrace: {} ({} slices)", p.display(), runs.iter().map(|r| r.ops.len()).sum::<usize>());
        }
    }
    if a.json {
        println!(
            "{}",
            json!({"adapter": m.ctx.describe(), "timing": format!("{mode:?}"), "kernels": m.kernel_config(), "ceiling_gb_per_s": ceiling,
                "prompt_tokens": prompt, "tokens": tokens, "prefill": pj, "decode": dj})
        );
    } else {
        println!("\ntext: {:?}", tok.decode(&tokens));
    }
    Ok(())
}
