//! The GPU context: instance over every native backend, adapter choice, and a device
//! created with the adapter's own limits and whichever optional features it offers.

use crate::error::{Error, Result};

/// Optional features used when present; everything has a fallback without them.
pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::SUBGROUP
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// vulkan, metal, dx12 or gl; None: all.
    pub backend: Option<String>,
    /// Index into the list `lanterna devices` prints.
    pub index: Option<usize>,
}

impl AdapterChoice {
    /// `--backend` / `--adapter`, falling back to `LANTERNA_BACKEND` / `LANTERNA_ADAPTER`.
    pub fn from_args(backend: Option<String>, index: Option<usize>) -> Result<Self> {
        let backend = backend.or_else(|| std::env::var("LANTERNA_BACKEND").ok());
        let index = match index {
            Some(i) => Some(i),
            None => match std::env::var("LANTERNA_ADAPTER") {
                Ok(s) => Some(
                    s.parse().map_err(|_| Error::Usage(format!("LANTERNA_ADAPTER='{s}' is not an adapter index")))?,
                ),
                Err(_) => None,
            },
        };
        Ok(AdapterChoice { backend, index })
    }
}

pub fn parse_backends(name: Option<&str>) -> Result<wgpu::Backends> {
    Ok(match name.map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => wgpu::Backends::all(),
        Some("vulkan") | Some("vk") => wgpu::Backends::VULKAN,
        Some("metal") => wgpu::Backends::METAL,
        Some("dx12") | Some("d3d12") => wgpu::Backends::DX12,
        Some("gl") | Some("gles") | Some("opengl") => wgpu::Backends::GL,
        Some(o) => return Err(Error::Usage(format!("unknown backend '{o}' (vulkan, metal, dx12, gl)"))),
    })
}

/// Every adapter wgpu sees on the chosen backends, in a stable order.
pub fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let mut list = pollster::block_on(instance.enumerate_adapters(backends));
    // Real GPUs first, then by backend (Vulkan/Metal/DX12 before GL), then by name.
    let rank = |a: &wgpu::Adapter| {
        let i = a.get_info();
        let dev = match i.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        };
        let be = if i.backend == wgpu::Backend::Gl { 1 } else { 0 };
        (dev, be, i.name)
    };
    list.sort_by_key(rank);
    list
}

pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The first error wgpu reported outside an error scope, or the device's loss: wgpu's
    /// default would panic; we keep it here and `check_health` turns it into an error.
    fault: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Every buffer created through this context, so that the memory plan can be checked
    /// buffer by buffer (tests/plan.rs); a few dozen bytes per buffer, made at load.
    allocations: std::sync::Mutex<Vec<Allocation>>,
}

/// One buffer the executor created: its label, size and usage.
#[derive(Clone, Debug)]
pub struct Allocation {
    pub label: String,
    pub size: u64,
    pub usage: wgpu::BufferUsages,
}

impl GpuContext {
    /// `device.create_buffer`, recorded in [`GpuContext::allocations`].
    pub fn create_buffer(&self, desc: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        self.record(desc.label, desc.size, desc.usage);
        self.device.create_buffer(desc)
    }

