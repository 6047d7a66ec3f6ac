//! What bounds decoding on a CPU adapter, measured in isolation on whatever adapter runs it:
//! the fixed cost of one dispatch (a trivial kernel repeated in one pass), and a Q4_1
//! matrix-vector product whose 16 bytes of quants per block come from a storage buffer
//! (as Lanterna uploads weights) or from an `rgba32uint` texture (the fetch path Mesa's
//! llvmpipe vectorizes differently), each thread owning R rows and sharing each x among them.
//! The three variants must agree exactly (same arithmetic, same order); the figure is the
//! ratio within one run.
//!
//!     cargo bench --bench loads [-- --reps N]    (medians of N timed submits, default 9)

use std::time::Instant;

use lanterna::gpu::{AdapterChoice, GpuContext};
use wgpu::util::DeviceExt;

/// The shared body: `LOADQ` (a block's 16 bytes of quants) and `LOADS` (its f16 d and m)
/// are filled in per variant, `RR` (rows per thread) and `WGS` (threads per workgroup) per run.
const BODY: &str = r#"
@group(0) @binding(2) var<uniform> X: array<vec4<f32>, 4096>;  // [16384] x, padded
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;  // [rows]
@group(0) @binding(4) var<uniform> P: vec4<u32>;               // rows, blocks per row
var<private> xs: array<vec4<f32>, 8>;  // the unit's 32 x, shared by the thread's rows
fn nib(q: u32, i: u32) -> vec2<f32> {
    let lo = q & 0x0F0F0F0Fu;
    let hi = (q >> 4u) & 0x0F0F0F0Fu;
    let a = xs[i];
    let b = xs[i + 4u];
    let s = f32(lo & 0xFFu) * a.x + f32((lo >> 8u) & 0xFFu) * a.y + f32((lo >> 16u) & 0xFFu) * a.z
        + f32(lo >> 24u) * a.w + f32(hi & 0xFFu) * b.x + f32((hi >> 8u) & 0xFFu) * b.y
        + f32((hi >> 16u) & 0xFFu) * b.z + f32(hi >> 24u) * b.w;
    return vec2<f32>(s, (a.x + a.y) + (a.z + a.w) + (b.x + b.y) + (b.z + b.w));
}
@compute @workgroup_size(WGS)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let rows = P.x;
    let nb = P.y;
    let first = gid.x * RR;
    var acc: array<f32, RR>;
    for (var u = 0u; u < nb; u++) {
        for (var i = 0u; i < 8u; i++) {
            xs[i] = X[u * 8u + i];
        }
        for (var r = 0u; r < RR; r++) {
            let row = min(first + r, rows - 1u);
            let q = LOADQ;
            let s = (nib(q.x, 0u) + nib(q.y, 1u)) + (nib(q.z, 2u) + nib(q.w, 3u));
            let dm = unpack2x16float(LOADS);
            acc[r] += dm.x * s.x + dm.y * s.y;
        }
    }
    for (var r = 0u; r < RR; r++) {
        if (first + r < rows) {
            Y[first + r] = acc[r];
        }
    }
}
"#;

/// (name, declarations, quant load, scale load)
const VARIANTS: [(&str, &str, &str, &str); 3] = [
    (
        "storage",
        "@group(0) @binding(0) var<storage, read> Wq: array<vec4<u32>>;  // [rows * nb] quants
@group(0) @binding(1) var<storage, read> S: array<u32>;  // [rows * nb] d, m",
        "Wq[row * nb + u]",
        "S[row * nb + u]",
    ),
    (
        "texture",
        "@group(0) @binding(0) var Wt: texture_2d<u32>;  // [nb, rows] rgba32uint quants
@group(0) @binding(1) var<storage, read> S: array<u32>;  // [rows * nb] d, m",
        "textureLoad(Wt, vec2<u32>(u, row), 0)",
        "S[row * nb + u]",
    ),
    (
        "texture+scales",
        "@group(0) @binding(0) var Wt: texture_2d<u32>;  // [nb, rows] rgba32uint quants
@group(0) @binding(1) var St: texture_2d<u32>;  // [nb, rows] r32uint d, m",
        "textureLoad(Wt, vec2<u32>(u, row), 0)",
        "textureLoad(St, vec2<u32>(u, row), 0).x",
    ),
];

