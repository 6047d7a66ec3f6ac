// Gated FFN activation, in place: gate = act(gate) * up, act = SiLU or tanh-GELU
// (gate_act from act.wgsl, prepended by the host).

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
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // Grids past the workgroup limit continue in y.
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= P.n) {
        return;
    }
    G[i] = gate_act(G[i], P.act) * U[i];
}
