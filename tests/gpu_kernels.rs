//! Every WGSL kernel against its CPU twin (`lanterna::cpu::ops`, `lanterna::quant`) on
//! seeded random inputs at sizes that are not multiples of the workgroup size.

mod common;

use common::*;
use lanterna::cpu::ops;
use lanterna::gpu::buffers::{f32_buffer, f32_buffer_init, read_f32, x_buffer, GpuTensor};
use lanterna::gpu::builder::{run_once, Batch, Builder, FusedNorm, RopeFuseIo, RopeIo, Then};
use lanterna::gpu::checks::ShaderChecks;
use lanterna::gpu::kernels::{
    uniform, AdapterClass, Finish, Groups, Kernel, Kernels, MatmulX, MatvecShape, MatvecX, Reduce, XNorm,
};
use lanterna::gpu::params::{AttnParams, Step};
use lanterna::gpu::GpuContext;
use lanterna::model::{Activation, KvType, RopeStyle};
use lanterna::quant::{dequantize, GgmlType};

/// ggml's test-backend-ops bound for f32 ops. Both sides compute in f32 from identical
/// inputs (the GPU decodes the same bytes the CPU dequantizes), so only summation order
/// and transcendental-function rounding differ — NMSE ~1e-12 to 1e-10 in practice.
const F32_NMSE: f64 = 1e-7;
/// ggml's bound for quantized matrix products. Our kernels do not round activations to
/// 8 bits as ggml's CPU path does, so they land far under it (see F32_NMSE); the matvec
/// test asserts the tighter F32_NMSE and reports both.
const QUANT_MATMUL_NMSE: f64 = 5e-4;

struct Rig {
    ctx: GpuContext,
    kernels: Kernels,
    step: wgpu::Buffer,
}

fn rig() -> Option<Rig> {
    let ctx = gpu()?;
    let mut kernels = Kernels::new(&ctx.limits);
    // The adapter's own choice (off on Vulkan), or LANTERNA_SHADER_CHECKS's: test.sh runs
    // this file again with the other.
    kernels.checks = ShaderChecks::for_adapter(&ctx.info).unwrap().0;
    let step = uniform(&ctx, "step", &Step::default());
    Some(Rig { ctx, kernels, step })
}

/// Set the rig's matvec reduction; false (skip this configuration) for subgroups on an
/// adapter without them at one fixed size — lavapipe has them, so nothing is skipped there.
fn with_reduce(r: &mut Rig, reduce: Reduce) -> bool {
    let info = &r.ctx.info;
    if reduce == Reduce::Subgroup {
        let fixed = info.subgroup_min_size == info.subgroup_max_size && info.subgroup_min_size > 0;
        if !(r.ctx.features.contains(wgpu::Features::SUBGROUP) && fixed) {
            return false;
        }
        r.kernels.subgroup_size = info.subgroup_min_size;
    }
    r.kernels.matvec_reduce = reduce;
    true
}

impl Rig {
    fn builder(&mut self) -> Builder<'_> {
        Builder { ctx: &self.ctx, kernels: &mut self.kernels, step: &self.step, batch: None }
    }
}

fn check_matvec(r: &mut Rig, ty: GgmlType, rows: usize, blocks_per_row: usize, cap: Option<u64>) {
    let cols = blocks_per_row * ty.block_size() as usize;
    let bytes = rand_tensor(ty, rows * cols, 100 + ty.id() as u64);
    let x = rand_f32(cols, 7);
    let mut w = vec![0f32; rows * cols];
    dequantize(ty, &bytes, &mut w).unwrap();
    let mut want = vec![0f32; rows];
    ops::matvec(&w, &x, &mut want);

    let t = match cap {
        Some(c) => GpuTensor::upload_capped(&r.ctx, "w", ty, cols, rows, &bytes, c).unwrap(),
        None => GpuTensor::upload(&r.ctx, "w", ty, cols, rows, &bytes).unwrap(),
    };
    if cap.is_some() {
        assert!(t.parts.len() >= 3, "the cap should split the tensor");
    }
    // X as decoding makes it (a buffer that may be bound as uniform) or as a plain one.
    let xb = match r.kernels.matvec_x {
        MatvecX::Uniform => x_buffer(&r.ctx, "x", cols),
        MatvecX::Storage => f32_buffer(&r.ctx, "x", cols),
    };
    r.ctx.queue.write_buffer(&xb, 0, bytemuck::cast_slice(&x));
    let yb = f32_buffer(&r.ctx, "y", rows);
    let d = r.builder().matvec("matvec", &t, &xb, &yb).unwrap();
    let kernel = d[0].kernel;
    let want_kernel =
        Kernel::Matvec(ty, r.kernels.matvec_x, Finish::Store, r.kernels.matvec_reduce, r.kernels.matvec, XNorm::None);
    assert_eq!(kernel, want_kernel, "the builder must use the X variant the kernels chose");
    run_once(&r.ctx, &r.step, Step::default(), &d).unwrap();
    let got = read_f32(&r.ctx, &yb, rows).unwrap();
    let e = nmse(&got, &want);
    let k = &r.kernels;
    println!(
        "{}: {rows}x{cols}, {} part(s), {}/{}/{} threads/lanes/rows, NMSE {e:.2e} (ggml bound {QUANT_MATMUL_NMSE:.0e})",
        kernel.name(),
        t.parts.len(),
        k.matvec.wg,
        k.matvec.tpr,
        k.matvec.rows
    );
    assert!(e < F32_NMSE, "matvec {ty}: NMSE {e:e}");
}

/// One matvec configuration: threads per workgroup, lanes per row, rows per lane group,
/// how a row's lanes add up, where X is read.
#[derive(Clone, Copy, Debug)]
struct MatvecConfig {
    wg: u32,
    tpr: u32,
    rows: u32,
    reduce: Reduce,
    x: MatvecX,
}

/// A rig whose kernels use `c`; None (skip it) for subgroups on an adapter without them
/// at one fixed size (lavapipe has them, so nothing is skipped there).
fn rig_with(c: MatvecConfig) -> Option<Rig> {
    let mut r = rig()?;
    if !with_reduce(&mut r, c.reduce) {
        return None;
    }
    r.kernels.matvec = MatvecShape { wg: c.wg, tpr: c.tpr, rows: c.rows };
    r.kernels.matvec_x = c.x;
    Some(r)
}

/// The configuration each class of adapter selects by default.
fn class_default(class: AdapterClass, reduce: Reduce, x: MatvecX) -> MatvecConfig {
    let MatvecShape { wg, tpr, rows } = MatvecShape::default_for(class);
    MatvecConfig { wg, tpr, rows, reduce, x }
}

/// Blocks per row of the matvec tests: a float row of 203 weights (no multiple of the
/// 32-weight unit a cached X works in), 11 blocks of 32, 3 super-blocks of 256.
fn test_blocks(ty: GgmlType) -> usize {
    match ty.block_size() {
        1 => 203,
        32 => 11,
        _ => 3,
    }
}

