// Q6_K (210 bytes): [ql: 128][qh: 64][scales: 16 signed bytes][d: f16]. Each half of the
// block (128 weights) is four quarters of 32: low 4 bits from ql (low/high nibbles of two
// 32-byte runs), high 2 bits from qh; weight = d * scale * (q - 32). Uploaded split
// (split.wgsl): the 208-byte bodies are whole words, d apart.
const BLOCK_WEIGHTS: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
const SCALE_BYTES: u32 = 2u;
const BODY_BYTES: u32 = 208u;

fn block_get(b: u32, j: u32) -> f32 {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let n = j / 128u;
    let r = j % 128u;
    let k = r / 32u;
    let l = r % 32u;
    let qlb = load_u8(o + n * 64u + l + (k & 1u) * 32u);
    let lo = select(qlb & 15u, qlb >> 4u, k >= 2u);
    let hi = (load_u8(o + 128u + n * 32u + l) >> (2u * k)) & 3u;
    let sc = sext8(load_u8(o + 192u + n * 8u + l / 16u + 2u * k));
    return load_f16(scale_at(kb)) * f32(sc) * f32(i32(lo | (hi << 4u)) - 32);
}

fn block_dot(b: u32, xi: u32) -> acc_t {
    // No loops where the kernel reads wide (the matvecs, WV): see q4_k.wgsl's block_dot.
    if (!WV) {
        return q6_dot_loops(b, xi);
    }
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    var s = q6_group(o, 0u, 0u, xi, acc_zero());
    s = q6_group(o, 0u, 1u, xi, s);
    s = q6_group(o, 1u, 0u, xi, s);
    s = q6_group(o, 1u, 1u, xi, s);
    return load_f16(scale_at(kb)) * s;
}

// The sums of the four quarters k (x at + 32k) of 16 positions of a half.
struct Q6Sums {
    a: acc_t,
    b: acc_t,
    c: acc_t,
    d: acc_t,
}

// s + positions 16·half .. +16 of half n (0, 1) of a block, each quarter times its scale
// (scales n*8 + half + {0, 2, 4, 6}: bytes half and half + 2 of words 2n and 2n + 1).
// Bodies lie on 16 bytes (208 = 13 · 16), so ql, ql + 32, qh and the scales of these 16
// positions are one 16-byte load each.
fn q6_group(o: u32, n: u32, half: u32, xi: u32, s: acc_t) -> acc_t {
    let l0 = half * 16u;
    let qa = Wv[(o + n * 64u + l0) >> 4u];
    let qb = Wv[(o + n * 64u + 32u + l0) >> 4u];
    let qh = Wv[(o + 128u + n * 32u + l0) >> 4u];
    let x = xi + n * 128u + l0;
    var q = Q6Sums(acc_zero(), acc_zero(), acc_zero(), acc_zero());
    q6_word(qa.x, qb.x, qh.x, x, &q);
    q6_word(qa.y, qb.y, qh.y, x + 4u, &q);
    q6_word(qa.z, qb.z, qh.z, x + 8u, &q);
    q6_word(qa.w, qb.w, qh.w, x + 12u, &q);
    let sc = Wv[(o + 192u) >> 4u];
    let lo = word_of(sc, 2u * n);
    let hi = word_of(sc, 2u * n + 1u);
    let sh = 8u * half;
    return s + f32(sext8(lo >> sh)) * q.a + f32(sext8(lo >> (sh + 16u))) * q.b
        + f32(sext8(hi >> sh)) * q.c + f32(sext8(hi >> (sh + 16u))) * q.d;
}

// Four positions from words of ql (qa), ql + 32 (qb) and qh, x from index x: each byte's
// six bits put together four at a time (the low nibbles or high, and two bits of qh).
fn q6_word(qa: u32, qb: u32, qh: u32, x: u32, q: ptr<function, Q6Sums>) {
    let m = 0x0F0F0F0Fu;
    let m2 = 0x03030303u;
    (*q).a = six4((qa & m) | ((qh & m2) << 4u), x, (*q).a);
    (*q).b = six4((qb & m) | (((qh >> 2u) & m2) << 4u), x + 32u, (*q).b);
    (*q).c = six4(((qa >> 4u) & m) | (((qh >> 4u) & m2) << 4u), x + 64u, (*q).c);
    (*q).d = six4(((qb >> 4u) & m) | (((qh >> 6u) & m2) << 4u), x + 96u, (*q).d);
}

// s + Σ (q - 32) · x over the four 6-bit values q, one a byte of m, at x[xi..xi+4).
fn six4(m: u32, xi: u32, s0: acc_t) -> acc_t {
    var s = acc_fma(f32(m & 0xFFu) - 32.0, xval(xi), s0);
    s = acc_fma(f32((m >> 8u) & 0xFFu) - 32.0, xval(xi + 1u), s);
    s = acc_fma(f32((m >> 16u) & 0xFFu) - 32.0, xval(xi + 2u), s);
    return acc_fma(f32(m >> 24u) - 32.0, xval(xi + 3u), s);
}

// block_dot for the prompt matmul, whose eight tokens' products of an unrolled block spill.
fn q6_dot_loops(b: u32, xi: u32) -> acc_t {
    let kb = b / BLOCK_BYTES;
    let o = body_at(kb);
    let d = load_f16(scale_at(kb));
    // The 16 signed scales as four words, read once.
    let scw = array<u32, 4>(load_word(o + 192u), load_word(o + 196u), load_word(o + 200u), load_word(o + 204u));
    var s = acc_zero();
    // Position l of a half feeds four weights (quarters k = 0..3) from ql[l], ql[l + 32]
    // and qh[l]: read those three words once per four positions, keep one sum per quarter.
    for (var n = 0u; n < 2u; n++) {
        for (var half = 0u; half < 2u; half++) {
            var s0 = acc_zero();
            var s1 = acc_zero();
            var s2 = acc_zero();
            var s3 = acc_zero();
            for (var w = 0u; w < 4u; w++) {
                let l0 = half * 16u + 4u * w;
                let qa = load_word(o + n * 64u + l0);
                let qb = load_word(o + n * 64u + 32u + l0);
                let qh = load_word(o + 128u + n * 32u + l0);
                for (var t = 0u; t < 4u; t++) {
                    let a = (qa >> (8u * t)) & 0xFFu;
                    let c = (qb >> (8u * t)) & 0xFFu;
                    let h = (qh >> (8u * t)) & 0xFFu;
                    let x = xi + n * 128u + l0 + t;
                    s0 += f32(i32((a & 15u) | ((h & 3u) << 4u)) - 32) * xval(x);
                    s1 += f32(i32((c & 15u) | (((h >> 2u) & 3u) << 4u)) - 32) * xval(x + 32u);
                    s2 += f32(i32((a >> 4u) | (((h >> 4u) & 3u) << 4u)) - 32) * xval(x + 64u);
                    s3 += f32(i32((c >> 4u) | (((h >> 6u) & 3u) << 4u)) - 32) * xval(x + 96u);
                }
            }
            // Scales n*8 + half + {0, 2, 4, 6}: bytes half and half + 2 of words 2n and 2n + 1.
            let lo = scw[2u * n];
            let hi = scw[2u * n + 1u];
            let sh = 8u * half;
            s += d * (f32(sext8(lo >> sh)) * s0 + f32(sext8(lo >> (sh + 16u))) * s1
                    + f32(sext8(hi >> sh)) * s2 + f32(sext8(hi >> (sh + 16u))) * s3);
        }
    }
    return s;
}
