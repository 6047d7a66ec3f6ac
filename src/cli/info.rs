use std::collections::BTreeMap;

use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::tokenizer::Tokenizer;
use lanterna::{models, Result};

#[derive(Args)]
pub struct InfoArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

pub fn run(a: InfoArgs) -> Result<()> {
    let path = models::resolve(a.model.as_deref())?;
    let g = GgufFile::open(&path)?;
    println!("file:          {}", path.display());
    println!("file size:     {} ({} bytes)", mib(g.file_size()), g.file_size());
    println!("GGUF version:  {}", g.version);
    if let Some(n) = g.get("general.name").and_then(|v| v.as_str()) {
        println!("name:          {n}");
    }
    let cfg = Config::from_gguf(&g)?;
    println!("architecture:  {} — {}", g.get_str("general.architecture")?, cfg.arch.family());
    println!("layers:        {}", cfg.n_layer);
    println!("embedding:     {}", cfg.n_embd);
    println!("feed-forward:  {}", cfg.n_ff);
    println!("heads:         {} query, {} key/value (head width {}, value width {})", cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.head_dim_v);
    println!("vocabulary:    {}", cfg.n_vocab);
    println!("context (train): {}", cfg.n_ctx_train);
    println!("rope:          {:?}, {} of {} dims rotated, base {}", cfg.rope_style, cfg.n_rot, cfg.head_dim, cfg.layers[0].rope_base);
    let swa: Vec<usize> = cfg.layers.iter().enumerate().filter(|(_, l)| l.window.is_some()).map(|(i, _)| i).collect();
    if !swa.is_empty() {
        let w = cfg.layers[swa[0]].window.unwrap_or(0);
        println!("sliding window: {w} on {} of {} layers (rope base {} there)", swa.len(), cfg.n_layer, cfg.layers[swa[0]].rope_base);
    }
    println!("rms eps:       {:e}", cfg.rms_eps);
    println!("activation:    {:?}", cfg.act);

    let mut by_type: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    let mut params = 0u64;
    for t in &g.tensors {
        let e = by_type.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_elements;
        e.2 += t.n_bytes;
        params += t.n_elements;
    }
    println!("parameters:    {params} ({:.1} M)", params as f64 / 1e6);
    println!("tensors:       {}", g.tensors.len());
    for (ty, (n, el, bytes)) in &by_type {
        println!("  {ty:<6} {n:>4} tensors  {el:>12} weights  {:>12}", mib(*bytes));
    }
    let tok = Tokenizer::from_gguf(&g)?;
    println!(
        "tokenizer:     {:?} (pre '{}'), {} tokens, BOS {:?} (added: {}), EOS {:?}",
        tok.kind, tok.pre, tok.n_vocab(), tok.bos, tok.add_bos, tok.eos
    );
    Ok(())
}
