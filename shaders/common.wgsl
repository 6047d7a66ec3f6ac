// Byte access into a tensor kept exactly as GGUF stores it, in one flat array<u32>.
// Blocks of 18, 22, 34, 110 or 210 bytes are not 4-byte aligned, so every read goes
// through these helpers; all block sizes are even, so 16-bit reads are always aligned.
// The kernel that includes this file declares `W: array<u32>` (the weights).

fn load_u8(b: u32) -> u32 {
    return (W[b >> 2u] >> ((b & 3u) * 8u)) & 0xFFu;
}

fn load_u16(b: u32) -> u32 {
    return (W[b >> 2u] >> ((b & 2u) * 8u)) & 0xFFFFu;
}

// Four bytes starting at an even offset.
fn load_u32(b: u32) -> u32 {
    if ((b & 3u) == 0u) {
        return W[b >> 2u];
    }
    return load_u16(b) | (load_u16(b + 2u) << 16u);
}

// Four bytes at a multiple of 4 (split types' bodies are whole words).
fn load_word(b: u32) -> u32 {
    return W[b >> 2u];
}

fn load_f16(b: u32) -> f32 {
    return unpack2x16float(load_u16(b)).x;
}

fn sext8(v: u32) -> i32 {
    return bitcast<i32>(v << 24u) >> 24u;
}

// Word i (0..4) of a vec4 the decoders loaded 16 bytes at a time (Wv), by selects: in a
// loop Mesa's NIR does not unroll, an index into a vector is not always a constant.
// Whether they do is the kernel's constant WV: the matvecs read wide, where one
// thread's loads of a block are its only use of them; the prompt matmul decodes each
// block for eight tokens and reads words (wide reads made pp64 10-30% slower on lavapipe).
// WGSL has no preprocessor: both reads are written and the constant select leaves one to
// the compiler.
fn word_of(v: vec4<u32>, i: u32) -> u32 {
    return select(select(v.x, v.y, i == 1u), select(v.z, v.w, i == 3u), i >= 2u);
}
