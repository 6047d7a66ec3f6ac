// matvec's X as a uniform buffer of a fixed 64 KiB (inputs of up to 16384 values, the
// buffer padded to that size), cached a unit at a time: `load_x` copies the x of one
// unit of columns (a block, or 32 weights of the one-weight float "blocks") into private
// registers, and the decoders read them there with constant indices, so the R rows a
// thread owns share one load of each x. On lavapipe a uniform-buffer load inside the
// block loop is a gather across the SIMD lanes; this makes it one per unit and thread.
// The padding keeps `load_x` inside the binding wherever cols ≤ 16384.

@group(0) @binding(1) var<uniform> X: array<vec4<f32>, 4096>;  // [16384] the first cols are x

// Weights per unit of the block loop for a decoder of `block_weights` weights per block.
fn unit_of(block_weights: u32) -> u32 {
    return max(block_weights, 32u);
}

// The largest unit: a K-quant super-block.
var<private> xs: array<vec4<f32>, 64>;
// Σ x of each 32 of the unit (x32_sum), made once per unit for all the thread's rows.
var<private> xsums: array<f32, 8>;
const XSUM_CACHED: bool = true;

// Cache x[xi, xi + n) (n a multiple of 4, xi of 4) and say where the decoders find it.
// Where a row has one lane and the adapter has subgroups of 8 or more (`can_broadcast`,
// from the reduce file), the lanes of a subgroup walk the same units in step: each loads
// one vec4 of a 32-value round and eight broadcasts hand them round, one gather per lane
// instead of eight (lavapipe's SmolLM2 Q4_1 matvecs 1.1–1.25× faster). `x_in` (from
// matvec_norm_*.wgsl) gives the value the product uses.
fn load_x(xi: u32, n: u32) -> u32 {
    if (can_broadcast()) {
        for (var r = 0u; r < n / 32u; r++) {
            let k = (xi >> 2u) + r * 8u + lane;
            let b = broadcast8(x_in(X[k], k));
            xs[r * 8u] = b[0];
            xs[r * 8u + 1u] = b[1];
            xs[r * 8u + 2u] = b[2];
            xs[r * 8u + 3u] = b[3];
            xs[r * 8u + 4u] = b[4];
            xs[r * 8u + 5u] = b[5];
            xs[r * 8u + 6u] = b[6];
            xs[r * 8u + 7u] = b[7];
        }
    } else {
        for (var i = 0u; i < n / 4u; i++) {
            let k = (xi >> 2u) + i;
            xs[i] = x_in(X[k], k);
        }
    }
    for (var g = 0u; g < n / 32u; g++) {
        let b = 8u * g;
        let v = ((xs[b] + xs[b + 4u]) + (xs[b + 1u] + xs[b + 5u])) + ((xs[b + 2u] + xs[b + 6u]) + (xs[b + 3u] + xs[b + 7u]));
        xsums[g] = (v.x + v.y) + (v.z + v.w);
    }
    return 0u;
}

fn xval(i: u32) -> acc_t {
    return xs[i >> 2u][i & 3u];
}

fn x32_sum(xi: u32) -> acc_t {
    return xsums[xi >> 5u];
}

fn x_raw(i: u32) -> f32 {
    return X[i >> 2u][i & 3u];
}
