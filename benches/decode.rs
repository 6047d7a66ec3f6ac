//! Decode tokens/s of both real models on the GPU executor (a benchmark, not a test).
//!
//!     cargo bench --bench decode [-- smollm2|gemma3] [-- --runs N --tokens N]
//!
//! Each run generates `tokens` tokens greedily after a short prompt; the first run is a
//! warm-up (pipeline compilation, caches) and is not counted. Reports mean ± sd of the
//! decode rate and the weight bytes read per decoded token.

use lanterna::fetch;
use lanterna::generate::generate;
use lanterna::gguf::GgufFile;
use lanterna::gpu::{AdapterChoice, GpuModel};
use lanterna::model::Config;
use lanterna::sampler::{Sampler, SamplerConfig};
use lanterna::tokenizer::Tokenizer;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> lanterna::Result<()> {
    std::env::set_var("NODEVICE_SELECT", "1");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = arg(&args, "--runs", 5);
    let tokens = arg(&args, "--tokens", 16);
    let which: Vec<&fetch::KnownModel> = fetch::KNOWN
        .iter()
        .filter(|m| args.iter().any(|a| a == m.name) || !args.iter().any(|a| fetch::known(a).is_some()))
        .collect();
    println!("| model | device | decode tokens/s | weight MiB read per token | runs × tokens |");
    println!("|---|---|---|---|---|");
    for m in which {
        let g = GgufFile::open(fetch::ensure(m)?)?;
        let cfg = Config::from_gguf(&g)?;
        let tok = Tokenizer::from_gguf(&g)?;
        let mut exec = GpuModel::load(&g, cfg, 256, &AdapterChoice::from_args(None, None)?)?;
        let prompt = tok.encode("The capital of France is")?;
        let mut rates = Vec::new();
        for r in 0..=runs {
            let mut s = Sampler::new(SamplerConfig { temperature: 0.0, ..Default::default() });
            let gen = generate(&mut exec, &tok, &mut s, &prompt, tokens + 1, true, |_| Ok(()))?;
            if r > 0 {
                rates.push(gen.decode_tokens_per_s());
            }
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let sd = (rates.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (rates.len().max(2) - 1) as f64).sqrt();
        let bytes: u64 = exec.upload_bytes;
        println!(
            "| {} | {} | {mean:.2} ± {sd:.2} | {:.1} | {runs} × {tokens} |",
            m.file,
            exec.ctx.describe(),
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
