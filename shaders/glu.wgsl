// Gated FFN activation, in place: gate = act(gate) * up, act = SiLU or tanh-GELU.

struct Params {
    n: u32,
    act: u32,   // 0: SiLU, 1: GELU (tanh approximation)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> G: array<f32>;  // [n_ff] gate in, result out
@group(0) @binding(1) var<storage, read> U: array<f32>;        // [n_ff] up
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.n) {
        return;
    }
    let g = G[i];
    var a: f32;
    if (P.act == 0u) {
        a = g / (1.0 + exp(-g));
    } else {
        // tanh written with exp: some drivers' tanh overflows to NaN for large |x|.
        let z = clamp(0.7978845608 * g * (1.0 + 0.044715 * g * g), -15.0, 15.0);
        let e = exp(2.0 * z);
        a = 0.5 * g * (1.0 + (e - 1.0) / (e + 1.0));
    }
    G[i] = a * U[i];
}
