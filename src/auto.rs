//! `--device auto` where the only adapters are software ones (lavapipe, llvmpipe GL): the
//! "GPU" then runs on the same CPU cores as the CPU reference, and either may decode a
//! model faster. Each is timed once per adapter, driver and model, and the rates are kept
//! beside the tuner's cache (`gpu::tune::cache_path` with `.auto.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::generate::Executor;
use crate::gguf::GgufFile;
use crate::gpu::tune::{read_json, write_json};
use crate::sampler::argmax;

/// Greedy decode steps timed per executor, after one untimed step that compiles the GPU's
/// pipelines and warms the caches: enough to tell a 2× difference apart, short enough
/// (about 1 s on lavapipe for SmolLM2) to run on a model's first use.
pub const AUTO_STEPS: usize = 8;

/// Decode rates in tokens/s of the software adapter and of the CPU reference.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Rates {
    pub gpu: f64,
    pub cpu: f64,
}

impl Rates {
    pub fn gpu_wins(&self) -> bool {
        self.gpu >= self.cpu
    }
}

/// Tokens/s of greedy decoding on `exec` from a one-token prompt; needs a context of
/// AUTO_STEPS + 2 positions.
pub fn decode_rate(exec: &mut dyn Executor) -> Result<f64> {
    if exec.n_ctx() < AUTO_STEPS + 2 {
        return Err(Error::Context(format!("timing the devices needs a context of {} positions", AUTO_STEPS + 2)));
    }
    exec.reset();
    let mut t = argmax(exec.prefill(&[1], 0)?);
    t = argmax(exec.forward(t, 1)?);
    let t0 = Instant::now();
    for i in 0..AUTO_STEPS {
        t = argmax(exec.forward(t, 2 + i)?);
    }
    exec.reset();
    Ok(AUTO_STEPS as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}

/// A model's identity for the cache: its name, architecture and size.
pub fn model_key(g: &GgufFile) -> String {
    let name = g.get("general.name").and_then(|v| v.as_str()).unwrap_or("unnamed");
    let arch = g.get("general.architecture").and_then(|v| v.as_str()).unwrap_or("?");
    format!("{name} ({arch}, {} bytes)", g.file_size())
}

/// An adapter's identity for the cache: name, driver and backend.
pub fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!("{} | {} {} | {:?}", info.name, info.driver, info.driver_info, info.backend)
}

pub fn cache_path() -> PathBuf {
    crate::gpu::tune::cache_path().with_extension("auto.json")
}

/// adapter key → model key → rates.
type Cache = BTreeMap<String, BTreeMap<String, Rates>>;

pub fn cached(adapter: &str, model: &str) -> Option<Rates> {
    read_json::<Cache>(&cache_path()).get(adapter)?.get(model).copied()
}

/// Remember `rates` for this adapter and model.
pub fn save(adapter: &str, model: &str, rates: Rates) -> Result<PathBuf> {
    let path = cache_path();
    let mut cache: Cache = read_json(&path);
    cache.entry(adapter.to_string()).or_default().insert(model.to_string(), rates);
    write_json(&path, &cache)?;
    Ok(path)
}
