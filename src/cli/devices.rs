use clap::Args;
use lanterna::gpu::context::{adapters, parse_backends, OPTIONAL_FEATURES};
use lanterna::gpu::kernels::Kernels;
use lanterna::{Error, Result};

#[derive(Args)]
pub struct DevicesArgs {
    /// Only this backend: vulkan, metal, dx12 or gl.
    #[arg(long)]
    backend: Option<String>,
}

fn mib(b: u64) -> String {
    format!("{} MiB", b / (1024 * 1024))
}

pub fn run(a: DevicesArgs) -> Result<()> {
    let list = adapters(parse_backends(a.backend.as_deref())?);
    if list.is_empty() {
        return Err(Error::Gpu("no GPU adapter found (on Linux without a GPU: scripts/install-lavapipe.sh)".into()));
    }
    for (i, ad) in list.iter().enumerate() {
        let info = ad.get_info();
        let l = ad.limits();
        let f = ad.features();
        println!("[{i}] {}", info.name);
        println!(
            "    backend {:?}, type {:?}, driver {} {}",
            info.backend, info.device_type, info.driver, info.driver_info
        );
        println!(
            "    max storage binding {}, max buffer {}, storage buffers per stage {}",
            mib(l.max_storage_buffer_binding_size),
            mib(l.max_buffer_size),
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "    workgroup size {}×{}×{} (≤ {} invocations), {} workgroups per dimension, {} KiB workgroup storage",
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_workgroup_storage_size / 1024
        );
        let names: Vec<&str> = [
            (wgpu::Features::SUBGROUP, "SUBGROUP"),
            (wgpu::Features::SHADER_F16, "SHADER_F16"),
            (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY"),
            (wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES, "TIMESTAMP_QUERY_INSIDE_PASSES"),
        ]
        .iter()
        .filter(|(flag, _)| OPTIONAL_FEATURES.contains(*flag) && f.contains(*flag))
        .map(|(_, n)| *n)
        .collect();
        println!(
            "    features: {}",
            if names.is_empty() {
                "none of SUBGROUP, SHADER_F16, TIMESTAMP_QUERY".to_string()
            } else {
                names.join(", ")
            }
        );
        println!("    kernels: {}", Kernels::for_adapter(&info, &l, f & OPTIONAL_FEATURES)?.describe());
    }
    Ok(())
}