/// Every type under the configurations the two classes of adapter select and two more
/// (several rows per lane with storage X, a row split over lanes with uniform X).
#[test]
fn matvec_every_type_under_the_class_defaults() {
    use {MatvecX::*, Reduce::*};
    let configs = [
        class_default(AdapterClass::Cpu, Subgroup, Uniform),
        class_default(AdapterClass::Gpu, Subgroup, Storage),
        MatvecConfig { wg: 64, tpr: 1, rows: 3, reduce: Workgroup, x: Storage },
        MatvecConfig { wg: 32, tpr: 8, rows: 2, reduce: Workgroup, x: Uniform },
    ];
    for c in configs {
        let Some(mut r) = rig_with(c) else { continue };
        for ty in GgmlType::ALL {
            // 37 rows: not a multiple of the rows a workgroup handles.
            check_matvec(&mut r, ty, 37, test_blocks(ty), None);
        }
    }
}

/// Every type with naga's runtime checks on and off, whatever the adapter's own choice: the
/// kernels must keep their indices in range themselves where nothing clamps them.
#[test]
fn matvec_every_type_with_and_without_naga_checks() {
    for checks in [ShaderChecks::On, ShaderChecks::Off] {
        let c = class_default(AdapterClass::Cpu, Reduce::Subgroup, MatvecX::Uniform);
        let Some(mut r) = rig_with(c) else { continue };
        r.kernels.checks = checks;
        for ty in GgmlType::ALL {
            check_matvec(&mut r, ty, 37, test_blocks(ty), None);
        }
    }
}

/// Every configuration a tuner or an adapter can select — lanes per row from one (CPU
/// adapters) to the whole workgroup, one to sixteen rows per lane group, workgroups of 16
/// to 64, added up in workgroup memory or by subgroup shuffles (fewer and more lanes than
/// a subgroup has), X from a storage or a uniform buffer — on three types that stand for
/// the rest: 18-byte blocks (split upload), super-blocks, and a float row with a tail.
#[test]
fn matvec_every_configuration() {
    use {MatvecX::*, Reduce::*};
    // (1, 2, 4): a workgroup smaller than lavapipe's subgroup of 8; the kernels then load
    // uniform X per thread rather than by broadcast (a choice lavapipe cannot tell apart,
    // since it fills the idle lanes anyway: this checks the configuration's results).
    let shapes = [(1, 16, 16), (1, 8, 32), (2, 5, 64), (8, 3, 16), (32, 2, 32), (64, 1, 64), (1, 2, 4)];
    // Each shape with two of the four (reduce, X) pairs, each pair with three shapes: the
    // tuner varies the shape under one class's pair, and every pipeline compiled costs
    // lavapipe seconds.
    let pairs = [[(Subgroup, Uniform), (Workgroup, Storage)], [(Subgroup, Storage), (Workgroup, Uniform)]];
    for (i, (tpr, rows, wg)) in shapes.into_iter().enumerate() {
        for (reduce, x) in pairs[i % 2] {
            let Some(mut r) = rig_with(MatvecConfig { wg, tpr, rows, reduce, x }) else { continue };
            for ty in [GgmlType::Q4_0, GgmlType::Q5K, GgmlType::F16] {
                // 301 rows: no multiple of any workgroup's rows, and several workgroups.
                check_matvec(&mut r, ty, 301, test_blocks(ty), None);
            }
        }
    }
}

#[test]
fn matvec_split_over_several_buffers() {
    let Some(mut r) = rig() else { return };
    for ty in [GgmlType::Q8_0, GgmlType::Q4K, GgmlType::F16] {
        let row_bytes = ty.row_bytes(if ty.block_size() == 1 { 96 } else { 3 * ty.block_size() }).unwrap();
        let blocks = if ty.block_size() == 1 { 96 } else { 3 };
        check_matvec(&mut r, ty, 53, blocks, Some(row_bytes * 20));
    }
}

#[test]
fn embed_every_type_and_split() {
    let Some(mut r) = rig() else { return };
    for ty in GgmlType::ALL {
        let cols = if ty.block_size() == 1 { 70 } else { 3 * ty.block_size() as usize };
        let rows = 29;
        let bytes = rand_tensor(ty, rows * cols, 300 + ty.id() as u64);
        let mut w = vec![0f32; rows * cols];
        dequantize(ty, &bytes, &mut w).unwrap();
        let row_bytes = ty.row_bytes(cols as u64).unwrap();
        let t = GpuTensor::upload_capped(&r.ctx, "embd", ty, cols, rows, &bytes, row_bytes * 8).unwrap();
        let yb = f32_buffer(&r.ctx, "y", cols);
        let d = r.builder().embed("embed", &t, &yb, 1.5).unwrap();
        for token in [0u32, 13, 28] {
            run_once(&r.ctx, &r.step, Step { token, ..Default::default() }, &d).unwrap();
            let got = read_f32(&r.ctx, &yb, cols).unwrap();
            let want: Vec<f32> =
                w[token as usize * cols..(token as usize + 1) * cols].iter().map(|v| v * 1.5).collect();
            let e = nmse(&got, &want);
            assert!(e < F32_NMSE, "embed {ty} token {token}: NMSE {e:e}");
        }
    }
}

#[test]
fn rms_norm_inplace_and_with_the_residual_add() {
    let Some(mut r) = rig() else { return };
    let (rows, cols, eps) = (3usize, 577usize, 1e-6f32);
    let x = rand_f32(rows * cols, 11);
    let g = rand_f32(cols, 12);
    let mut want = x.clone();
    want.chunks_exact_mut(cols).for_each(|row| ops::rms_norm(row, &g, eps));

    let xb = f32_buffer_init(&r.ctx, "x", &x);
    let yb = f32_buffer(&r.ctx, "y", rows * cols);
    let gb = f32_buffer_init(&r.ctx, "g", &g);
    let d = r.builder().rms_norm("rms_norm", &xb, &yb, &gb, rows as u32, cols as u32, eps).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &yb, rows * cols).unwrap(), &want);
    assert!(e < F32_NMSE, "rms_norm: NMSE {e:e}");

    let d = r.builder().rms_norm_inplace("rms_norm_inplace", &xb, &gb, rows as u32, cols as u32, eps).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &xb, rows * cols).unwrap(), &want);
    assert!(e < F32_NMSE, "rms_norm_inplace: NMSE {e:e}");

    // A post-norm and the residual add after it (one row, as decoding runs it): its twins
    // one after the other, the normed row kept in place as well.
    let stream = rand_f32(cols, 13);
    let mut want_z = stream.clone();
    ops::add(&mut want_z, &want[..cols]);
    let (yb, zb) = (f32_buffer_init(&r.ctx, "y", &x[..cols]), f32_buffer_init(&r.ctx, "z", &stream));
    let d = r.builder().rms_norm_add("rms_norm_add", &yb, &zb, &gb, cols as u32, eps).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let ey = nmse(&read_f32(&r.ctx, &yb, cols).unwrap(), &want[..cols]);
    let ez = nmse(&read_f32(&r.ctx, &zb, cols).unwrap(), &want_z);
    assert!(ey < F32_NMSE && ez < F32_NMSE, "rms_norm_add: NMSE y {ey:e}, z {ez:e}");
}

