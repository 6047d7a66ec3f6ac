// matvec's X as a uniform buffer of a fixed 64 KiB (inputs of up to 16384 values, the
// buffer padded to that size). Where one lane owns a row (CPU adapters), every lane reads
// the same x at the same time: lavapipe loads a uniform-buffer value once for all lanes,
// where from a storage buffer inside the block loop it gathers it lane by lane.

@group(0) @binding(1) var<uniform> X: array<vec4<f32>, 4096>;  // [16384] the first cols are x

fn xval(i: u32) -> acc_t {
    return X[i >> 2u][i & 3u];
}
