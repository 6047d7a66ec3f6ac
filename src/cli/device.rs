//! The device arguments every command that runs a model shares, flattened into each.

use clap::{Args, ValueEnum};
use lanterna::cpu::CpuModel;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::gpu::context::{adapters, parse_backends};
use lanterna::gpu::{AdapterChoice, GpuModel};
use lanterna::model::{Config, KvType};
use lanterna::{auto, Error, Result};

#[derive(Clone, Copy, ValueEnum)]
pub enum Device {
    /// The GPU when an adapter exists, else the CPU.
    Auto,
    Gpu,
    /// The plain f32 reference path.
    Cpu,
}

/// Which GPU adapter: `--backend`, `--adapter`.
#[derive(Args, Clone)]
pub struct AdapterArgs {
    /// GPU backend: vulkan, metal, dx12 or gl (default: any; env LANTERNA_BACKEND).
    #[arg(long)]
    pub backend: Option<String>,
    /// GPU adapter index from `lanterna devices` (env LANTERNA_ADAPTER).
    #[arg(long)]
    pub adapter: Option<usize>,
}

impl AdapterArgs {
    pub fn choice(&self) -> Result<AdapterChoice> {
        AdapterChoice::from_args(self.backend.clone(), self.adapter)
    }
}

/// Where a model runs: `--device` and the adapter.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    #[command(flatten)]
    pub gpu: AdapterArgs,
    #[command(flatten)]
    pub tune: TuneArgs,
    #[command(flatten)]
    pub kv: KvArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KvTypeArg {
    F32,
    F16,
}

/// `--kv-type`: how the KV cache keeps keys and values, on either executor.
#[derive(Args, Clone)]
pub struct KvArgs {
    /// KV cache type: f16 halves its memory (the CPU reference rounds to f16 alike)
    #[arg(long = "kv-type", value_enum, default_value_t = KvTypeArg::F32)]
    pub kv_type: KvTypeArg,
}

impl KvArgs {
    /// `cfg` with the cache type asked for (an error where the model cannot keep it).
    pub fn apply(&self, cfg: Config) -> Result<Config> {
        cfg.with_kv_type(match self.kv_type {
            KvTypeArg::F32 => KvType::F32,
            KvTypeArg::F16 => KvType::F16,
        })
    }
}

/// `--no-tune`: whether the GPU's matvec geometry comes from the tuner.
#[derive(Args, Clone)]
pub struct TuneArgs {
    /// Use the default matvec shapes instead of tuned ones: no timing on the first run of
    /// a model on an adapter, no cached choices (env LANTERNA_NO_TUNE=1).
    #[arg(long)]
    pub no_tune: bool,
}

impl TuneArgs {
    /// The tuner's shapes for `m`: cached, or timed now on the first run (see `gpu::tune`).
    pub fn prepare(&self, m: &mut GpuModel) -> Result<()> {
        let off = self.no_tune || std::env::var("LANTERNA_NO_TUNE").is_ok_and(|v| !v.is_empty() && v != "0");
        lanterna::gpu::tune::prepare(m, off)
    }
}

/// `--ctx`: the context size in tokens.
#[derive(Args, Clone)]
pub struct CtxArgs {
    /// Context size in tokens (default: the model's, at most 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
}

impl CtxArgs {
    pub fn n_ctx(&self, cfg: &Config) -> Result<usize> {
        match self.ctx.unwrap_or(cfg.n_ctx_train.min(4096)) {
            0 => Err(Error::Usage("--ctx must be at least 1".into())),
            n => Ok(n),
        }
    }
}

impl DeviceArgs {
    /// The executor `--device` asks for. `auto` takes a real GPU when there is one; where
    /// the only adapter is a software one it takes whichever of it and the CPU reference
    /// decodes this model faster (`auto.rs`); with no adapter it falls back to the CPU.
    /// Each says why on stderr. `loaded` sees the GPU model once uploaded.
    pub fn load(
        &self,
        g: &GgufFile,
        cfg: Config,
        n_ctx: usize,
        loaded: impl FnOnce(&GpuModel),
    ) -> Result<Box<dyn Executor>> {
        let choice = self.gpu.choice()?;
        let cfg = self.kv.apply(cfg)?;
        let gpu = match self.device {
            Device::Gpu => true,
            Device::Cpu => false,
            Device::Auto => {
                let list = adapters(parse_backends(choice.backend.as_deref())?);
                let Some(adapter) = list.into_iter().nth(choice.index.unwrap_or(0)) else {
                    eprintln!("lanterna: no GPU adapter found; running on the CPU reference path");
                    return Ok(Box::new(CpuModel::load(g, cfg, n_ctx)?));
                };
                let info = adapter.get_info();
                info.device_type != wgpu::DeviceType::Cpu || self.software_gpu_wins(g, &cfg, &info)?
            }
        };
        if gpu {
            let mut m = GpuModel::load(g, cfg, n_ctx, &choice)?;
            self.tune.prepare(&mut m)?;
            loaded(&m);
            return Ok(Box::new(m));
        }
        Ok(Box::new(CpuModel::load(g, cfg, n_ctx)?))
    }

    /// Whether the software adapter `info` decodes this model faster than the CPU
    /// reference: cached, or timed now (both executors loaded once, at a short context).
    fn software_gpu_wins(&self, g: &GgufFile, cfg: &Config, info: &wgpu::AdapterInfo) -> Result<bool> {
        let (adapter, model) = (auto::adapter_key(info), auto::model_key(g));
        let (rates, from) = match auto::cached(&adapter, &model) {
            Some(r) => (r, format!("cached in {}", auto::cache_path().display())),
            None => {
                eprintln!("lanterna: --device auto: {} is a software adapter; timing it against the CPU reference (once for this model)", info.name);
                let short = auto::AUTO_STEPS + 2;
                let mut m = GpuModel::load(g, cfg.clone(), short, &self.gpu.choice()?)?;
                self.tune.prepare(&mut m)?;
                let gpu = auto::decode_rate(&mut m)?;
                drop(m);
                let cpu = auto::decode_rate(&mut CpuModel::load(g, cfg.clone(), short)?)?;
                let r = auto::Rates { gpu, cpu };
                (r, format!("measured now, cached in {}", auto::save(&adapter, &model, r)?.display()))
            }
        };
        let on =
            if rates.gpu_wins() { format!("the GPU adapter ({})", info.name) } else { "the CPU reference path".into() };
        eprintln!(
            "lanterna: --device auto: {} is a software adapter and decodes this model at {:.1} tokens/s, the CPU reference at {:.1} ({from}): running on {on}",
            info.name, rates.gpu, rates.cpu
        );
        Ok(rates.gpu_wins())
    }
}