#[test]
fn rope_both_styles_partial_rotation() {
    let Some(mut r) = rig() else { return };
    let (n_heads, head_dim, n_rot, n_ctx, pos) = (3usize, 66usize, 50usize, 41usize, 37usize);
    let freq: Vec<f32> = (0..n_rot / 2).map(|i| 1.0 + i as f32 * 0.25).collect();
    let mut table = Vec::new();
    for p in 0..n_ctx {
        for (c, s) in ops::rope_cos_sin(n_rot, p, 10000.0, 0.5, Some(&freq), 1.0) {
            table.extend([c, s]);
        }
    }
    let tb = f32_buffer_init(&r.ctx, "table", &table);
    for style in [RopeStyle::Norm, RopeStyle::Neox] {
        let x = rand_f32(n_heads * head_dim, 21);
        let mut want = x.clone();
        ops::rope(&mut want, head_dim, n_rot, pos, 10000.0, 0.5, Some(&freq), style);
        let xb = f32_buffer_init(&r.ctx, "x", &x);
        let d = r.builder().rope("rope", &xb, &tb, n_heads as u32, head_dim as u32, n_rot as u32, style).unwrap();
        run_once(&r.ctx, &r.step, Step::run(0, pos, 1, 0), &[d]).unwrap();
        let e = nmse(&read_f32(&r.ctx, &xb, x.len()).unwrap(), &want);
        assert!(e < F32_NMSE, "rope {style:?}: NMSE {e:e}");
    }
}

/// Frequency factors (1, 1.25, 1.5, …) and the (cos, sin) table of every position as the
/// executor builds it (base 10000, scale 0.5): the RoPE tests' rotation.
fn rope_freq_and_table(n_rot: usize, n_ctx: usize) -> (Vec<f32>, Vec<f32>) {
    let freq: Vec<f32> = (0..n_rot / 2).map(|i| 1.0 + i as f32 * 0.25).collect();
    let table = (0..n_ctx)
        .flat_map(|p| ops::rope_cos_sin(n_rot, p, 10000.0, 0.5, Some(&freq), 1.0))
        .flat_map(|(c, s)| [c, s])
        .collect();
    (freq, table)
}

/// A cache as the kernels keep it: f32 words, or two halves per word (low half first).
fn cache_words(values: &[f32], kv: KvType) -> Vec<f32> {
    match kv {
        KvType::F32 => values.to_vec(),
        KvType::F16 => values
            .chunks(2)
            .map(|p| {
                let (a, b) = (half::f16::from_f32(p[0]).to_bits() as u32, half::f16::from_f32(p[1]).to_bits() as u32);
                f32::from_bits(a | b << 16)
            })
            .collect(),
    }
}

/// The inverse of `cache_words`.
fn cache_values(words: &[f32], kv: KvType) -> Vec<f32> {
    match kv {
        KvType::F32 => words.to_vec(),
        KvType::F16 => words
            .iter()
            .flat_map(|w| {
                let b = w.to_bits();
                [half::f16::from_bits(b as u16).to_f32(), half::f16::from_bits((b >> 16) as u16).to_f32()]
            })
            .collect(),
    }
}

/// Decoding's RoPE dispatch: queries and keys (fewer heads) rotated in place, the keys and
/// values appended to caches of either type at the step's position and nowhere else.
/// Half the rotated dims is odd (25), so NEOX pairs straddle the f16 cache's words.
#[test]
fn rope_rotates_q_and_k_and_appends_k_and_v_to_the_cache() {
    let Some(mut r) = rig() else { return };
    let (n_heads, n_heads_k, head_dim, n_rot, n_ctx, pos, v_dim) =
        (3usize, 2usize, 66usize, 50usize, 41usize, 37usize, 60usize);
    let (freq, table) = rope_freq_and_table(n_rot, n_ctx);
    let tb = f32_buffer_init(&r.ctx, "table", &table);
    let k_dim = n_heads_k * head_dim;
    for style in [RopeStyle::Norm, RopeStyle::Neox] {
        for kv in [KvType::F32, KvType::F16] {
            let (q, k, v) = (rand_f32(n_heads * head_dim, 21), rand_f32(k_dim, 22), rand_f32(v_dim, 23));
            let (mut want_q, mut want_k) = (q.clone(), k.clone());
            ops::rope(&mut want_q, head_dim, n_rot, pos, 10000.0, 0.5, Some(&freq), style);
            ops::rope(&mut want_k, head_dim, n_rot, pos, 10000.0, 0.5, Some(&freq), style);
            // Zeros at every other position: the kernel must write row `pos` only.
            let (mut want_kc, mut want_vc) = (vec![0f32; pos * k_dim], vec![0f32; pos * v_dim]);
            ops::kv_store(&mut want_kc, &want_k, kv);
            ops::kv_store(&mut want_vc, &v, kv);
            want_kc.resize(n_ctx * k_dim, 0.0);
            want_vc.resize(n_ctx * v_dim, 0.0);
            let (qb, kb, vb) =
                (f32_buffer_init(&r.ctx, "q", &q), f32_buffer_init(&r.ctx, "k", &k), f32_buffer_init(&r.ctx, "v", &v));
            let words = |width: usize| n_ctx * width * kv.bytes() / 4;
            let (kc, vc) = (f32_buffer(&r.ctx, "k cache", words(k_dim)), f32_buffer(&r.ctx, "v cache", words(v_dim)));
            let io = RopeIo {
                q: &qb,
                n_heads: n_heads as u32,
                k: &kb,
                n_heads_k: n_heads_k as u32,
                v: &vb,
                v_dim: v_dim as u32,
                k_cache: &kc,
                v_cache: &vc,
                table: &tb,
            };
            let d = r.builder().rope_store("rope", io, head_dim as u32, n_rot as u32, style, kv).unwrap();
            run_once(&r.ctx, &r.step, Step::run(0, pos, 1, 0), &[d]).unwrap();
            let got = |b: &wgpu::Buffer, n: usize| read_f32(&r.ctx, b, n).unwrap();
            let (eq, ek) = (nmse(&got(&qb, q.len()), &want_q), nmse(&got(&kb, k.len()), &want_k));
            let ekc = nmse(&cache_values(&got(&kc, words(k_dim)), kv), &want_kc);
            let evc = nmse(&cache_values(&got(&vc, words(v_dim)), kv), &want_vc);
            let all = [eq, ek, ekc, evc];
            assert!(all.iter().all(|&e| e < F32_NMSE), "rope {style:?} {kv:?}: NMSE q, k, k cache, v cache {all:?}");
        }
    }
}

/// One attention geometry: heads, KV heads, key and value widths, cached positions.
struct AttnCase {
    n_head: usize,
    n_head_kv: usize,
    hd: usize,
    hdv: usize,
    n_ctx: usize,
}

/// The kernel's parameters for a case (the builder sets the splits).
fn attn_params(c: &AttnCase, window: usize, softcap: Option<f32>) -> AttnParams {
    AttnParams {
        group: (c.n_head / c.n_head_kv) as u32,
        head_dim: c.hd as u32,
        head_dim_v: c.hdv as u32,
        k_stride: (c.n_head_kv * c.hd) as u32,
        v_stride: (c.n_head_kv * c.hdv) as u32,
        splits: 0,
        window: window as u32,
        scale: 1.0 / (c.hd as f32).sqrt(),
        softcap: softcap.unwrap_or(0.0),
        _pad: [0; 3],
    }
}

