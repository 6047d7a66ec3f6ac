use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::gpu::plan::human_bytes;
use lanterna::quant::GgmlType;
use lanterna::requantize::quantize_model;
use lanterna::{Error, Result};

#[derive(Args)]
pub struct QuantizeArgs {
    /// The GGUF to read (F32, F16 or BF16 weights).
    input: PathBuf,
    /// The GGUF to write (written to OUT.tmp, then renamed: never half a file).
    output: PathBuf,
    /// q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k.
    #[arg(short, long = "type")]
    ty: String,
    /// Also re-quantize tensors that are already quantized (loses precision twice).
    #[arg(long)]
    allow_requantize: bool,
}

fn parse_type(s: &str) -> Result<GgmlType> {
    let want = s.to_ascii_uppercase();
    GgmlType::ALL
        .into_iter()
        .find(|t| t.name() == want)
        .ok_or_else(|| Error::Usage(format!("unknown type '{s}' (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)")))
}

/// One line redrawn in place: `[#######.......] 12/30  blk.3.ffn_up.weight`.
fn progress(i: usize, n: usize, name: &str) {
    const WIDTH: usize = 30;
    let done = (i + 1) * WIDTH / n.max(1);
    eprint!("\r[{}{}] {}/{} {:<40.40}", "#".repeat(done), ".".repeat(WIDTH - done), i + 1, n, name);
    let _ = std::io::stderr().flush();
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let target = parse_type(&a.ty)?;
    if a.input == a.output {
        return Err(Error::Usage("the output must be a different file from the input".into()));
    }
    let g = GgufFile::open(&a.input)?;
    let t0 = Instant::now();
    let mut notes = Vec::new();
    let w = quantize_model(&g, target, a.allow_requantize, |i, n, r| {
        progress(i, n, &r.name);
        if let Some(note) = &r.note {
            notes.push(format!("{}: {note}", r.name));
        }
    })?;
    eprintln!();
    if notes.iter().any(|n| n.contains("requantized")) {
        eprintln!("lanterna: warning: tensors that were already quantized were quantized again; quality suffers twice");
    }
    for n in &notes {
        eprintln!("lanterna: {n}");
    }
    let bytes = w.to_bytes();
    let tmp = a.output.with_extension("tmp");
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| Error::Io { path, source }
    };
    std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &a.output).map_err(io(&a.output))?;
    let before = g.file_size();
    println!(
        "{} → {}: {} → {} ({:.1}% of the input), {} tensors, {:.1} s",
        a.input.display(),
        a.output.display(),
        human_bytes(before),
        human_bytes(bytes.len() as u64),
        100.0 * bytes.len() as f64 / before as f64,
        w.tensors.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
