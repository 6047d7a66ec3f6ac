// matmul.wgsl's main for CPU adapters (lavapipe): each thread owns R rows (rows
// first + r·RW) and eight tokens, and the x of a unit of columns (a block, at least 32
// columns) is loaded once into private registers for all R rows. With one row a thread,
// each column's x is loaded (and handed round the subgroup) once per row, which costs
// lavapipe more than the row's arithmetic: its prompt matmul on 8 tokens took 5.4-6.6× a
// single-token matvec of the same Q4_0/Q4_1/Q8_0 weights, this one 2.4-3.4× (see README).
// The lanes of a subgroup (at least eight) walk the same columns in step: lane l loads
// token t0 + l's columns of a unit from X as the layers leave it (token-major: no
// transpose pass before this kernel) and broadcasts hand them round.
// A row past the tensor computes the last row's sums and stores nothing: a branch would
// make lavapipe blend every value set under it.

struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sid: u32,
}

override RW: u32 = 16u;  // threads per workgroup
override R: u32 = 8u;    // rows per thread, at most 8
// Columns per unit: a K-quant super-block, or 32 columns of smaller blocks.
const UNIT: u32 = max(BLOCK_WEIGHTS, 32u);

// x of the unit's columns, eight tokens each; the decoders read it with constant indices.
var<private> xs: array<mat2x4<f32>, 256>;
// Σ x of each 32 columns of the unit (x32_sum), made once per unit for all R rows: the
// decoders with an offset would otherwise add the same 32 columns up once per row.
var<private> xsum: array<mat2x4<f32>, 8>;
const XSUM_CACHED: bool = true;
var<private> lane: u32;

fn xval(i: u32) -> acc_t {
    return xs[i];
}

fn x32_sum(xi: u32) -> acc_t {
    return xsum[xi >> 5u];
}

@compute @workgroup_size(RW)
fn main(ids: Ids) {
    lane = ids.sid % 8u;
    t0 = ids.wid.y * 8u;
    let first = ids.wid.x * RW * R + ids.lid;
    let per = UNIT / BLOCK_WEIGHTS;
    let nb = P.cols / BLOCK_WEIGHTS;
    var a0 = acc_zero(); var a1 = acc_zero(); var a2 = acc_zero(); var a3 = acc_zero();
    var a4 = acc_zero(); var a5 = acc_zero(); var a6 = acc_zero(); var a7 = acc_zero();
    for (var u = 0u; u * per < nb; u++) {
        load_unit(u * UNIT);
        let n = min(per, nb - u * per);
        let b = u * per * BLOCK_BYTES;
        // Each row's sums by name, not acc[r]: lavapipe turns a variable index into a
        // per-lane load and store of the stack.
        a0 += unit_dot(first, b, n, per);
        if (R > 1u) { a1 += unit_dot(first + RW, b, n, per); }
        if (R > 2u) { a2 += unit_dot(first + 2u * RW, b, n, per); }
        if (R > 3u) { a3 += unit_dot(first + 3u * RW, b, n, per); }
        if (R > 4u) { a4 += unit_dot(first + 4u * RW, b, n, per); }
        if (R > 5u) { a5 += unit_dot(first + 5u * RW, b, n, per); }
        if (R > 6u) { a6 += unit_dot(first + 6u * RW, b, n, per); }
        if (R > 7u) { a7 += unit_dot(first + 7u * RW, b, n, per); }
    }
    let acc = array<acc_t, 8>(a0, a1, a2, a3, a4, a5, a6, a7);
    for (var r = 0u; r < R; r++) {
        store_row(first + r * RW, acc[r]);
    }
}

// Row `row`'s sums over unit blocks from byte b of the row: n of its `per` blocks.
fn unit_dot(row: u32, b: u32, n: u32, per: u32) -> acc_t {
    let base = min(row, P.rows - 1u) * P.row_bytes + b;
    var s = acc_zero();
    // A unit of one block is always whole (as in matvec_rows.wgsl): no second decoder copy.
    if (per == 1u || n == per) {
        for (var k = 0u; k < per; k++) {
            s += block_dot(base + k * BLOCK_BYTES, k * BLOCK_WEIGHTS);
        }
    } else {
        for (var k = 0u; k < n; k++) {
            s += block_dot(base + k * BLOCK_BYTES, k * BLOCK_WEIGHTS);
        }
    }
    return s;
}

// xs[j] = column c0 + j's eight tokens, for the unit's columns (0 past the row's end).
// X is token-major here, as the layers write it (no transpose pass): lane l loads eight
// columns of token t0 + l as two vec4s, and broadcasts hand each value round.
fn load_unit(c0: u32) {
    for (var j = 0u; j < UNIT / 8u; j++) {
        let c = c0 + 8u * j;
        var a = vec4<f32>(0.0);
        var b = vec4<f32>(0.0);
        if (c < P.cols) {
            let e = (t0 + lane) * P.x_stride + c / 4u;
            a = X[e];
            b = X[e + 1u];
        }
        xs[8u * j + 0u] = tokens8(a.x);
        xs[8u * j + 1u] = tokens8(a.y);
        xs[8u * j + 2u] = tokens8(a.z);
        xs[8u * j + 3u] = tokens8(a.w);
        xs[8u * j + 4u] = tokens8(b.x);
        xs[8u * j + 5u] = tokens8(b.y);
        xs[8u * j + 6u] = tokens8(b.z);
        xs[8u * j + 7u] = tokens8(b.w);
    }
    for (var g = 0u; g < UNIT / 32u; g++) {
        var s = acc_zero();
        for (var j = 0u; j < 32u; j++) {
            s += xs[32u * g + j];
        }
        xsum[g] = s;
    }
}

// One column's eight tokens from the lanes' values (lane l holds token t0 + l's).
fn tokens8(v: f32) -> mat2x4<f32> {
    let lo = vec4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u));
    let hi = vec4<f32>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u), subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u));
    return mat2x4<f32>(lo, hi);
}

fn store_row(row: u32, acc: acc_t) {
    for (var k = 0u; k < 8u; k++) {
        let t = t0 + k;
        if (row < P.rows && t < S.n_tokens) {
            Y[t * P.out_stride + P.out_offset + row] = acc[k / 4u][k % 4u];
        }
    }
}
