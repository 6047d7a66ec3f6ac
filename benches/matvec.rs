//! Matrix-vector kernels at the shapes of the two real models: weights per second of each
//! quantized kernel next to the plain f32 matvec kernel at the same shape, in one run on
//! one adapter (lavapipe is compute-bound, so weights/s is its fair measure), plus GB/s of
//! the bytes each kernel actually reads (the figure that matters on memory-bound GPUs).
//!
//!     cargo bench --bench matvec [-- --reps N] [--only TYPE]    (medians of N timed runs, default 5)

use lanterna::gpu::buffers::{f32_buffer, f32_buffer_init, x_buffer, GpuTensor};
use lanterna::gpu::builder::Builder;
use lanterna::gpu::kernels::{uniform, Kernels};
use lanterna::gpu::params::Step;
use lanterna::gpu::profile::time_dispatches;
use lanterna::gpu::{AdapterChoice, GpuContext};
use lanterna::quant::GgmlType;
use lanterna::sampler::Rng;

fn rand_bytes(ty: GgmlType, n: usize, seed: u64) -> Vec<u8> {
    // Random blocks with small finite f16 scales where the type has them.
    let mut r = Rng::new(seed);
    let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
    let mut b: Vec<u8> = (0..n / bs * ts).map(|_| r.next_u64() as u8).collect();
    if ty == GgmlType::F32 {
        b = (0..n).flat_map(|_| ((r.next_f64() - 0.5) as f32).to_le_bytes()).collect();
    } else if ty == GgmlType::F16 {
        b = (0..n).flat_map(|_| half::f16::from_f64(r.next_f64() - 0.5).to_le_bytes()).collect();
    } else {
        for blk in b.chunks_exact_mut(ts) {
            for &o in ty.f16_scale_offsets() {
                blk[o..o + 2].copy_from_slice(&half::f16::from_f64(0.01).to_le_bytes());
            }
        }
    }
    b
}

fn main() -> lanterna::Result<()> {
    std::env::set_var("NODEVICE_SELECT", "1");
    let args: Vec<String> = std::env::args().collect();
    let reps: u32 =
        args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(5);
    let ctx = GpuContext::new(&AdapterChoice::from_args(None, None)?)?;
    let mut kernels = Kernels::for_device(&ctx)?;
    let step = uniform(&ctx, "step", &Step::default());
    println!("adapter: {}, matvec threads/lanes per row/rows {}, {} reps", ctx.describe(), kernels.matvec, reps);
    println!("| shape (cols × rows) | type | used by | µs | G weights/s | GB/s read | vs f32 matvec |");
    println!("|---|---|---|---|---|---|---|");
    // (cols, rows, type, where it is used)
    let cases: &[(usize, usize, GgmlType, &str)] = &[
        (576, 1536, GgmlType::Q4_1, "SmolLM2 ffn_gate/up"),
        (1536, 576, GgmlType::Q4_1, "SmolLM2 ffn_down"),
        (576, 49152, GgmlType::Q8_0, "SmolLM2 output (tied)"),
        (640, 2048, GgmlType::Q5_0, "Gemma-3 ffn_gate/up"),
        (640, 256, GgmlType::Q8_0, "Gemma-3 attn_v"),
        (1024, 640, GgmlType::Q4K, "Gemma-3 attn_output"),
        (2048, 640, GgmlType::Q6K, "Gemma-3 ffn_down"),
        (640, 65536, GgmlType::Q8_0, "Gemma-3 output (a quarter)"),
    ];
    // `--only Q6_K`: just the cases of one type (quicker A/B runs of one decoder).
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    for &(cols, rows, ty, used) in cases {
        if only.as_deref().is_some_and(|o| o != ty.name()) {
            continue;
        }
        // The prompt-processing kernel on a chunk of 64 tokens, same weights.
        let tm = {
            let bytes = rand_bytes(ty, cols * rows, 7);
            let t = GpuTensor::upload(&ctx, "w", ty, cols, rows, &bytes)?;
            let x = f32_buffer_init(&ctx, "x", &vec![0.5; cols * 64]);
            let y = f32_buffer(&ctx, "y", rows * 64);
            let tokens = f32_buffer(&ctx, "tokens", 64);
            let xt = f32_buffer(&ctx, "xt", 64 * cols);
            ctx.queue.write_buffer(&step, 0, bytemuck::bytes_of(&Step::run(0, 0, 64, 0)));
            let mut b = Builder {
                ctx: &ctx,
                kernels: &mut kernels,
                step: &step,
                batch: Some(lanterna::gpu::builder::Batch { max_tokens: 64, tokens: &tokens, xt: &xt }),
            };
            let d = b.matvec("bench", &t, &x, &y)?;
            // time_dispatches records each for one token; scale the groups to 64.
            let d: Vec<_> = d
                .into_iter()
                .map(|mut d| {
                    let g = d.groups.at(64);
                    d.groups = lanterna::gpu::kernels::Groups::Fixed(g.0, g.1, g.2);
                    d
                })
                .collect();
            time_dispatches(&ctx, &d, reps)?
        };
        println!(
            "  matmul {ty} {cols}x{rows} x 64 tokens: {:.0} µs = {:.3} G weight-tokens/s",
            tm * 1e6,
            (cols * rows * 64) as f64 / tm / 1e9
        );
        // The f32 and the quantized kernel alternate, one timed run each, so that anything
        // else slowing the machine for a while slows both: their ratio is the figure here.
        let mut setup =
            |ty: GgmlType| -> lanterna::Result<(Vec<lanterna::gpu::kernels::Dispatch>, GpuTensor, [wgpu::Buffer; 2])> {
                let bytes = rand_bytes(ty, cols * rows, 7);
                let t = GpuTensor::upload(&ctx, "w", ty, cols, rows, &bytes)?;
                // X as decoding makes it, so the adapter's X variant (uniform on CPU adapters) runs.
                let x = x_buffer(&ctx, "x", cols);
                ctx.queue.write_buffer(&x, 0, bytemuck::cast_slice(&vec![0.5f32; cols]));
                let y = f32_buffer(&ctx, "y", rows);
                let mut b = Builder { ctx: &ctx, kernels: &mut kernels, step: &step, batch: None };
                let d = b.matvec("bench", &t, &x, &y)?;
                Ok((d, t, [x, y]))
            };
        let (df, _tf, _bf) = setup(GgmlType::F32)?;
        let (dq, tq_tensor, _bq) = setup(ty)?;
        let qbytes = tq_tensor.bytes();
        let (mut tfs, mut tqs) = (Vec::new(), Vec::new());
        for _ in 0..reps.max(1) {
            tfs.push(time_dispatches(&ctx, &df, 1)?);
            tqs.push(time_dispatches(&ctx, &dq, 1)?);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (tf, tq) = (median(tfs), median(tqs));
        let w = (cols * rows) as f64;
        println!(
            "| {cols} × {rows} | {} | {used} | {:.0} | {:.3} | {:.2} | {:.0}% (f32: {:.3} G weights/s) |",
            ty,
            tq * 1e6,
            w / tq / 1e9,
            qbytes as f64 / tq / 1e9,
            100.0 * tf / tq,
            w / tf / 1e9
        );
    }
    Ok(())
}