/// The CPU twin over `tokens` consecutive queries whose first sees `n_pos` positions.
#[allow(clippy::too_many_arguments)]
fn attention_want(
    c: &AttnCase,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_pos: usize,
    tokens: usize,
    window: usize,
    softcap: Option<f32>,
) -> Vec<f32> {
    let (ks, vs, scale) = (c.n_head_kv * c.hd, c.n_head_kv * c.hdv, 1.0 / (c.hd as f32).sqrt());
    let mut want = vec![0f32; tokens * c.n_head * c.hdv];
    for t in 0..tokens {
        let n = n_pos + t;
        let first = if window > 0 { n.saturating_sub(window) } else { 0 };
        for h in 0..c.n_head {
            let kvh = h / (c.n_head / c.n_head_kv);
            let (qh, oh) = ((t * c.n_head + h) * c.hd, (t * c.n_head + h) * c.hdv);
            let out = &mut want[oh..oh + c.hdv];
            ops::attention_head(
                &q[qh..qh + c.hd],
                k,
                ks,
                kvh * c.hd,
                v,
                vs,
                kvh * c.hdv,
                first,
                n,
                scale,
                softcap,
                out,
            );
        }
    }
    want
}

/// Flash-decoding attention against the CPU twin under every way an adapter can spread it:
/// a query head or a whole KV group per workgroup, the positions split 1, 3 or 32 ways
/// (more splits than a window has positions leaves some empty), f32 and f16 caches, a
/// window and a soft-cap, three tokens in one dispatch; widths that are not multiples of
/// the 64 threads (a value head of 130 takes three per thread) and more than one tile of
/// positions.
#[test]
fn attention_every_split_and_grouping() {
    use lanterna::gpu::builder::AttnIo;
    use lanterna::gpu::kernels::AttnChoice;
    let Some(mut r) = rig() else { return };
    let cases = [
        AttnCase { n_head: 6, n_head_kv: 2, hd: 40, hdv: 24, n_ctx: 70 },
        AttnCase { n_head: 8, n_head_kv: 2, hd: 72, hdv: 130, n_ctx: 150 },
    ];
    let mut runs = 0;
    for c in &cases {
        let (ks, vs, tokens) = (c.n_head_kv * c.hd, c.n_head_kv * c.hdv, 3usize);
        let n_pos = c.n_ctx - tokens;
        let q = rand_f32(tokens * c.n_head * c.hd, 31);
        for kv in [KvType::F32, KvType::F16] {
            // Scores of a few units, as in real models, so the softmax is not flat; the
            // cache keeps what its type can (the CPU twin attends over the rounded values).
            let k: Vec<f32> = rand_f32(c.n_ctx * ks, 32).iter().map(|v| kv.round(v * 3.0)).collect();
            let v: Vec<f32> = rand_f32(c.n_ctx * vs, 33).iter().map(|&v| kv.round(v)).collect();
            let (qb, kb, vb) = (
                f32_buffer_init(&r.ctx, "q", &q),
                f32_buffer_init(&r.ctx, "k", &cache_words(&k, kv)),
                f32_buffer_init(&r.ctx, "v", &cache_words(&v, kv)),
            );
            let partials = f32_buffer(&r.ctx, "partials", tokens * c.n_head * 32 * (c.hdv + 2));
            for (share_group, splits) in [(false, 1), (true, 1), (true, 3), (true, 32)] {
                r.kernels.attention = AttnChoice { share_group, splits: Some(splits) };
                for (window, softcap) in [(0usize, None), (10, None), (0, Some(1.5f32))] {
                    let want = attention_want(c, &q, &k, &v, n_pos, tokens, window, softcap);
                    let ob = f32_buffer(&r.ctx, "out", tokens * c.n_head * c.hdv);
                    let p = attn_params(c, window, softcap);
                    let io = AttnIo {
                        q: &qb,
                        k_cache: &kb,
                        v_cache: &vb,
                        partials: &partials,
                        out: &ob,
                        n_head: c.n_head as u32,
                        kv,
                    };
                    let ds: Vec<_> = r
                        .builder()
                        .attention("attention", io, p)
                        .unwrap()
                        .into_iter()
                        .map(|mut d| {
                            let (gx, gy, gz) = d.groups.at(tokens as u32);
                            d.groups = Groups::Fixed(gx, gy, gz);
                            d
                        })
                        .collect();
                    assert_eq!(
                        ds.len(),
                        if splits > 1 { 2 } else { 1 },
                        "a reduce pass exactly where positions are split"
                    );
                    let step = Step::run(0, n_pos - 1, tokens, 0);
                    run_once(&r.ctx, &r.step, step, &ds).unwrap();
                    let e = nmse(&read_f32(&r.ctx, &ob, want.len()).unwrap(), &want);
                    let name = ds[0].kernel.name();
                    assert!(
                        e < F32_NMSE,
                        "{name} hd {} splits {splits} window {window} softcap {softcap:?}: NMSE {e:e}",
                        c.hd
                    );
                    runs += 1;
                }
            }
        }
    }
    println!("{runs} attention configurations within NMSE {F32_NMSE:e}");
}

/// One decoding token's q and k as the CPU twins make them before attention: each head
/// RMS-normalised (where `norms` are given), then rotated at `pos`.
struct RopeCase<'a> {
    n_rot: usize,
    pos: usize,
    freq: &'a [f32],
    style: RopeStyle,
    norms: Option<(&'a [f32], &'a [f32])>,
}

const ROPE_EPS: f32 = 1e-6;

fn rope_want(c: &AttnCase, rc: &RopeCase, q: &[f32], k: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut q, mut k) = (q.to_vec(), k.to_vec());
    if let Some((qn, kn)) = rc.norms {
        q.chunks_mut(c.hd).for_each(|h| ops::rms_norm(h, qn, ROPE_EPS));
        k.chunks_mut(c.hd).for_each(|h| ops::rms_norm(h, kn, ROPE_EPS));
    }
    for x in [&mut q, &mut k] {
        ops::rope(x, c.hd, rc.n_rot, rc.pos, 10000.0, 0.5, Some(rc.freq), rc.style);
    }
    (q, k)
}

