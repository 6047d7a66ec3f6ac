use clap::Args;
use lanterna::quant::GgmlType;
use lanterna::{Error, Result};

#[derive(Args)]
pub struct PlanArgs {
    /// Parameter count: 7B, 1.5B, 135M, 175B or a plain number.
    #[arg(long)]
    params: String,
    /// Context size for the KV cache (needs --layers and --embd).
    #[arg(long)]
    ctx: Option<usize>,
    /// Transformer layers (for the KV cache).
    #[arg(long)]
    layers: Option<u64>,
    /// Model width (for the KV cache).
    #[arg(long)]
    embd: Option<u64>,
    /// Width of K (and of V) per position when it differs from --embd (grouped-query
    /// attention: key/value heads × head width).
    #[arg(long)]
    kv_embd: Option<u64>,
}

/// "7B" → 7e9, "135M" → 1.35e8, "1.5b", "175B", "3000000".
pub fn parse_params(s: &str) -> Result<f64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('B') => (&t[..t.len() - 1], 1e9),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('T') => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v * mult),
        _ => Err(Error::Usage(format!("--params '{s}': expected a count like 7B, 135M or 175B"))),
    }
}

fn gb(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// The seed's rule of thumb, GB per billion parameters "in practice" (weights plus the
/// overhead of a running framework): FP32 5, FP16 2.5, INT8 1.25.
fn rule_of_thumb(ty: GgmlType) -> Option<f64> {
    match ty {
        GgmlType::F32 => Some(5.0),
        GgmlType::F16 => Some(2.5),
        GgmlType::Q8_0 => Some(1.25),
        _ => None,
    }
}

pub fn run(a: PlanArgs) -> Result<()> {
    let p = parse_params(&a.params)?;
    let bytes = |ty: GgmlType| p * ty.type_size() as f64 / ty.block_size() as f64;
    println!("{:.2} B parameters in F16: {} of weights alone", p / 1e9, gb(bytes(GgmlType::F16)));
    println!();
    println!("| type | bits/weight | weights (exact) | rule of thumb, in practice |");
    println!("|---|---:|---:|---:|");
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q4_0] {
        let bits = 8.0 * ty.type_size() as f64 / ty.block_size() as f64;
        let thumb = rule_of_thumb(ty).map_or("-".to_string(), |g| gb(g * p));
        println!("| {} | {bits:.2} | {} | {thumb} |", ty.name(), gb(bytes(ty)));
    }
    if let Some(ctx) = a.ctx {
        let (Some(layers), Some(embd)) = (a.layers, a.embd) else {
            return Err(Error::Usage(
                "the KV cache needs --layers and --embd (and --kv-embd for grouped-query attention)".into(),
            ));
        };
        let kv = a.kv_embd.unwrap_or(embd);
        let per_pos = 2 * layers * kv; // K and V, every layer
        println!();
        println!(
            "KV cache at context {ctx}: {} in f32 (as Lanterna keeps it), {} in f16 ({} layers × K and V × {kv} values per position)",
            gb((per_pos * 4 * ctx as u64) as f64),
            gb((per_pos * 2 * ctx as u64) as f64),
            layers
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_with_suffixes() {
        assert_eq!(parse_params("7B").unwrap(), 7e9);
        assert_eq!(parse_params("135m").unwrap(), 1.35e8);
        assert_eq!(parse_params("1.5B").unwrap(), 1.5e9);
        assert_eq!(parse_params("3000").unwrap(), 3000.0);
        assert!(parse_params("lots").is_err() && parse_params("-1B").is_err() && parse_params("B").is_err());
    }
}
