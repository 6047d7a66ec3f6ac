use std::io::Write;
use std::time::Instant;

use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::perplexity::perplexity;
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

use super::device::DeviceArgs;

#[derive(Args)]
pub struct PerplexityArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// The text to score.
    #[arg(short = 'f', long)]
    file: std::path::PathBuf,
    /// Tokens per chunk; each chunk is scored on its second half.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    chunks: Option<usize>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Print one JSON object at the end instead of llama.cpp's text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: PerplexityArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file).map_err(|source| Error::Io { path: a.file.clone(), source })?;
    // The tokenizers work on text: say where the file stops being UTF-8 rather than guess.
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::Usage(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            a.file.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = Config::from_gguf(&g)?;
    let tok = Tokenizer::from_gguf(&g)?;
    if a.ctx < 4 {
        return Err(Error::Usage(format!("-c {} is too small: a chunk needs at least 4 tokens", a.ctx)));
    }
    let mut exec = a.device.load(&g, cfg, a.ctx, |_| {})?;
    if !a.json {
        eprintln!("lanterna: perplexity of {} on {}, chunks of {} tokens", a.file.display(), exec.name(), a.ctx);
        eprint!("calculating perplexity: ");
    }
    let t0 = Instant::now();
    let json = a.json;
    let r = perplexity(exec.as_mut(), &tok, &text, a.ctx, a.chunks, |k, ppl| {
        if !json {
            // llama.cpp's running line: [1]25.1234,[2]23.4567,...
            eprint!("[{}]{ppl:.4},", k + 1);
            let _ = std::io::stderr().flush();
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if json {
        let v = serde_json::json!({
            "model": g.path.file_name().map(|f| f.to_string_lossy().into_owned()),
            "device": exec.name(),
            "ctx": a.ctx,
            "tokens": r.n_tokens,
            "chunks": r.n_chunks,
            "scored_tokens": r.nll.count,
            "ppl": r.nll.ppl(),
            "ppl_error": r.nll.ppl_error(),
            "running": r.running,
            "seconds": secs,
        });
        println!("{v}");
    } else {
        eprintln!();
        println!("Final estimate: PPL = {:.4} +/- {:.5}", r.nll.ppl(), r.nll.ppl_error());
        eprintln!(
            "lanterna: {} tokens, {} chunks, {} tokens scored in {:.1} s",
            r.n_tokens, r.n_chunks, r.nll.count, secs
        );
    }
    Ok(())
}