/// Decoding's attention with its RoPE, q/k norms and cache append fused in
/// (`attention_rope`) against the CPU twins run one after the other (norms, RoPE, the
/// append, attention): both RoPE styles with partial rotation, with and without norms, f32
/// and f16 caches, a query head or a KV group per workgroup, the positions split 1, 3 or 32
/// ways (with 32, splits before the new position's are empty), with and without a window.
/// The rotated q and k go to their own buffers, the cache gets row `pos` and no other, and
/// q and k are left as they were.
#[test]
fn attention_with_rope_norms_and_append_fused() {
    use lanterna::gpu::builder::AttnIo;
    use lanterna::gpu::kernels::AttnChoice;
    let Some(mut r) = rig() else { return };
    let c = AttnCase { n_head: 6, n_head_kv: 2, hd: 72, hdv: 130, n_ctx: 90 };
    let (ks, vs, n_rot, pos) = (c.n_head_kv * c.hd, c.n_head_kv * c.hdv, 50usize, 83usize);
    let (freq, table) = rope_freq_and_table(n_rot, c.n_ctx);
    let tb = f32_buffer_init(&r.ctx, "table", &table);
    let (q, k_new, v_new) = (rand_f32(c.n_head * c.hd, 41), rand_f32(ks, 42), rand_f32(vs, 43));
    let (qn, kn): (Vec<f32>, Vec<f32>) =
        (rand_f32(c.hd, 44).iter().map(|v| 1.0 + v).collect(), rand_f32(c.hd, 45).iter().map(|v| 1.0 + v).collect());
    let (qnb, knb) = (f32_buffer_init(&r.ctx, "q norm", &qn), f32_buffer_init(&r.ctx, "k norm", &kn));
    let mut runs = 0;
    for (style, norms, kv) in [RopeStyle::Norm, RopeStyle::Neox]
        .into_iter()
        .flat_map(|s| [false, true].map(|n| (s, n)))
        .flat_map(|(s, n)| [KvType::F32, KvType::F16].map(|kv| (s, n, kv)))
    {
        let rc = RopeCase { n_rot, pos, freq: &freq, style, norms: norms.then_some((&qn[..], &kn[..])) };
        let (want_q, want_k) = rope_want(&c, &rc, &q, &k_new);
        // Positions before `pos` cached as the type keeps them, zeros after; then row pos.
        let mut k_all: Vec<f32> = rand_f32(pos * ks, 46).iter().map(|v| kv.round(v * 3.0)).collect();
        let mut v_all: Vec<f32> = rand_f32(pos * vs, 47).iter().map(|&v| kv.round(v)).collect();
        let (k_old, v_old) = (cache_words(&pad(&k_all, c.n_ctx * ks), kv), cache_words(&pad(&v_all, c.n_ctx * vs), kv));
        ops::kv_store(&mut k_all, &want_k, kv);
        ops::kv_store(&mut v_all, &v_new, kv);
        for (share_group, splits) in [(false, 1), (true, 1), (true, 3), (true, 32)] {
            r.kernels.attention = AttnChoice { share_group, splits: Some(splits) };
            for window in [0usize, 10] {
                let want = attention_want(&c, &want_q, &k_all, &v_all, pos + 1, 1, window, None);
                let bufs = [&q, &k_new, &v_new, &k_old, &v_old].map(|d| f32_buffer_init(&r.ctx, "input", d));
                let [qb, kb, vb, kc, vc] = &bufs;
                let (rq, rk) = (f32_buffer(&r.ctx, "rotated q", q.len()), f32_buffer(&r.ctx, "rotated k", ks));
                let partials = f32_buffer(&r.ctx, "partials", c.n_head * 32 * (c.hdv + 2));
                let ob = f32_buffer(&r.ctx, "out", c.n_head * c.hdv);
                let p = attn_params(&c, window, None);
                let n_head = c.n_head as u32;
                let io = AttnIo { q: qb, k_cache: kc, v_cache: vc, partials: &partials, out: &ob, n_head, kv };
                let norms = norms.then_some((&qnb, &knb));
                let (rotated, n_rot) = ((&rq, &rk), n_rot as u32);
                let rope = RopeFuseIo { k: kb, v: vb, table: &tb, norms, rotated, n_rot, style, eps: ROPE_EPS };
                let mut ds = r.builder().attention_rope("attention", io, rope, p).unwrap();
                for d in ds.iter_mut() {
                    let (gx, gy, gz) = d.groups.at(1);
                    d.groups = Groups::Fixed(gx, gy, gz);
                }
                run_once(&r.ctx, &r.step, Step::run(0, pos, 1, 0), &ds).unwrap();
                let got = |b: &wgpu::Buffer, n: usize| read_f32(&r.ctx, b, n).unwrap();
                let words = |width: usize| c.n_ctx * width * kv.bytes() / 4;
                let errs = [
                    nmse(&got(&ob, want.len()), &want),
                    nmse(&got(&rq, q.len()), &want_q),
                    nmse(&got(&rk, ks), &want_k),
                    nmse(&cache_values(&got(kc, words(ks)), kv), &pad(&k_all, c.n_ctx * ks)),
                    nmse(&cache_values(&got(vc, words(vs)), kv), &pad(&v_all, c.n_ctx * vs)),
                    nmse(&got(qb, q.len()), &q) + nmse(&got(kb, ks), &k_new),
                ];
                let name = ds[0].kernel.name();
                assert!(
                    errs.iter().all(|&e| e < F32_NMSE),
                    "{name} {style:?} norms {norms:?} splits {splits} window {window}: NMSE out, rotated q, k, k cache, v cache, q + k after {errs:?}",
                    norms = norms.is_some()
                );
                runs += 1;
            }
        }
    }
    println!("{runs} fused RoPE + attention configurations within NMSE {F32_NMSE:e}");
}

/// `v` with zeros appended up to `n` values.
fn pad(v: &[f32], n: usize) -> Vec<f32> {
    let mut out = v.to_vec();
    out.resize(n, 0.0);
    out
}

/// The matvecs that finish with a fused op, against the CPU twins run one after the other:
/// the up projection with the gated activation (SiLU and GELU), and an output projection
/// with the residual add; with one lane per row and with 32, X from storage and uniform.
#[test]
fn matvec_fused_glu_and_residual_add() {
    let (ty, rows, cols) = (GgmlType::Q4K, 45, 512);
    let bytes = rand_tensor(ty, rows * cols, 61);
    let mut w = vec![0f32; rows * cols];
    dequantize(ty, &bytes, &mut w).unwrap();
    let x = rand_f32(cols, 62);
    let mut sum = vec![0f32; rows];
    ops::matvec(&w, &x, &mut sum);
    let other: Vec<f32> = rand_f32(rows, 63).iter().map(|v| v * 4.0).collect();
    for c in [
        class_default(AdapterClass::Cpu, Reduce::Workgroup, MatvecX::Uniform),
        class_default(AdapterClass::Gpu, Reduce::Workgroup, MatvecX::Storage),
        MatvecConfig { wg: 64, tpr: 32, rows: 2, reduce: Reduce::Subgroup, x: MatvecX::Storage },
        MatvecConfig { wg: 32, tpr: 1, rows: 3, reduce: Reduce::Workgroup, x: MatvecX::Storage },
    ] {
        let Some(mut r) = rig_with(c) else { continue };
        let matvec_x = c.x;
        let t = GpuTensor::upload(&r.ctx, "w", ty, cols, rows, &bytes).unwrap();
        let xb = x_buffer(&r.ctx, "x", cols);
        r.ctx.queue.write_buffer(&xb, 0, bytemuck::cast_slice(&x));
        for act in [Activation::Silu, Activation::GeluTanh] {
            let mut want = other.clone();
            ops::glu(&mut want, &sum, act);
            let gate = f32_buffer_init(&r.ctx, "gate", &other);
            let d = r.builder().matvec_then("up", &t, &xb, &gate, Then::Glu(act)).unwrap();
            assert_eq!(
                d[0].kernel,
                Kernel::Matvec(ty, matvec_x, Finish::Glu(act), r.kernels.matvec_reduce, r.kernels.matvec, XNorm::None)
            );
            run_once(&r.ctx, &r.step, Step::default(), &d).unwrap();
            let e = nmse(&read_f32(&r.ctx, &gate, rows).unwrap(), &want);
            assert!(e < F32_NMSE, "{}: NMSE {e:e}", d[0].kernel.name());
        }
        let mut want_z = other.clone();
        ops::add(&mut want_z, &sum);
        let (y, z) = (f32_buffer(&r.ctx, "y", rows), f32_buffer_init(&r.ctx, "z", &other));
        let d = r.builder().matvec_then("o", &t, &xb, &y, Then::AddInto(&z)).unwrap();
        assert_eq!(
            d[0].kernel,
            Kernel::Matvec(ty, matvec_x, Finish::Add, r.kernels.matvec_reduce, r.kernels.matvec, XNorm::None)
        );
        run_once(&r.ctx, &r.step, Step::default(), &d).unwrap();
        let (ey, ez) =
            (nmse(&read_f32(&r.ctx, &y, rows).unwrap(), &sum), nmse(&read_f32(&r.ctx, &z, rows).unwrap(), &want_z));
        assert!(ey < F32_NMSE && ez < F32_NMSE, "{}: NMSE y {ey:e}, z {ez:e}", d[0].kernel.name());
    }
}

