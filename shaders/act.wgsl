// The gated FFN's activation: SiLU (act 0) or tanh-approximated GELU (act 1), shared by
// the glu kernel and the matvec that fuses it, so both give the same bits.

fn gate_act(g: f32, act: u32) -> f32 {
    if (act == 0u) {
        return g / (1.0 + exp(-g));
    }
    // tanh written with exp: some drivers' tanh overflows to NaN for large |x|.
    let z = clamp(0.7978845608 * g * (1.0 + 0.044715 * g * g), -15.0, 15.0);
    let e = exp(2.0 * z);
    return 0.5 * g * (1.0 + (e - 1.0) / (e + 1.0));
}
