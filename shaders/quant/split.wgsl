// Where a block's parts lie in a tensor uploaded split (src/gpu/layout.rs): each block's
// f16 scale fields (SCALE_BYTES) moved to the end of the buffer, the rest of it (its
// BODY_BYTES of quants) kept in order at the start, so that bodies are whole, aligned
// words (Q8_0's 34-byte blocks left half of them 2 bytes off a word) and adjacent lanes
// read adjacent words. The same bytes as the file, rearranged. Block k is the one whose
// GGUF byte offset is b = k·BLOCK_BYTES; the buffer holds n_blocks() of them.

fn n_blocks() -> u32 {
    return arrayLength(&W) * 4u / BLOCK_BYTES;
}

// Byte offset of block k's body.
fn body_at(k: u32) -> u32 {
    return k * BODY_BYTES;
}

// Byte offset of block k's first scale field (the second, m, follows at +2).
fn scale_at(k: u32) -> u32 {
    return n_blocks() * BODY_BYTES + k * SCALE_BYTES;
}
