//! RoPE against independently computed tables (tests/fixtures/rope/generate.py: gguf-py
//! reads the metadata, float64 computes θ = pos · base^(-2i/n_rot), llama.cpp's layer
//! pattern picks each layer's base). The CPU's `rope_cos_sin` and the table the GPU
//! executor uploaded are both checked, layer by layer: GPU against CPU alone could never
//! catch a frequency both share.

mod common;

use common::*;
use lanterna::cpu::ops::rope_cos_sin;
use lanterna::gguf::GgufFile;
use lanterna::gpu::GpuModel;
use lanterna::model::{rope_factors, Config};
use serde_json::Value;

/// ggml computes θ in f32, accumulating base^(-2/n_rot) by repeated multiplication: up to
/// position 767 that drifts from the float64 values by at most 6.3e-5 (measured, Gemma-3);
/// a wrong base, exponent or layer pattern moves them by O(0.1–1).
const ROPE_TOL: f64 = 1e-3;
/// The highest position checked must fit the context.
const N_CTX: usize = 768;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rope/rope.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("rope fixture")).expect("rope JSON")
}

/// Compare one layer's table (a function from position to [cos, sin, cos, sin, …]).
fn check_layer(what: &str, positions: &[Value], fx: &Value, key: &str, table_at: impl Fn(usize) -> Vec<f32>) -> f64 {
    let mut worst = 0f64;
    for (row, pos) in fx["tables"][key].as_array().unwrap().iter().zip(positions) {
        let pos = pos.as_u64().unwrap() as usize;
        let got = table_at(pos);
        let want = row.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{what}: table width");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let d = (*g as f64 - w.as_f64().unwrap()).abs();
            assert!(d <= ROPE_TOL, "{what}: position {pos}, value {i} (pair {}): {g} vs {w}", i / 2);
            worst = worst.max(d);
        }
    }
    worst
}

fn check(m: &RealModel) {
    let all = fixture();
    let fx = &all["models"][m.name];
    let positions = all["positions"].as_array().unwrap();
    let g = GgufFile::open(model_path(m)).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    assert_eq!(cfg.n_rot as u64, fx["n_rot"].as_u64().unwrap(), "{}: rotated dimensions", m.name);
    let layers = fx["layers"].as_array().unwrap();
    assert_eq!(layers.len(), cfg.n_layer);
    let factors = rope_factors(&g, &cfg, N_CTX).unwrap();
    let gpu_model = gpu().map(|ctx| GpuModel::load_on(ctx, &g, cfg.clone(), N_CTX).unwrap());
    let (mut worst_cpu, mut worst_gpu) = (0f64, 0f64);
    for (il, key) in layers.iter().enumerate() {
        let key = key.as_str().unwrap();
        let plan = &cfg.layers[il];
        let cpu = |pos| {
            rope_cos_sin(cfg.n_rot, pos, plan.rope_base, plan.rope_scale, factors.as_deref(), cfg.rope_attn_factor)
                .into_iter()
                .flat_map(|(c, s)| [c, s])
                .collect()
        };
        worst_cpu = worst_cpu.max(check_layer(&format!("{} layer {il} cpu", m.name), positions, fx, key, cpu));
        if let Some(gm) = &gpu_model {
            let table = gm.rope_table(il).unwrap();
            let gpu = |pos: usize| table[pos * cfg.n_rot..(pos + 1) * cfg.n_rot].to_vec();
            worst_gpu = worst_gpu.max(check_layer(&format!("{} layer {il} gpu", m.name), positions, fx, key, gpu));
        }
    }
    println!("{}: {} layers, RoPE max |d| cpu {worst_cpu:.2e}, gpu {worst_gpu:.2e}", m.name, cfg.n_layer);
}

#[test]
fn smollm2_rope_tables_match_independent_values() {
    check(&SMOLLM2);
}

#[test]
fn gemma3_rope_tables_match_independent_values() {
    check(&GEMMA3);
}
