use std::collections::BTreeMap;

use clap::Args;
use lanterna::gguf::GgufFile;
use lanterna::gpu::context::{adapters, device_memory, parse_backends};
use lanterna::gpu::plan::{human_bytes, Category, MemoryPlan};
use lanterna::gpu::AdapterChoice;
use lanterna::model::Config;
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

use super::device::{AdapterArgs, CtxArgs, KvArgs};

#[derive(Args)]
pub struct InfoArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// The memory plan's context, and the adapter it is compared with.
    #[command(flatten)]
    ctx: CtxArgs,
    #[command(flatten)]
    kv: KvArgs,
    #[command(flatten)]
    gpu: AdapterArgs,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

pub fn run(a: InfoArgs) -> Result<()> {
    let path = fetch::resolve(a.model.as_deref())?;
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
    println!(
        "heads:         {} query, {} key/value (head width {}, value width {})",
        cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.head_dim_v
    );
    println!("vocabulary:    {}", cfg.n_vocab);
    println!("context (train): {}", cfg.n_ctx_train);
    println!(
        "rope:          {:?}, {} of {} dims rotated, base {}",
        cfg.rope_style, cfg.n_rot, cfg.head_dim, cfg.layers[0].rope_base
    );
    let swa: Vec<usize> = cfg.layers.iter().enumerate().filter(|(_, l)| l.window.is_some()).map(|(i, _)| i).collect();
    if !swa.is_empty() {
        let w = cfg.layers[swa[0]].window.unwrap_or(0);
        println!(
            "sliding window: {w} on {} of {} layers (rope base {} there)",
            swa.len(),
            cfg.n_layer,
            cfg.layers[swa[0]].rope_base
        );
    }
    println!("rms eps:       {:e}", cfg.rms_eps);
    println!("activation:    {:?}", cfg.act);
    print_tensors(&g);
    let tok = Tokenizer::from_gguf(&g)?;
    println!(
        "tokenizer:     {:?} (pre '{}'), {} tokens, BOS {:?} (added: {}), EOS {:?}",
        tok.kind,
        tok.pre,
        tok.n_vocab(),
        tok.bos,
        tok.add_bos,
        tok.eos
    );
    let cfg = a.kv.apply(cfg)?;
    print_plan(&MemoryPlan::new(&g, &cfg, a.ctx.n_ctx(&cfg)?)?, &a.gpu.choice()?)
}

/// Tensors by type: count, weights, bytes; and the parameter count.
fn print_tensors(g: &GgufFile) {
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
}

/// The GPU memory plan, by kind, and whether it fits the chosen adapter.
fn print_plan(plan: &MemoryPlan, choice: &AdapterChoice) -> Result<()> {
    println!("GPU memory plan (context {}, prompt chunks of {}):", plan.n_ctx, plan.ubatch);
    for it in plan.items.iter().filter(|i| i.category == Category::Weights) {
        println!(
            "  weights {:<8} {:>12}  ({} tensors)",
            it.ty.map_or("", |t| t.name()),
            human_bytes(it.bytes),
            it.count
        );
    }
    for c in [Category::KvCache, Category::Activations, Category::Other] {
        println!("  {:<16} {:>12}", c.name(), human_bytes(plan.by_category(c)));
    }
    let total = plan.total();
    println!("  {:<16} {:>12}  ({total} bytes)", "total", human_bytes(total));

    let list = adapters(parse_backends(choice.backend.as_deref())?);
    let adapter = match choice.index {
        Some(i) => list
            .into_iter()
            .nth(i)
            .ok_or_else(|| Error::Usage(format!("adapter {i} does not exist; see `lanterna devices`")))?,
        None => match list.into_iter().next() {
            Some(a) => a,
            None => {
                println!("adapter:       none found; the plan above is what a GPU would need");
                return Ok(());
            }
        },
    };
    let info = adapter.get_info();
    let limits = adapter.limits();
    let memory = device_memory(&adapter);
    println!(
        "adapter:       {} ({:?}): buffers up to {}, bindings up to {}, memory {}",
        info.name,
        info.backend,
        human_bytes(limits.max_buffer_size),
        human_bytes(limits.max_storage_buffer_binding_size),
        memory.map_or("not reported".to_string(), human_bytes)
    );
    if let Err(e) = plan.check(&limits, &info.name) {
        println!("verdict:       {e}");
        return Ok(());
    }
    match memory {
        Some(m) if total > m => println!(
            "verdict:       does not fit: need {}, the adapter offers {} — try {}",
            human_bytes(total),
            human_bytes(m),
            plan.alternatives(m)
        ),
        Some(m) => println!(
            "verdict:       fits ({} of {}, {:.1}%)",
            human_bytes(total),
            human_bytes(m),
            100.0 * total as f64 / m as f64
        ),
        None => {
            println!("verdict:       fits the adapter's buffer and binding limits (its memory size is not reported)")
        }
    }
    Ok(())
}