struct Data {
    q: wgpu::Buffer,
    s: wgpu::Buffer,
    qt: wgpu::TextureView,
    st: wgpu::TextureView,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    p: wgpu::Buffer,
}

fn texture(ctx: &GpuContext, w: u32, h: u32, format: wgpu::TextureFormat, bytes: &[u8]) -> wgpu::TextureView {
    let desc = wgpu::TextureDescriptor {
        label: Some("weights as a texture"),
        size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING,
        view_formats: &[],
    };
    let t = ctx.device.create_texture_with_data(&ctx.queue, &desc, wgpu::util::TextureDataOrder::LayerMajor, bytes);
    t.create_view(&Default::default())
}

/// Random quants, small equal scales, x a fixed pattern (seeded: the same every run).
fn data(ctx: &GpuContext, cols: u32, rows: u32) -> Data {
    let nb = cols / 32;
    let mut r = lanterna::sampler::Rng::new(12345);
    let quants: Vec<u32> = (0..rows * nb * 4).map(|_| r.next_u64() as u32).collect();
    let scales: Vec<u32> = vec![0x2000_2000; (rows * nb) as usize];
    let x: Vec<f32> = (0..16384).map(|i| (i % 7) as f32 * 0.1).collect();
    let buf = |label, c: &[u8], usage| {
        ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents: c, usage })
    };
    let storage = wgpu::BufferUsages::STORAGE;
    Data {
        q: buf("quants", bytemuck::cast_slice(&quants), storage),
        s: buf("scales", bytemuck::cast_slice(&scales), storage),
        qt: texture(ctx, nb, rows, wgpu::TextureFormat::Rgba32Uint, bytemuck::cast_slice(&quants)),
        st: texture(ctx, nb, rows, wgpu::TextureFormat::R32Uint, bytemuck::cast_slice(&scales)),
        x: buf("x", bytemuck::cast_slice(&x), wgpu::BufferUsages::UNIFORM),
        y: buf("y", &vec![0u8; rows as usize * 4], storage | wgpu::BufferUsages::COPY_SRC),
        p: buf("params", bytemuck::cast_slice(&[rows, nb, 0, 0]), wgpu::BufferUsages::UNIFORM),
    }
}

fn pipeline(ctx: &GpuContext, src: &str) -> wgpu::ComputePipeline {
    let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("loads"),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("loads"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

/// The median seconds of one dispatch of `groups` workgroups, `per` dispatches a submit.
fn time(ctx: &GpuContext, p: &wgpu::ComputePipeline, bg: &wgpu::BindGroup, groups: u32, per: u32, reps: u32) -> f64 {
    let run = || {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(p);
            pass.set_bind_group(0, bg, &[]);
            for _ in 0..per {
                pass.dispatch_workgroups(groups, 1, 1);
            }
        }
        let t = Instant::now();
        ctx.queue.submit([enc.finish()]);
        let _ = ctx.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None });
        t.elapsed().as_secs_f64() / per as f64
    };
    run();
    let mut ts: Vec<f64> = (0..reps.max(1)).map(|_| run()).collect();
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

fn read_y(ctx: &GpuContext, y: &wgpu::Buffer, rows: u32) -> lanterna::Result<Vec<f32>> {
    let staging = lanterna::gpu::buffers::staging_buffer(ctx, "y staging", rows as u64 * 4);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(y, 0, &staging, 0, rows as u64 * 4);
    ctx.queue.submit([enc.finish()]);
    let mut out = vec![0f32; rows as usize];
    lanterna::gpu::buffers::read_staging(ctx, &staging, &mut out)?;
    Ok(out)
}