    /// `device.create_buffer_init`, recorded in [`GpuContext::allocations`].
    pub fn create_buffer_init(&self, desc: &wgpu::util::BufferInitDescriptor) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        // wgpu pads initialized buffers to a multiple of COPY_BUFFER_ALIGNMENT.
        let size =
            (desc.contents.len() as u64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT).max(wgpu::COPY_BUFFER_ALIGNMENT);
        self.record(desc.label, size, desc.usage);
        self.device.create_buffer_init(desc)
    }

    fn record(&self, label: Option<&str>, size: u64, usage: wgpu::BufferUsages) {
        if let Ok(mut log) = self.allocations.lock() {
            log.push(Allocation { label: label.unwrap_or("").to_string(), size, usage });
        }
    }

    /// Every buffer created through this context so far, in order.
    pub fn allocations(&self) -> Vec<Allocation> {
        self.allocations.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        let backends = parse_backends(choice.backend.as_deref())?;
        let list = adapters(backends);
        if list.is_empty() {
            return Err(Error::Gpu(format!(
                "no GPU adapter found on backends {backends:?} (on Linux without a GPU, install Mesa's lavapipe: scripts/install-lavapipe.sh)"
            )));
        }
        let adapter = match choice.index {
            Some(i) => list
                .into_iter()
                .nth(i)
                .ok_or_else(|| Error::Usage(format!("adapter {i} does not exist; see `lanterna devices`")))?,
            None => list.into_iter().next().ok_or_else(|| Error::Gpu("no adapter".into()))?,
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & OPTIONAL_FEATURES;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("lanterna"),
            required_features: features,
            // The adapter's own limits: the defaults cap buffers at 256 MiB and bindings at 128 MiB.
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("requesting a device from {}: {e}", info.name)))?;
        let fault = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let f = fault.clone();
        device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
            let msg = match &e {
                wgpu::Error::OutOfMemory { .. } => format!("out of GPU memory: {e}"),
                wgpu::Error::Validation { description, .. } => format!("rejected by validation: {description}"),
                wgpu::Error::Internal { description, .. } => format!("internal driver error: {description}"),
            };
            // wgpu's descriptions span lines; an error here is one line.
            let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
            if let Ok(mut slot) = f.lock() {
                slot.get_or_insert(msg);
            }
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut slot) = f.lock() {
                slot.get_or_insert_with(|| {
                    format!(
                        "the device was lost ({reason:?}){}",
                        if msg.is_empty() { String::new() } else { format!(": {msg}") }
                    )
                });
            }
        });
        Ok(GpuContext { adapter, info, device, queue, limits, features, fault, allocations: Default::default() })
    }

    /// An error if wgpu reported a fault (uncaptured error, device loss) since creation.
    pub fn check_health(&self) -> Result<()> {
        match self.fault.lock().ok().and_then(|s| s.clone()) {
            Some(msg) => Err(Error::Gpu(format!("{msg} ({})", self.info.name))),
            None => Ok(()),
        }
    }

    /// Wait until the GPU has finished everything submitted; `what` names the work in the error.
    pub fn wait(&self, what: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for {what}: {e}")))
    }

    /// Run `f` under a wgpu error scope of `filter`: an error wgpu reports meanwhile becomes
    /// `to_error(e)` instead of reaching the uncaptured-error handler.
    pub fn scoped<T>(
        &self,
        filter: wgpu::ErrorFilter,
        f: impl FnOnce() -> Result<T>,
        to_error: impl FnOnce(wgpu::Error) -> Error,
    ) -> Result<T> {
        let scope = self.device.push_error_scope(filter);
        let r = f();
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(to_error(e)),
            None => r,
        }
    }

    /// Submit `cmd` after checking the device's health; validation errors and running out
    /// of memory become errors naming `what`.
    pub fn submit(&self, cmd: wgpu::CommandBuffer, what: &str) -> Result<()> {
        self.check_health()?;
        let oom = |e| Error::Gpu(format!("out of GPU memory during {what}: {e}"));
        let invalid = |e| Error::Gpu(format!("{what} rejected: {e}"));
        self.scoped(
            wgpu::ErrorFilter::OutOfMemory,
            || self.scoped(wgpu::ErrorFilter::Validation, || Ok(self.queue.submit([cmd])), invalid),
            oom,
        )?;
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }
}

/// Bytes of the adapter's largest device-local memory heap, where the backend tells
/// (Vulkan); wgpu itself has no memory query. None elsewhere.
pub fn device_memory(adapter: &wgpu::Adapter) -> Option<u64> {
    #[cfg(any(windows, all(unix, not(target_vendor = "apple"))))]
    {
        // SAFETY: read-only queries on the adapter's own physical device while the
        // adapter is alive; nothing is created or destroyed.
        unsafe {
            let hal = adapter.as_hal::<wgpu::hal::api::Vulkan>()?;
            let props =
                hal.shared_instance().raw_instance().get_physical_device_memory_properties(hal.raw_physical_device());
            const DEVICE_LOCAL: u32 = 0x1; // VK_MEMORY_HEAP_DEVICE_LOCAL_BIT
            props.memory_heaps[..props.memory_heap_count as usize]
                .iter()
                .filter(|h| h.flags.as_raw() & DEVICE_LOCAL != 0)
                .map(|h| h.size)
                .max()
        }
    }
    #[cfg(not(any(windows, all(unix, not(target_vendor = "apple")))))]
    {
        let _ = adapter;
        None
    }
}