#[test]
fn glu_silu_and_gelu() {
    let Some(mut r) = rig() else { return };
    let n = 1001;
    for act in [Activation::Silu, Activation::GeluTanh] {
        let g: Vec<f32> = rand_f32(n, 41).iter().map(|v| v * 8.0).collect();
        let u = rand_f32(n, 42);
        let mut want = g.clone();
        ops::glu(&mut want, &u, act);
        let gb = f32_buffer_init(&r.ctx, "gate", &g);
        let ub = f32_buffer_init(&r.ctx, "up", &u);
        let d = r.builder().glu("glu", &gb, &ub, n as u32, act).unwrap();
        run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
        let e = nmse(&read_f32(&r.ctx, &gb, n).unwrap(), &want);
        assert!(e < F32_NMSE, "glu {act:?}: NMSE {e:e}");
    }
}

#[test]
fn residual_add() {
    let Some(mut r) = rig() else { return };
    let n = 1001;
    let x = rand_f32(n, 51);
    let y = rand_f32(n, 52);
    let mut want = x.clone();
    ops::add(&mut want, &y);
    let xb = f32_buffer_init(&r.ctx, "x", &x);
    let yb = f32_buffer_init(&r.ctx, "y", &y);
    let d = r.builder().add("add", &xb, &yb, n as u32).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &xb, n).unwrap(), &want);
    assert!(e < F32_NMSE, "add: NMSE {e:e}");
}

#[test]
fn matmul_every_type_for_a_chunk_of_tokens() {
    let Some(mut r) = rig() else { return };
    // Every variant: every adapter runs the vec4 one; the subgroup one, and the several-rows
    // one (the 32-weight block types; the others run the subgroup one) where the device has
    // subgroups of 8 or more (lavapipe does; CPU adapters run the rows one).
    let mut variants = vec![MatmulX::Vec4];
    if r.ctx.features.contains(wgpu::Features::SUBGROUP) && r.ctx.info.subgroup_min_size >= 8 {
        variants.extend([MatmulX::Subgroup, MatmulX::Rows]);
    }
    // 13 tokens: not a multiple of the 8 tokens a thread computes; 37 rows: not of 64.
    let (rows, n_tok) = (37usize, 13u32);
    for x_variant in variants {
        r.kernels.matmul_x = x_variant;
        for ty in GgmlType::ALL {
            let blocks = if ty.block_size() == 1 {
                75
            } else if ty.block_size() == 32 {
                5
            } else {
                2
            };
            let cols = blocks * ty.block_size() as usize;
            let bytes = rand_tensor(ty, rows * cols, 500 + ty.id() as u64);
            let x = rand_f32(16 * cols, 8); // buffer padded to a multiple of 8 tokens
            let mut w = vec![0f32; rows * cols];
            dequantize(ty, &bytes, &mut w).unwrap();
            let mut want = vec![0f32; n_tok as usize * rows];
            for t in 0..n_tok as usize {
                ops::matvec(&w, &x[t * cols..(t + 1) * cols], &mut want[t * rows..(t + 1) * rows]);
            }
            let t =
                GpuTensor::upload_capped(&r.ctx, "w", ty, cols, rows, &bytes, ty.row_bytes(cols as u64).unwrap() * 16)
                    .unwrap();
            let xb = f32_buffer_init(&r.ctx, "x", &x);
            let yb = f32_buffer(&r.ctx, "y", 16 * rows);
            let tokens = f32_buffer(&r.ctx, "tokens", 16);
            let xt = f32_buffer(&r.ctx, "xt", 16 * cols);
            let mut b = Builder {
                ctx: &r.ctx,
                kernels: &mut r.kernels,
                step: &r.step,
                batch: Some(Batch { max_tokens: 16, tokens: &tokens, xt: &xt }),
            };
            let d = b.matvec("matmul", &t, &xb, &yb).unwrap();
            let want_x =
                if x_variant == MatmulX::Rows && !MatmulX::rows_pays(ty) { MatmulX::Subgroup } else { x_variant };
            let tr = d.iter().find(|d| d.kernel == Kernel::Transpose);
            if want_x == MatmulX::Rows {
                // matmul_rows reads the chunk token-major, as the layers leave it.
                assert!(tr.is_none(), "a transpose before the rows matmul of {ty}");
            } else {
                // The transpose copies the step's tokens, not the chunk's 16: a decoding
                // batch of 8 in a chunk of 64 once copied 64 tokens per matmul.
                let tr = tr.expect("a transpose before the matmul");
                assert_eq!(tr.groups.at(n_tok).1, n_tok, "transpose rows for {n_tok} tokens");
            }
            let d: Vec<_> = d
                .into_iter()
                .map(|mut d| {
                    let (gx, gy, gz) = d.groups.at(n_tok);
                    d.groups = Groups::Fixed(gx, gy, gz);
                    d
                })
                .collect();
            assert!(
                d.iter().any(|d| d.kernel == Kernel::Matmul(ty, want_x)),
                "the {want_x:?} matmul was not used for {ty}"
            );
            run_once(&r.ctx, &r.step, Step::run(0, 0, n_tok as usize, 0), &d).unwrap();
            let got = read_f32(&r.ctx, &yb, n_tok as usize * rows).unwrap();
            let e = nmse(&got, &want);
            assert!(e < F32_NMSE, "matmul ({x_variant:?}) {ty}: NMSE {e:e}");
        }
        println!("matmul ({x_variant:?}): all {} types within NMSE {F32_NMSE:e}", GgmlType::ALL.len());
    }
}

/// Past the adapter's workgroups per dimension, the elementwise kernels' grids continue
/// in y (`Kernels::groups`): every kernel on such a grid must cover all of its items. A
/// limit of 3 workgroups forces the spill at test sizes (1001 values: 16 groups of 64 → 3 × 6;
/// 7 rows → 3 × 3).
#[test]
fn elementwise_kernels_cover_a_grid_spilled_into_y() {
    let Some(mut r) = rig() else { return };
    r.kernels.max_groups = 3;
    let n = 1001;
    let (x, y) = (rand_f32(n, 71), rand_f32(n, 72));

    let mut want = x.clone();
    ops::add(&mut want, &y);
    let (xb, yb) = (f32_buffer_init(&r.ctx, "x", &x), f32_buffer_init(&r.ctx, "y", &y));
    let d = r.builder().add("add", &xb, &yb, n as u32).unwrap();
    assert!(d.groups.at(1).1 > 1, "the grid must spill into y");
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &xb, n).unwrap(), &want);
    assert!(e < F32_NMSE, "add on a spilled grid: NMSE {e:e}");

    let mut want = x.clone();
    ops::glu(&mut want, &y, Activation::Silu);
    let gb = f32_buffer_init(&r.ctx, "gate", &x);
    let d = r.builder().glu("glu", &gb, &yb, n as u32, Activation::Silu).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &gb, n).unwrap(), &want);
    assert!(e < F32_NMSE, "glu on a spilled grid: NMSE {e:e}");

    let (rows, cols) = (7usize, 143usize);
    let (x, g) = (rand_f32(rows * cols, 73), rand_f32(cols, 74));
    let mut want = x.clone();
    want.chunks_exact_mut(cols).for_each(|row| ops::rms_norm(row, &g, 1e-6));
    let (xb, gb, yb) =
        (f32_buffer_init(&r.ctx, "x", &x), f32_buffer_init(&r.ctx, "g", &g), f32_buffer(&r.ctx, "y", rows * cols));
    let d = r.builder().rms_norm("rms_norm", &xb, &yb, &gb, rows as u32, cols as u32, 1e-6).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &yb, rows * cols).unwrap(), &want);
    assert!(e < F32_NMSE, "rms_norm on a spilled grid: NMSE {e:e}");
    let d = r.builder().rms_norm_inplace("rms_norm_inplace", &xb, &gb, rows as u32, cols as u32, 1e-6).unwrap();
    run_once(&r.ctx, &r.step, Step::default(), &[d]).unwrap();
    let e = nmse(&read_f32(&r.ctx, &xb, rows * cols).unwrap(), &want);
    assert!(e < F32_NMSE, "rms_norm_inplace on a spilled grid: NMSE {e:e}");
}

