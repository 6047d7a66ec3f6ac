//! `lanterna tune`: time the candidate matvec shapes of a model on this adapter, print
//! what was chosen per matrix against the default, and cache it for later runs.

use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::gpu::tune::{self, Choice};
use lanterna::gpu::GpuModel;
use lanterna::model::Config;
use lanterna::{fetch, Result};

use super::device::{AdapterArgs, CtxArgs};

#[derive(Args)]
pub struct TuneArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// Decode steps timed per candidate (the fastest counts), after one warm-up.
    #[arg(long, default_value_t = tune::TUNE_STEPS)]
    steps: usize,
    #[command(flatten)]
    ctx: CtxArgs,
    #[command(flatten)]
    gpu: AdapterArgs,
}

pub fn run(a: TuneArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = Config::from_gguf(&g)?;
    let n_ctx = a.ctx.n_ctx(&cfg)?.min(512);
    let mut m = GpuModel::load(&g, cfg, n_ctx, &a.gpu.choice()?)?;
    println!("adapter: {}", m.tune_adapter_key());
    let choices = tune::tune(&mut m, a.steps.max(1))?;
    print_choices(&choices);
    let path = tune::save(&m.tune_adapter_key(), &choices)?;
    println!("saved to {}", path.display());
    Ok(())
}

fn print_choices(choices: &[Choice]) {
    println!("| matrix (type cols x rows) | default wg/tpr/rows | µs | chosen | µs | speed-up |");
    println!("|---|---|---|---|---|---|");
    let (mut d_sum, mut b_sum) = (0.0, 0.0);
    for c in choices {
        let ((ds, dt), (bs, bt)) = (c.default, c.best);
        println!("| {} | {ds} | {:.0} | {bs} | {:.0} | {:.2}x |", c.key, dt / 1e3, bt / 1e3, dt / bt.max(1.0));
        (d_sum, b_sum) = (d_sum + dt, b_sum + bt);
    }
    println!("matvecs per decoded token: {:.2} ms by default, {:.2} ms tuned", d_sum / 1e6, b_sum / 1e6);
}
