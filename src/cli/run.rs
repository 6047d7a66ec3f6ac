use std::io::Write;
use std::time::Instant;

use clap::{Args, ValueEnum};
use lanterna::cpu::CpuModel;
use lanterna::generate::{generate, Executor};
use lanterna::gguf::GgufFile;
use lanterna::gpu::{AdapterChoice, GpuModel};
use lanterna::model::Config;
use lanterna::sampler::{Sampler, SamplerConfig};
use lanterna::tokenizer::{StreamDecoder, Tokenizer};
use lanterna::{models, Error, Result};

#[derive(Clone, Copy, ValueEnum)]
pub enum Device {
    /// The GPU when an adapter exists, else the CPU.
    Auto,
    Gpu,
    /// The plain f32 reference path.
    Cpu,
}

#[derive(Args)]
pub struct RunArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2 (fetched if missing).
    #[arg(short, long)]
    model: Option<String>,
    /// The prompt, tokenized raw (no chat template), BOS as the model says.
    #[arg(short, long)]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n: usize,
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    temp: f32,
    /// Keep the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches P (1: all).
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than P times the most likely one (0: none).
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Penalise tokens among the last 64 (1: off).
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Random seed (default: from the clock; printed so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Context size in tokens (default: the model's, at most 4096).
    #[arg(long)]
    ctx: Option<usize>,
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    device: Device,
    /// GPU backend: vulkan, metal, dx12 or gl (default: any; env LANTERNA_BACKEND).
    #[arg(long)]
    backend: Option<String>,
    /// GPU adapter index from `lanterna devices` (env LANTERNA_ADAPTER).
    #[arg(long)]
    adapter: Option<usize>,
    /// Do not stop at end-of-generation tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

/// The executor `--device` asks for: `auto` takes the GPU when an adapter exists, else says
/// so and falls back to the CPU reference path. `loaded` sees the GPU model once uploaded.
pub fn load_executor(
    device: Device,
    g: &GgufFile,
    cfg: Config,
    n_ctx: usize,
    choice: &AdapterChoice,
    loaded: impl FnOnce(&GpuModel),
) -> Result<Box<dyn Executor>> {
    let gpu = matches!(device, Device::Gpu)
        || (matches!(device, Device::Auto)
            && !lanterna::gpu::context::adapters(lanterna::gpu::context::parse_backends(choice.backend.as_deref())?)
                .is_empty());
    if gpu {
        let m = GpuModel::load(g, cfg, n_ctx, choice)?;
        loaded(&m);
        return Ok(Box::new(m));
    }
    if matches!(device, Device::Auto) {
        eprintln!("lanterna: no GPU adapter found; running on the CPU reference path");
    }
    Ok(Box::new(CpuModel::load(g, cfg, n_ctx)?))
}

pub fn run(a: RunArgs) -> Result<()> {
    let t_load = Instant::now();
    let g = GgufFile::open(models::resolve(a.model.as_deref())?)?;
    let cfg = Config::from_gguf(&g)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let n_ctx = a.ctx.unwrap_or(cfg.n_ctx_train.min(4096));
    if n_ctx == 0 {
        return Err(Error::Usage("--ctx must be at least 1".into()));
    }
    let choice = AdapterChoice::from_args(a.backend.clone(), a.adapter)?;
    let json = a.json;
    let mut exec = load_executor(a.device, &g, cfg, n_ctx, &choice, |m| {
        if !json {
            eprintln!(
                "lanterna: uploaded {:.1} MiB of weights to {} in {:.0} ms",
                m.upload_bytes as f64 / (1024.0 * 1024.0),
                m.ctx.describe(),
                m.upload_ms
            );
        }
    })?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    });
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: a.temp,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repeat_penalty: a.repeat_penalty,
        repeat_last_n: 64,
        seed,
    });
    let prompt = tok.encode(&a.prompt)?;
    if !a.json {
        eprintln!("lanterna: {} on {}, {} prompt tokens, seed {seed}", g.path.display(), exec.name(), prompt.len());
    }

    // From here Ctrl-C stops after the current token instead of killing the process.
    lanterna::interrupt::install_handler();
    let mut out = std::io::stdout().lock();
    let mut stream = StreamDecoder::default();
    let gen = generate(exec.as_mut(), &tok, &mut sampler, &prompt, a.n, a.ignore_eos, |id| {
        if !json {
            let s = stream.push(&tok, id);
            out.write_all(s.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Error::Usage(format!("writing to stdout: {e}")))?;
        }
        Ok(())
    })?;

    if json {
        let v = serde_json::json!({
            "prompt_tokens": gen.prompt_tokens,
            "tokens": gen.tokens,
            "text": tok.decode(&gen.tokens),
            "stop": gen.stop.as_str(),
            "device": exec.name(),
            "seed": seed,
            "timings": {
                "load_ms": load_ms,
                "prompt_ms": gen.prompt_ms,
                "prompt_tokens_per_s": gen.prompt_tokens_per_s(),
                "decode_ms": gen.decode_ms,
                "decode_tokens_per_s": gen.decode_tokens_per_s(),
            },
        });
        writeln!(out, "{v}").map_err(|e| Error::Usage(format!("writing to stdout: {e}")))?;
    } else {
        let rest = stream.finish();
        writeln!(out, "{rest}").map_err(|e| Error::Usage(format!("writing to stdout: {e}")))?;
        eprintln!(
            "lanterna: load {:.0} ms | prompt {} tokens, {:.1} tokens/s | decode {} tokens, {:.1} tokens/s | stop: {}",
            load_ms,
            gen.prompt_tokens.len(),
            gen.prompt_tokens_per_s(),
            gen.decode_steps,
            gen.decode_tokens_per_s(),
            gen.stop.as_str()
        );
    }
    if gen.stop == lanterna::generate::StopReason::Interrupted {
        return Err(Error::Interrupted);
    }
    Ok(())
}