/// q, k and v in one dispatch, each tensor of its own type (as Q4_K_M files mix Q4_K and
/// Q6_K), against three CPU matvecs; rows that are not multiples of a workgroup's rows.
#[test]
fn matvec_qkv_mixed_types_every_configuration() {
    let cols = 512;
    let specs = [(GgmlType::Q4K, 45), (GgmlType::Q6K, 19), (GgmlType::Q8_0, 23)];
    let x = rand_f32(cols, 81);
    let tensors: Vec<(GgmlType, usize, Vec<u8>, Vec<f32>)> = specs
        .iter()
        .enumerate()
        .map(|(i, &(ty, rows))| {
            let bytes = rand_tensor(ty, rows * cols, 82 + i as u64);
            let mut w = vec![0f32; rows * cols];
            dequantize(ty, &bytes, &mut w).unwrap();
            let mut want = vec![0f32; rows];
            ops::matvec(&w, &x, &mut want);
            (ty, rows, bytes, want)
        })
        .collect();
    // (threads, lanes per row, rows per lane group, X, reduction): both classes' defaults
    // and two more, each reduction twice. A pipeline of three decoders, Q6_K's among them,
    // costs lavapipe ~20 s to compile on a cold cache, so each shape runs once.
    let shapes = [
        (16, 1, 8, MatvecX::Uniform, Reduce::Subgroup),
        (32, 1, 3, MatvecX::Storage, Reduce::Workgroup),
        (64, 8, 2, MatvecX::Storage, Reduce::Workgroup),
        (64, 32, 1, MatvecX::Storage, Reduce::Subgroup),
    ];
    for (wg, tpr, rows, xv, reduce) in shapes {
        let Some(mut r) = rig_with(MatvecConfig { wg, tpr, rows, reduce, x: xv }) else { continue };
        let matvec_x = xv;
        let w: Vec<GpuTensor> = tensors
            .iter()
            .map(|(ty, rows, b, _)| GpuTensor::upload(&r.ctx, "w", *ty, cols, *rows, b).unwrap())
            .collect();
        let y: Vec<wgpu::Buffer> = tensors.iter().map(|t| f32_buffer(&r.ctx, "y", t.1)).collect();
        let xb = x_buffer(&r.ctx, "x", cols);
        r.ctx.queue.write_buffer(&xb, 0, bytemuck::cast_slice(&x));
        let d = r.builder().matvec_qkv("qkv", [&w[0], &w[1], &w[2]], &xb, [&y[0], &y[1], &y[2]], None).unwrap();
        let d = d.expect("three single-part tensors of one row length fuse");
        assert_eq!(
            d.kernel,
            Kernel::MatvecQkv(
                [GgmlType::Q4K, GgmlType::Q6K, GgmlType::Q8_0],
                matvec_x,
                r.kernels.matvec_reduce,
                r.kernels.matvec,
                XNorm::None
            )
        );
        run_once(&r.ctx, &r.step, Step::default(), std::slice::from_ref(&d)).unwrap();
        for (i, (ty, rows, _, want)) in tensors.iter().enumerate() {
            let e = nmse(&read_f32(&r.ctx, &y[i], *rows).unwrap(), want);
            assert!(e < F32_NMSE, "{} ({tpr} lanes per row): tensor {i} ({ty}): NMSE {e:e}", d.kernel.name());
        }
    }
}

/// Gate and up in one dispatch with the activation, against the CPU twins run one after
/// the other (`ops::matvec` twice, then `ops::glu`): the two tensors of different types,
/// under both classes' defaults and two more shapes, both activations.
#[test]
fn matvec_gate_up_mixed_types_every_configuration() {
    let (rows, cols) = (45, 512);
    let types = [GgmlType::Q4_1, GgmlType::Q4K];
    let x = rand_f32(cols, 91);
    let tensors: Vec<(Vec<u8>, Vec<f32>)> = types
        .iter()
        .enumerate()
        .map(|(i, &ty)| {
            let bytes = rand_tensor(ty, rows * cols, 92 + i as u64);
            let mut w = vec![0f32; rows * cols];
            dequantize(ty, &bytes, &mut w).unwrap();
            let mut sum = vec![0f32; rows];
            ops::matvec(&w, &x, &mut sum);
            (bytes, sum)
        })
        .collect();
    // (threads, lanes per row, rows per lane group, X, reduction, activation).
    let shapes = [
        (16, 1, 8, MatvecX::Uniform, Reduce::Subgroup, Activation::Silu),
        (32, 1, 3, MatvecX::Storage, Reduce::Workgroup, Activation::GeluTanh),
        (64, 8, 2, MatvecX::Storage, Reduce::Workgroup, Activation::Silu),
        (64, 32, 1, MatvecX::Storage, Reduce::Subgroup, Activation::GeluTanh),
    ];
    for (wg, tpr, r_rows, xv, reduce, act) in shapes {
        let Some(mut r) = rig_with(MatvecConfig { wg, tpr, rows: r_rows, reduce, x: xv }) else { continue };
        let w: Vec<GpuTensor> = types
            .iter()
            .zip(&tensors)
            .map(|(&ty, (b, _))| GpuTensor::upload(&r.ctx, "w", ty, cols, rows, b).unwrap())
            .collect();
        let mut want = tensors[0].1.clone();
        ops::glu(&mut want, &tensors[1].1, act);
        let xb = x_buffer(&r.ctx, "x", cols);
        r.ctx.queue.write_buffer(&xb, 0, bytemuck::cast_slice(&x));
        let y = f32_buffer(&r.ctx, "y", rows);
        let d = r.builder().matvec_gate_up("gate_up", [&w[0], &w[1]], &xb, &y, act, None).unwrap();
        let d = d.expect("two single-part tensors of one shape fuse");
        assert_eq!(
            d.kernel,
            Kernel::MatvecGateUp(types, xv, r.kernels.matvec_reduce, r.kernels.matvec, act, XNorm::None)
        );
        run_once(&r.ctx, &r.step, Step::default(), std::slice::from_ref(&d)).unwrap();
        let e = nmse(&read_f32(&r.ctx, &y, rows).unwrap(), &want);
        println!("{} ({tpr} lanes per row, {act:?}): NMSE {e:.2e}", d.kernel.name());
        assert!(e < F32_NMSE, "{} ({tpr} lanes per row, {act:?}): NMSE {e:e}", d.kernel.name());
    }
}

