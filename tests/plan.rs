//! The memory plan (`lanterna info`) against what the GPU executor really allocates: wgpu
//! counts the bytes of every buffer it creates, and the plan must be within 5% of them.

mod common;

use common::*;
use lanterna::gguf::GgufFile;
use lanterna::gpu::plan::MemoryPlan;
use lanterna::gpu::{AdapterChoice, GpuContext, GpuModel};
use lanterna::model::Config;

/// The bound. What the plan leaves out on purpose: per-dispatch uniform blocks
/// (16–48 bytes each) and the driver's alignment padding.
const PLAN_REL_TOL: f64 = 0.05;

fn check(m: &RealModel, n_ctx: usize) {
    let g = GgufFile::open(model_path(m)).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    let plan = MemoryPlan::new(&g, &cfg, n_ctx).unwrap();
    let ctx = GpuContext::new(&AdapterChoice::from_args(None, None).unwrap()).unwrap();
    let before = ctx.device.get_internal_counters().hal.buffer_memory.read();
    let model = GpuModel::load_on(ctx, &g, cfg, n_ctx).unwrap();
    // Uploads go through staging copies that wgpu frees once the GPU is done with them:
    // let it finish and clean up before counting what stays.
    model.ctx.queue.submit([]);
    model.ctx.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).unwrap();
    let after = model.ctx.device.get_internal_counters().hal.buffer_memory.read();
    let allocated = (after - before) as f64;
    let planned = plan.total() as f64;
    let rel = (planned - allocated).abs() / allocated;
    println!("{} ctx {n_ctx}: planned {planned} bytes, allocated {allocated} (wgpu's count), off by {:.3}%", m.name, 100.0 * rel);
    assert!(allocated > 0.0, "wgpu counted no buffer memory");
    assert!(rel < PLAN_REL_TOL, "{}: plan {planned} vs allocated {allocated}", m.name);
}

#[test]
fn the_plan_matches_the_bytes_allocated_for_smollm2() {
    if gpu().is_none() {
        return;
    }
    check(&SMOLLM2, 1024);
}

#[test]
fn the_plan_matches_the_bytes_allocated_for_gemma3() {
    if gpu().is_none() {
        return;
    }
    check(&GEMMA3, 512);
}
