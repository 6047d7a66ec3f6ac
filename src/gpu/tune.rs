//! The matvec tuner: time candidate geometries (`MatvecShape`) of every matrix a model
//! decodes with, on this adapter, keep the fastest per matrix, and remember it per adapter
//! and driver in the user's cache directory, because no default can be right on every GPU.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::executor::GpuModel;
use super::kernels::{AdapterClass, MatvecShape};
use crate::error::{Error, Result};

/// The candidates `LANTERNA_TUNE_SHAPES` names ("16/1/8,16/1/16": threads/lanes/rows),
/// else those of the class (`candidates`).
pub fn candidates_from_env(class: AdapterClass) -> Result<Vec<MatvecShape>> {
    let Ok(list) = std::env::var("LANTERNA_TUNE_SHAPES") else { return Ok(candidates(class)) };
    list.split(',')
        .map(|item| {
            let n: Vec<u32> = item.trim().split('/').filter_map(|v| v.parse().ok()).collect();
            match n[..] {
                [wg, tpr, rows] if (MatvecShape { wg, tpr, rows }).is_valid() => Ok(MatvecShape { wg, tpr, rows }),
                _ => Err(Error::Usage(format!(
                    "LANTERNA_TUNE_SHAPES: '{item}' is not threads/lanes/rows (powers of two up to 64, lanes ≤ threads, rows 1 to 16)"
                ))),
            }
        })
        .collect()
}

/// The geometries worth timing on a class of adapter. CPU adapters: one lane per row
/// (a lane is a SIMD lane; splitting a row only adds a reduction), rows per lane and
/// workgroup size around the default. GPUs: lanes per row from a quarter of a subgroup to
/// a whole workgroup, one or two rows per slot.
pub fn candidates(class: AdapterClass) -> Vec<MatvecShape> {
    let shapes: Vec<(u32, u32, u32)> = match class {
        AdapterClass::Cpu => vec![(16, 1, 8), (16, 1, 4), (16, 1, 16), (32, 1, 8), (8, 1, 8), (64, 1, 1)],
        AdapterClass::Gpu => vec![(64, 32, 1), (64, 8, 1), (64, 16, 1), (64, 64, 1), (64, 32, 2), (64, 16, 2)],
    };
    shapes.into_iter().map(|(wg, tpr, rows)| MatvecShape { wg, tpr, rows }).collect()
}

/// One matrix's result: the default's time and the fastest candidate's.
#[derive(Clone, Debug)]
pub struct Choice {
    pub key: String,
    pub default: (MatvecShape, f64),
    pub best: (MatvecShape, f64),
}

/// Time every candidate on `m` (`steps` decode steps each, the fastest of each matrix's
/// time taken) and apply the fastest per matrix. The per-matrix time is the sum over
/// its dispatches in one step (q, k, v of every layer, …).
pub fn tune(m: &mut GpuModel, steps: usize) -> Result<Vec<Choice>> {
    let default = m.matvec_default();
    let mut shapes = candidates_from_env(m.adapter_class())?;
    if !shapes.contains(&default) {
        shapes.insert(0, default);
    }
    let mut times: BTreeMap<String, Vec<(MatvecShape, f64)>> = BTreeMap::new();
    for &s in &shapes {
        for (key, ns) in m.time_matvecs(s, steps)? {
            times.entry(key).or_default().push((s, ns));
        }
    }
    m.set_matvec_default(default);
    let mut out = Vec::new();
    for (key, t) in times {
        let best = *t.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("one time per candidate");
        let dflt = *t.iter().find(|(s, _)| *s == default).expect("the default is a candidate");
        out.push(Choice { key, default: dflt, best });
    }
    let chosen = out.iter().map(|c| (c.key.clone(), c.best.0)).collect();
    m.apply_tuning(chosen, "tuned just now")?;
    Ok(out)
}

/// The cache file: `$LANTERNA_TUNE_CACHE`, else `$XDG_CACHE_HOME/lanterna/tune.json`,
/// else `~/.cache/lanterna/tune.json`.
pub fn cache_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LANTERNA_TUNE_CACHE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("lanterna").join("tune.json")
}

/// adapter key → matrix key → shape.
type Cache = BTreeMap<String, BTreeMap<String, MatvecShape>>;

fn read_cache(path: &PathBuf) -> Cache {
    read_json(path)
}

/// A JSON cache file's contents; a missing or unreadable one only means measuring again.
pub fn read_json<T: serde::de::DeserializeOwned + Default>(path: &PathBuf) -> T {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Write a cache whole to a temporary file, then rename it, so that two processes
/// measuring at once never leave half a file.
pub fn write_json<T: serde::Serialize>(path: &PathBuf, value: &T) -> Result<()> {
    let io = |e: std::io::Error| Error::TuneCache { path: path.clone(), msg: e.to_string() };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text =
        serde_json::to_string_pretty(value).map_err(|e| Error::TuneCache { path: path.clone(), msg: e.to_string() })?;
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The cached shapes of all `keys` on this adapter, if every one is there and valid.
pub fn cached(adapter: &str, keys: &[String]) -> Option<HashMap<String, MatvecShape>> {
    let cache = read_cache(&cache_path());
    let mine = cache.get(adapter)?;
    keys.iter().map(|k| mine.get(k).filter(|s| s.is_valid()).map(|s| (k.clone(), *s))).collect()
}

/// Add these choices to the cache (see `write_json`).
pub fn save(adapter: &str, choices: &[Choice]) -> Result<PathBuf> {
    let path = cache_path();
    let mut cache = read_cache(&path);
    let mine = cache.entry(adapter.to_string()).or_default();
    for c in choices {
        mine.insert(c.key.clone(), c.best.0);
    }
    write_json(&path, &cache)?;
    Ok(path)
}

/// Before a model runs: the cached shapes where every matrix of it has one, else tune
/// now (the first run on this adapter) and cache the result; nothing with `no_tune`.
pub fn prepare(m: &mut GpuModel, no_tune: bool) -> Result<()> {
    if no_tune {
        return Ok(());
    }
    let adapter = m.tune_adapter_key();
    if let Some(map) = cached(&adapter, &m.tune_keys()) {
        return m.apply_tuning(map, &format!("cached in {}", cache_path().display()));
    }
    eprintln!("lanterna: timing matvec shapes for this model on this adapter (once; --no-tune skips it)");
    let choices = tune(m, TUNE_STEPS)?;
    let path = save(&adapter, &choices)?;
    m.set_tuned_from(&format!("tuned now, cached in {}", path.display()));
    Ok(())
}

/// Decode steps timed per candidate: the fastest of three, after a warm-up step that
/// compiles the pipelines.
pub const TUNE_STEPS: usize = 3;
