// Each row of `cols` values: y = x / sqrt(mean(x²) + eps) * w. One workgroup per row.
// `main` reads X and writes Y; `main_inplace` normalises Y itself (per-head q/k norms),
// since WebGPU forbids binding one buffer as both read-only and writable; `main_add`
// normalises Y in place and adds it into Z (a post-norm and the residual add after it,
// Gemma 2 and 3: one dispatch instead of two).

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;        // [rows, cols]
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;  // [rows, cols]
@group(0) @binding(2) var<storage, read> G: array<f32>;        // [cols] F32 norm weight
@group(0) @binding(3) var<uniform> P: Params;
@group(0) @binding(4) var<storage, read_write> Z: array<f32>;  // [rows, cols] residual stream (main_add)

// reduce_sum and WG come from reduce.wgsl, prepended by the host.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Grids past the workgroup limit continue in y; the whole workgroup leaves together.
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    var acc = 0.0;
    for (var i = lid; i < P.cols; i += WG) {
        let v = X[base + i];
        acc += v * v;
    }
    let scale = 1.0 / sqrt(reduce_sum(lid, acc) / f32(P.cols) + P.eps);
    for (var i = lid; i < P.cols; i += WG) {
        Y[base + i] = X[base + i] * scale * G[i];
    }
}

// The norm's scale of Y's row at `base`, in every invocation.
fn y_scale(base: u32, lid: u32) -> f32 {
    var acc = 0.0;
    for (var i = lid; i < P.cols; i += WG) {
        let v = Y[base + i];
        acc += v * v;
    }
    return 1.0 / sqrt(reduce_sum(lid, acc) / f32(P.cols) + P.eps);
}

@compute @workgroup_size(64)
fn main_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Grids past the workgroup limit continue in y; the whole workgroup leaves together.
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    let scale = y_scale(base, lid);
    for (var i = lid; i < P.cols; i += WG) {
        Y[base + i] = Y[base + i] * scale * G[i];
    }
}

@compute @workgroup_size(64)
fn main_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Grids past the workgroup limit continue in y; the whole workgroup leaves together.
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let base = row * P.cols;
    let scale = y_scale(base, lid);
    for (var i = lid; i < P.cols; i += WG) {
        let v = Y[base + i] * scale * G[i];
        Y[base + i] = v;
        Z[base + i] += v;
    }
}
