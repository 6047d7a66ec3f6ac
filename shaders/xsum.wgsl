// For the decoders with an offset m (Q4_1, Q5_1): the eight x that their per-word dot
// (nibbles_dot, q5_dot) multiplies, xi..xi+3 and xi+16..xi+19, added up, so that a
// block's m · sum(x) costs one multiply per word.
fn x8_sum(xi: u32) -> acc_t {
    return ((xval(xi) + xval(xi + 16u)) + (xval(xi + 1u) + xval(xi + 17u)))
        + ((xval(xi + 2u) + xval(xi + 18u)) + (xval(xi + 3u) + xval(xi + 19u)));
}