/// Seeded random tensors of `types`, `rows` × `cols`, as (bytes, dequantized weights).
fn rand_weights(types: &[GgmlType], rows: usize, cols: usize, seed: u64) -> Vec<(Vec<u8>, Vec<f32>)> {
    let tensor = |(i, &ty): (usize, &GgmlType)| {
        let bytes = rand_tensor(ty, rows * cols, seed + i as u64);
        let mut w = vec![0f32; rows * cols];
        dequantize(ty, &bytes, &mut w).unwrap();
        (bytes, w)
    };
    types.iter().enumerate().map(tensor).collect()
}

/// The RMS norm fused into each decoding matvec kernel (matvec_norm_rms.wgsl), against the
/// CPU twins run one after the other (`ops::rms_norm`, then `ops::matvec`, and `ops::glu`
/// for gate and up): the products, and the normed x the first workgroup writes, under
/// both classes' defaults and two more shapes.
#[test]
fn matvecs_with_the_rms_norm_fused_every_configuration() {
    let (rows, cols, eps) = (45, 512, 1e-5f32);
    let x: Vec<f32> = rand_f32(cols, 101).iter().map(|v| v * 3.0).collect();
    let g: Vec<f32> = rand_f32(cols, 102).iter().map(|v| v + 1.0).collect();
    let mut xn = x.clone();
    ops::rms_norm(&mut xn, &g, eps);
    let products = |ws: &[(Vec<u8>, Vec<f32>)]| -> Vec<Vec<f32>> {
        let product = |(_, w): &(Vec<u8>, Vec<f32>)| {
            let mut y = vec![0f32; rows];
            ops::matvec(w, &xn, &mut y);
            y
        };
        ws.iter().map(product).collect()
    };
    let (one, qkv, pair) =
        ([GgmlType::Q4K], [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q5_0], [GgmlType::Q4_1, GgmlType::Q4_0]);
    let (w1, w3, w2) = (
        rand_weights(&one, rows, cols, 103),
        rand_weights(&qkv, rows, cols, 104),
        rand_weights(&pair, rows, cols, 107),
    );
    let (want1, want3) = (products(&w1), products(&w3));
    let mut want2 = products(&w2);
    let up = want2.pop().unwrap();
    ops::glu(&mut want2[0], &up, Activation::Silu);
    let shapes = [
        (16, 1, 8, MatvecX::Uniform, Reduce::Subgroup),
        (32, 1, 3, MatvecX::Storage, Reduce::Workgroup),
        (64, 8, 2, MatvecX::Storage, Reduce::Workgroup),
        (64, 32, 1, MatvecX::Storage, Reduce::Subgroup),
    ];
    for (wg, tpr, r_rows, xv, reduce) in shapes {
        let Some(mut r) = rig_with(MatvecConfig { wg, tpr, rows: r_rows, reduce, x: xv }) else { continue };
        let upload = |r: &Rig, types: &[GgmlType], ws: &[(Vec<u8>, Vec<f32>)]| -> Vec<GpuTensor> {
            types
                .iter()
                .zip(ws)
                .map(|(&ty, (b, _))| GpuTensor::upload(&r.ctx, "w", ty, cols, rows, b).unwrap())
                .collect()
        };
        let (t1, t3, t2) = (upload(&r, &one, &w1), upload(&r, &qkv, &w3), upload(&r, &pair, &w2));
        let xb = x_buffer(&r.ctx, "x", cols);
        r.ctx.queue.write_buffer(&xb, 0, bytemuck::cast_slice(&x));
        let gb = f32_buffer_init(&r.ctx, "g", &g);
        let y: Vec<wgpu::Buffer> = (0..3).map(|_| f32_buffer(&r.ctx, "y", rows)).collect();
        let outs: Vec<wgpu::Buffer> = (0..3).map(|_| f32_buffer(&r.ctx, "xn", cols)).collect();
        let norm = |i: usize| Some(FusedNorm { g: gb.clone(), out: outs[i].clone(), eps });
        let mut b = r.builder();
        let d1 = b.matvec_normed("m", &t1[0], &xb, &y[0], Then::Store, norm(0)).unwrap().remove(0);
        let d3 = b.matvec_qkv("qkv", [&t3[0], &t3[1], &t3[2]], &xb, [&y[0], &y[1], &y[2]], norm(1)).unwrap().unwrap();
        let d2 = b.matvec_gate_up("gu", [&t2[0], &t2[1]], &xb, &y[0], Activation::Silu, norm(2)).unwrap().unwrap();
        let check =
            |r: &Rig, d: &lanterna::gpu::kernels::Dispatch, got: &[(&wgpu::Buffer, &Vec<f32>)], out: &wgpu::Buffer| {
                run_once(&r.ctx, &r.step, Step::default(), std::slice::from_ref(d)).unwrap();
                for (i, (buf, want)) in got.iter().enumerate() {
                    let e = nmse(&read_f32(&r.ctx, buf, want.len()).unwrap(), want);
                    assert!(e < F32_NMSE, "{} ({tpr} lanes per row): output {i}: NMSE {e:e}", d.kernel.name());
                }
                let e = nmse(&read_f32(&r.ctx, out, cols).unwrap(), &xn);
                assert!(e < F32_NMSE, "{} ({tpr} lanes per row): normed x NMSE {e:e}", d.kernel.name());
                println!("{} ({tpr} lanes per row): products and normed x within {F32_NMSE:e}", d.kernel.name());
            };
        check(&r, &d1, &[(&y[0], &want1[0])], &outs[0]);
        check(&r, &d3, &[(&y[0], &want3[0]), (&y[1], &want3[1]), (&y[2], &want3[2])], &outs[1]);
        check(&r, &d2, &[(&y[0], &want2[0])], &outs[2]);
    }
}

/// The sampler's candidates found on the GPU, against the CPU twin `sampler::top_of`:
/// logits with ties (which the lower id wins), a NaN (which never does) and a length that
/// is not a multiple of a chunk, for each size a sampler asks for, up to the largest.
#[test]
fn topk_finds_the_best_logits_in_the_samplers_order() {
    use lanterna::gpu::topk::{TopK, TOPK_MAX};
    use lanterna::sampler::top_of;
    let Some(mut r) = rig() else { return };
    let n = 49_157;
    // Rounded to a coarse grid so that many logits tie.
    let mut logits: Vec<f32> = rand_f32(n, 71).iter().map(|v| (v * 64.0).round() / 4.0).collect();
    logits[17] = f32::NAN;
    logits[n - 1] = 1e3;
    let lb = f32_buffer_init(&r.ctx, "logits", &logits);
    let topk = TopK::new(&mut r.builder(), &lb, n as u32).unwrap();
    for k in [1, 2, 3, 40, 104, TOPK_MAX] {
        let mut enc = r.ctx.device.create_command_encoder(&Default::default());
        topk.record(&r.ctx, &mut enc, k).unwrap();
        r.ctx.queue.submit([enc.finish()]);
        let got = topk.read(&r.ctx, k).unwrap();
        let want = top_of(&logits, k);
        assert_eq!(got.len(), k);
        assert!(got.iter().zip(&want).all(|(a, b)| a.0 == b.0 && a.1 == b.1), "k {k}:\n gpu {got:?}\n cpu {want:?}");
    }
    assert!(topk.record(&r.ctx, &mut r.ctx.device.create_command_encoder(&Default::default()), TOPK_MAX + 1).is_err());
}
