use clap::Args;
use lanterna::compare::{compare, CompareReport, Tolerances};
use lanterna::cpu::CpuModel;
use lanterna::generate::generate;
use lanterna::gguf::GgufFile;
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::sampler::{Sampler, SamplerConfig};
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

use super::device::{AdapterArgs, KvArgs};

#[derive(Args)]
pub struct CompareArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    #[arg(short, long)]
    prompt: String,
    /// Tokens the CPU generates greedily after the prompt; both executors are then fed
    /// the same prompt + continuation.
    #[arg(short = 'n', long = "n-predict", default_value_t = 8)]
    n: usize,
    /// Largest NMSE allowed for any intermediate or the logits.
    #[arg(long, default_value_t = Tolerances::default().nmse)]
    tol: f64,
    /// Largest KL divergence of the next-token distributions allowed at any position.
    #[arg(long, default_value_t = Tolerances::default().kl)]
    kl_tol: f64,
    #[arg(long)]
    json: bool,
    /// Add this much to the output of the named GPU dispatch (e.g. blk.3.ffn_down):
    /// a deliberate fault, to check that compare finds it.
    #[arg(long, value_name = "LABEL")]
    perturb: Option<String>,
    #[arg(long, default_value_t = 0.5)]
    perturb_by: f32,
    #[command(flatten)]
    kv: KvArgs,
    #[command(flatten)]
    gpu: AdapterArgs,
}

pub fn run(a: CompareArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = a.kv.apply(Config::from_gguf(&g)?)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let prompt = tok.encode(&a.prompt)?;
    let n_ctx = prompt.len() + a.n + 1;
    let mut cpu = CpuModel::load(&g, cfg.clone(), n_ctx)?;
    let mut gpu = GpuModel::load(&g, cfg, n_ctx, &a.gpu.choice()?)?;
    if let Some(label) = &a.perturb {
        gpu.perturb(label, a.perturb_by)?;
    }
    let mut greedy = Sampler::new(SamplerConfig { temperature: 0.0, ..Default::default() });
    let cont = generate(&mut cpu, &tok, &mut greedy, &prompt, a.n, true, |_| Ok(()))?;
    let mut seq = prompt.clone();
    seq.extend(&cont.tokens);
    let tol = Tolerances { nmse: a.tol, kl: a.kl_tol, ..Default::default() };
    let r = compare(&mut cpu, &mut gpu, &seq, tol)?;

    if a.json {
        println!("{}", serde_json::to_string(&r).map_err(|e| Error::Usage(e.to_string()))?);
    } else {
        let gpu_name = gpu.ctx.describe();
        println!(
            "GPU {gpu_name} vs CPU f32 reference, {} positions (teacher-forced), NMSE tolerance {:e}",
            seq.len(),
            a.tol
        );
        print_tables(&r);
    }
    if r.pass {
        if !a.json {
            println!("\nPASS: every tensor and position within tolerance");
        }
        Ok(())
    } else {
        let what = match r.first_over {
            Some(i) => {
                let t = &r.tensors[i];
                format!(
                    "first over tolerance: {} in layer {} (NMSE {:.3e} > {:e})",
                    t.tensor,
                    t.layer.map_or("-".into(), |l| l.to_string()),
                    t.nmse,
                    a.tol
                )
            }
            None => "the next-token distributions differ (see the logits table)".into(),
        };
        Err(Error::Usage(format!("compare failed: {what}")))
    }
}

fn print_tables(r: &CompareReport) {
    println!("{:<10} {:>5} {:>12} {:>12}", "tensor", "layer", "max |Δ|", "NMSE");
    for (i, t) in r.tensors.iter().enumerate() {
        let layer = t.layer.map_or("-".to_string(), |l| l.to_string());
        let mark = if Some(i) == r.first_over {
            "  <-- first over tolerance"
        } else if t.over {
            "  over"
        } else {
            ""
        };
        println!("{:<10} {:>5} {:>12.3e} {:>12.3e}{mark}", t.tensor, layer, t.max_abs, t.nmse);
    }
    println!("\n{:>4} {:>8} {:>9} {:>9} {:>8} {:>10}", "pos", "token", "cpu top1", "gpu top1", "margin", "KL");
    for l in &r.logits {
        let over = if l.over { "  over" } else { "" };
        let (pos, token, c, g, m, kl) = (l.pos, l.token, l.cpu_top1, l.gpu_top1, l.cpu_margin, l.kl);
        println!("{pos:>4} {token:>8} {c:>9} {g:>9} {m:>8.3} {kl:>10.2e}{over}");
    }
}
