// The block decoders' accumulator where a thread computes one token (the matvecs, and
// embed, whose block_dot must type-check): one f32. The prompt matmul's is in matmul.wgsl.
alias acc_t = f32;

fn acc_zero() -> acc_t {
    return 0.0;
}

// s + w · x: the decoders chain their products through it, so each is added as soon as
// it is made (a tree of products, all live at once, spilled on lavapipe). Fused where
// the compiler fuses it; lavapipe's JIT makes it a multiply and an add.
fn acc_fma(w: f32, x: acc_t, s: acc_t) -> acc_t {
    return fma(w, x, s);
}