fn bind(ctx: &GpuContext, p: &wgpu::ComputePipeline, d: &Data, variant: &str) -> wgpu::BindGroup {
    use wgpu::BindingResource::TextureView;
    let (w, s) = match variant {
        "storage" => (d.q.as_entire_binding(), d.s.as_entire_binding()),
        "texture" => (TextureView(&d.qt), d.s.as_entire_binding()),
        _ => (TextureView(&d.qt), TextureView(&d.st)),
    };
    let entries = [
        wgpu::BindGroupEntry { binding: 0, resource: w },
        wgpu::BindGroupEntry { binding: 1, resource: s },
        wgpu::BindGroupEntry { binding: 2, resource: d.x.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 3, resource: d.y.as_entire_binding() },
        wgpu::BindGroupEntry { binding: 4, resource: d.p.as_entire_binding() },
    ];
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("loads"),
        layout: &p.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// One shape at R rows a thread: each variant's time, and a failure if they disagree.
fn matvec_row(ctx: &GpuContext, d: &Data, (cols, rows, rr): (u32, u32, u32), reps: u32) -> lanterna::Result<()> {
    const WGS: u32 = 16;
    let mut line = format!("| {cols} × {rows} | {rr} |");
    let mut first: Option<(Vec<f32>, f64)> = None;
    for (name, decl, lq, ls) in VARIANTS {
        let src = format!("{decl}\n{BODY}")
            .replace("LOADQ", lq)
            .replace("LOADS", ls)
            .replace("RR", &rr.to_string())
            .replace("WGS", &WGS.to_string());
        let p = pipeline(ctx, &src);
        let bg = bind(ctx, &p, d, name);
        let t = time(ctx, &p, &bg, rows.div_ceil(rr).div_ceil(WGS), 40, reps);
        let y = read_y(ctx, &d.y, rows)?;
        let ratio = match &first {
            None => {
                first = Some((y, t));
                1.0
            }
            Some((y0, t0)) => {
                if y != *y0 {
                    return Err(lanterna::Error::Gpu(format!(
                        "{name} disagrees with storage at {cols}×{rows}, R={rr}"
                    )));
                }
                t0 / t
            }
        };
        line += &format!(" {:.0} µs ({:.2}×) |", t * 1e6, ratio);
    }
    println!("{line}");
    Ok(())
}

/// The fixed cost of a dispatch: a kernel that adds 1 to one float per invocation.
fn dispatch_cost(ctx: &GpuContext, reps: u32) {
    let src = "@group(0) @binding(0) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { Y[g.x] = Y[g.x] + 1.0; }";
    let p = pipeline(ctx, src);
    let y = lanterna::gpu::buffers::f32_buffer(ctx, "y", 64 * 64);
    let bg = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("dispatch cost"),
        layout: &p.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: y.as_entire_binding() }],
    });
    for groups in [1, 2, 8, 64] {
        let t = time(ctx, &p, &bg, groups, 200, reps);
        println!("dispatch of {groups:2} workgroup(s) of 64, 200 in one pass: {:.1} µs each", t * 1e6);
    }
}

fn main() -> lanterna::Result<()> {
    std::env::set_var("NODEVICE_SELECT", "1");
    let args: Vec<String> = std::env::args().collect();
    let reps: u32 =
        args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(9);
    let ctx = GpuContext::new(&AdapterChoice::from_args(None, None)?)?;
    println!("adapter: {}, {reps} reps", ctx.describe());
    dispatch_cost(&ctx, reps);
    println!("| Q4_1 cols × rows | rows a thread | storage | texture | texture + scales |");
    println!("|---|---|---|---|---|");
    // SmolLM2's ffn_gate/up and ffn_down shapes.
    for (cols, rows) in [(576, 1536), (1536, 576)] {
        let d = data(&ctx, cols, rows);
        for rr in [1, 2, 4, 8] {
            matvec_row(&ctx, &d, (cols, rows, rr), reps)?;
        }
    }
    ctx.check_health()
}
