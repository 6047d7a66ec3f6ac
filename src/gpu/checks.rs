//! Whether naga wraps our kernels in its runtime checks: an index clamp on every array
//! access, a counter in every loop (`force_loop_bounding`), a guard on every integer
//! division. They exist for untrusted WGSL; ours comes from `shaders/` and every kernel
//! is checked against its CPU twin (gpu_kernels) with them on and off. On lavapipe they cost
//! decoding 8–22% (SmolLM2 16.4 → 17.8, Gemma-3 6.7 → 8.2 tokens/s, README), because there
//! every clamp and counter is SIMD arithmetic beside the few instructions a weight takes.
//!
//! They are left off only on Vulkan, where the device is created with
//! `robustBufferAccess` (a Vulkan 1.0 required feature, which wgpu enables), so a storage
//! access past its binding is still bounded by the driver. Metal, DX12 and GL keep them.
//! `LANTERNA_SHADER_CHECKS=on|off` forces either, so that both run here.

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaderChecks {
    /// naga's bounds, loop and division checks, as wgpu applies to any WGSL.
    On,
    /// None of them: the driver's robust buffer access bounds storage accesses.
    Off,
}

impl ShaderChecks {
    /// Off on Vulkan, on elsewhere, or as `LANTERNA_SHADER_CHECKS` says; and why.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Result<(Self, &'static str)> {
        match std::env::var("LANTERNA_SHADER_CHECKS").as_deref() {
            Ok("on") => Ok((ShaderChecks::On, "LANTERNA_SHADER_CHECKS")),
            Ok("off") => Ok((ShaderChecks::Off, "LANTERNA_SHADER_CHECKS")),
            Ok(other) => Err(Error::Usage(format!("LANTERNA_SHADER_CHECKS={other}: expected on or off"))),
            Err(_) if info.backend == wgpu::Backend::Vulkan => Ok((ShaderChecks::Off, "Vulkan's robust buffer access")),
            Err(_) => Ok((ShaderChecks::On, "a backend without robust buffer access")),
        }
    }

    fn runtime_checks(self) -> wgpu::ShaderRuntimeChecks {
        match self {
            ShaderChecks::On => wgpu::ShaderRuntimeChecks::checked(),
            ShaderChecks::Off => wgpu::ShaderRuntimeChecks::unchecked(),
        }
    }

    /// A shader module of our own WGSL, with or without naga's checks.
    pub fn module(self, device: &wgpu::Device, label: &str, src: String) -> wgpu::ShaderModule {
        let desc = wgpu::ShaderModuleDescriptor { label: Some(label), source: wgpu::ShaderSource::Wgsl(src.into()) };
        // SAFETY: the source is one of the kernels in shaders/, whose array indices and
        // loop bounds are kept in range by the kernels themselves (each is tested against
        // its CPU twin in both modes); Off is chosen only where the driver bounds buffer
        // accesses (see the module comment). wgpu still validates the WGSL.
        unsafe { device.create_shader_module_trusted(desc, self.runtime_checks()) }
    }
}
