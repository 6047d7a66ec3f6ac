// Q8_0: [d: f16][qs: 32 signed bytes]; weight j = d * qs[j]. Uploaded split (split.wgsl):
// the 32 quants are 8 aligned words.
const BLOCK_WEIGHTS: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 32u;

fn block_get(b: u32, j: u32) -> f32 {
    let k = b / BLOCK_BYTES;
    return load_f16(scale_at(k)) * f32(sext8(load_u8(body_at(k) + j)));
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    let k = b / BLOCK_BYTES;
    // The 32 bytes of quants in two loads where the kernel reads wide (WV, see common.wgsl).
    let w0 = body_at(k) >> 2u;
    let qa = Wv[body_at(k) >> 4u];
    let qb = Wv[(body_at(k) >> 4u) + 1u];
    var s = acc_zero();
    for (var i = 0u; i < 8u; i++) {
        let q = vec4<f32>(unpack4xI8(select(W[w0 + i], word_of(select(qa, qb, i >= 4u), i & 3u), WV)));
        let x = xi + 4u * i;
        s += q.x * xval(x) + q.y * xval(x + 1u) + q.z * xval(x + 2u) + q.w * xval(x + 3u);
    }
    return load_f16(scale_at(k)) * s;
}
