// matvec's result as the up projection of a gated FFN, with the activation fused: Y holds
// the gate rows (written by the gate projection before), and becomes act(gate) · up.
// gate_act comes from act.wgsl; ACT is 0 for SiLU, 1 for GELU.

override ACT: u32 = 0u;

fn finish(i: u32, v: f32) {
    Y[i] = gate_act(Y[i], ACT) * v;
}
