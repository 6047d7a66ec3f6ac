use std::io::Write;
use std::time::Instant;

use clap::Args;
use lanterna::generate::{generate, Generation};
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::sampler::Sampler;
use lanterna::tokenizer::{StreamDecoder, Tokenizer};
use lanterna::{fetch, Error, Result};

use super::device::{CtxArgs, DeviceArgs};
use super::sampling::SamplingArgs;
use super::template::ChatArgs;

#[derive(Args)]
pub struct RunArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2 (fetched if missing).
    #[arg(short, long)]
    model: Option<String>,
    /// The prompt, tokenized raw (no chat template), BOS as the model says.
    #[arg(short, long, required_unless_present = "messages")]
    prompt: Option<String>,
    /// A conversation instead (a JSON array of {"role", "content"} messages): rendered by
    /// the chat template, answered with one assistant turn, stopping at its end-of-turn token.
    #[arg(long, value_name = "FILE.json", conflicts_with = "prompt")]
    messages: Option<std::path::PathBuf>,
    #[command(flatten)]
    chat: ChatArgs,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    ctx: CtxArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Do not stop at end-of-generation tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: RunArgs) -> Result<()> {
    let t_load = Instant::now();
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = Config::from_gguf(&g)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let n_ctx = a.ctx.n_ctx(&cfg)?;
    let json = a.json;
    let mut exec = a.device.load(&g, cfg, n_ctx, |m| {
        if !json {
            let mib = m.upload_bytes as f64 / (1024.0 * 1024.0);
            eprintln!("lanterna: uploaded {mib:.1} MiB of weights to {} in {:.0} ms", m.ctx.describe(), m.upload_ms);
        }
        // Which kernel configuration runs, and whether it is tuned, also beside --json.
        eprintln!("lanterna: kernels: {}", m.kernel_config());
    })?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
    let (cfg, seed) = a.sampling.config();
    let mut sampler = Sampler::new(cfg);
    let prompt = match (&a.messages, &a.prompt) {
        (Some(m), _) => {
            let (text, t) = a.chat.render(&g, &tok, m, true)?;
            if !a.json {
                eprintln!("lanterna: chat template {} ({})", t.name, t.from);
            }
            tok.encode_special(&text)?
        }
        (None, Some(p)) => tok.encode(p)?,
        (None, None) => return Err(Error::Usage("give a prompt (-p) or a conversation (--messages)".into())),
    };
    if !a.json {
        eprintln!("lanterna: {} on {}, {} prompt tokens, seed {seed}", g.path.display(), exec.name(), prompt.len());
    }

    // From here Ctrl-C stops after the current token instead of killing the process.
    lanterna::interrupt::install_handler();
    let mut out = std::io::stdout().lock();
    let mut stream = StreamDecoder::default();
    let gen = generate(exec.as_mut(), &tok, &mut sampler, &prompt, a.n, a.ignore_eos, |id| {
        if !json {
            write(&mut out, &stream.push(&tok, id))?;
            out.flush().map_err(|e| Error::Usage(format!("writing to stdout: {e}")))?;
        }
        Ok(())
    })?;
    if json {
        let v = report(&gen, &tok, &exec.name(), seed, load_ms);
        write(&mut out, &format!("{v}\n"))?;
    } else {
        write(&mut out, &format!("{}\n", stream.finish()))?;
        eprintln!("lanterna: load {load_ms:.0} ms | {}", summary(&gen));
    }
    if gen.stop == lanterna::generate::StopReason::Interrupted {
        return Err(Error::Interrupted);
    }
    Ok(())
}

fn write(out: &mut impl Write, s: &str) -> Result<()> {
    out.write_all(s.as_bytes()).map_err(|e| Error::Usage(format!("writing to stdout: {e}")))
}

/// `--json`'s one object.
fn report(gen: &Generation, tok: &Tokenizer, device: &str, seed: u64, load_ms: f64) -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": gen.prompt_tokens,
        "tokens": gen.tokens,
        "text": tok.decode(&gen.tokens),
        "stop": gen.stop.as_str(),
        "device": device,
        "seed": seed,
        "timings": {
            "load_ms": load_ms,
            "prompt_ms": gen.prompt_ms,
            "prompt_tokens_per_s": gen.prompt_tokens_per_s(),
            "decode_ms": gen.decode_ms,
            "decode_tokens_per_s": gen.decode_tokens_per_s(),
        },
    })
}

/// The closing line's speeds and stop reason.
fn summary(gen: &Generation) -> String {
    format!(
        "prompt {} tokens, {:.1} tokens/s | decode {} tokens, {:.1} tokens/s | stop: {}",
        gen.prompt_tokens.len(),
        gen.prompt_tokens_per_s(),
        gen.decode_steps,
        gen.decode_tokens_per_s(),
        gen.stop.as_str()
    )
}
