// Flash-decoding attention over the KV cache. A workgroup takes HEADS query heads of one
// KV head (so each cached key and value is read once for all of them) and one of
// `splits` stretches of the visible positions; it walks its stretch in tiles of WG
// positions with an online softmax (running max and sum, the partial output rescaled when
// the max grows), so nothing per position is kept. With one split it writes the output;
// with more, each writes its unnormalised partial, max and sum, and `reduce` combines
// them (the KV length spread over many workgroups is what fills a GPU at long contexts).
// Causal: token k of the step sees its sequence's positions up to its own (S.rows[k]);
// a window keeps the last ones.
// CPU twin: ops::attention_head.

struct Params {
    group: u32,       // query heads per KV head
    head_dim: u32,
    head_dim_v: u32,
    k_stride: u32,    // floats per cached position of K (n_head_kv * head_dim)
    v_stride: u32,    // floats per cached position of V
    splits: u32,      // workgroups along the visible positions (1: no reduce pass)
    window: u32,      // 0: attend to every position
    scale: f32,
    softcap: f32,     // > 0: scores become softcap * tanh(score / softcap) (Gemma 2)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    token: u32,
    pos: u32,       // position of the first token of this step
    n_pos: u32,
    n_tokens: u32,  // tokens in this step (1 when decoding, a chunk or a batch otherwise)
    rows: array<vec4<u32>, 64>,  // per token: (position, first cache row of its sequence, -, -)
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;        // [tokens, n_head, head_dim]
// Read-write for main_rope, which appends to the cache.
@group(0) @binding(1) var<storage, read_write> Kc: array<u32>; // [n_seq * n_ctx, n_head_kv * head_dim] f32 or f16 pairs
@group(0) @binding(2) var<storage, read_write> Vc: array<u32>; // [n_seq * n_ctx, n_head_kv * head_dim_v] f32 or f16 pairs

const WG: u32 = 64u;

// true: the cache holds two f16 per word (rope.wgsl packs them); false: one f32 per word.
override KV_F16: bool = false;

// Cached key or value number i of the flat cache.
fn key(i: u32) -> f32 {
    if (KV_F16) {
        return unpack2x16float(Kc[i >> 1u])[i & 1u];
    }
    return bitcast<f32>(Kc[i]);
}

fn value(i: u32) -> f32 {
    if (KV_F16) {
        return unpack2x16float(Vc[i >> 1u])[i & 1u];
    }
    return bitcast<f32>(Vc[i]);
}

// Gemma 2's soft-cap of a score: tanh through exp, clamped, since some drivers' tanh
// overflows for large |x|. No cap when softcap is 0.
fn cap_score(d: f32) -> f32 {
    if (P.softcap > 0.0) {
        let z = clamp(d / P.softcap, -15.0, 15.0);
        let e2 = exp(2.0 * z);
        return P.softcap * (e2 - 1.0) / (e2 + 1.0);
    }
    return d;
}

override HEADS: u32 = 1u;  // query heads per workgroup, a divisor of the group
override RV: u32 = 1u;     // value dims each thread owns per head: ceil(head_dim_v / WG)

const T: u32 = 64u;        // positions per tile: one per thread
const QMAX: u32 = 1024u;   // HEADS * head_dim
const HMAX: u32 = 16u;     // HEADS, and HEADS * RV
const NEG: f32 = -3.4e38;  // below every score, yet exp(NEG - m) is 0 and not NaN

@group(0) @binding(3) var<storage, read_write> Part: array<f32>; // [tokens, n_head, splits, head_dim_v + 2]
@group(0) @binding(4) var<storage, read_write> O: array<f32>;    // [tokens, n_head, head_dim_v]
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<uniform> S: Step;

var<workgroup> qs: array<f32, QMAX>;      // [HEADS, head_dim] the queries
var<workgroup> sc: array<f32, 1024>;      // [HEADS, T] a tile's scores, then its weights
var<workgroup> mw: array<f32, HMAX>;      // per head: running max,
var<workgroup> lw: array<f32, HMAX>;      // running sum of weights,
var<workgroup> cw: array<f32, HMAX>;      // and this tile's rescale of the partial output

// Where one workgroup works: which heads, token and stretch of positions.
struct Job {
    h0: u32,      // first query head
    n_head: u32,
    k: u32,       // token of the step
    kvh: u32,
    split: u32,
    p0: u32,      // positions p0..p1
    p1: u32,
    base: u32,    // the first cache row of the token's sequence
}

fn job_of(wid: vec3<u32>, nwg: vec3<u32>) -> Job {
    var j: Job;
    let blocks = P.group / HEADS;
    j.split = wid.x % P.splits;
    let hb = wid.x / P.splits;
    j.kvh = hb / blocks;
    j.h0 = j.kvh * P.group + (hb % blocks) * HEADS;
    j.n_head = nwg.x / P.splits * HEADS;
    j.k = wid.y;
    let n = S.rows[j.k].x + 1u;
    j.base = S.rows[j.k].y;
    var first = 0u;
    if (P.window > 0u && n > P.window) {
        first = n - P.window;
    }
    let len = n - first;
    let per = (len + P.splits - 1u) / P.splits;
    j.p0 = first + min(j.split * per, len);
    j.p1 = first + min((j.split + 1u) * per, len);
    return j;
}

// Scores of position p for every head into the tile (NEG past the stretch).
fn score_tile(j: Job, p: u32, end: u32, lid: u32) {
    var s: array<f32, HMAX>;
    for (var g = 0u; g < HEADS; g++) {
        s[g] = 0.0;
    }
    if (p < end) {
        let kb = (j.base + p) * P.k_stride + j.kvh * P.head_dim;
        for (var i = 0u; i < P.head_dim; i++) {
            let kv = key(kb + i);
            for (var g = 0u; g < HEADS; g++) {
                s[g] += qs[g * P.head_dim + i] * kv;
            }
        }
    }
    for (var g = 0u; g < HEADS; g++) {
        sc[g * T + lid] = select(NEG, cap_score(s[g] * P.scale), p < end);
    }
}

// Thread g: the new running max of head g, the tile's weights, the rescale and the sum.
fn softmax_tile(g: u32) {
    var mx = mw[g];
    for (var t = 0u; t < T; t++) {
        mx = max(mx, sc[g * T + t]);
    }
    var sum = 0.0;
    for (var t = 0u; t < T; t++) {
        let e = exp(sc[g * T + t] - mx);
        sc[g * T + t] = e;
        sum += e;
    }
    cw[g] = exp(mw[g] - mx);
    lw[g] = lw[g] * cw[g] + sum;
    mw[g] = mx;
}

// Every position from j.p0 up to (not including) `end` into the running max and sum and
// this thread's partial output. The caller has the queries in qs and mw/lw initialised.
fn attend(j: Job, end: u32, lid: u32) -> array<f32, HMAX> {
    var acc: array<f32, HMAX>;  // [RV, HEADS] this thread's dims of every head
    for (var a = 0u; a < HEADS * RV; a++) {
        acc[a] = 0.0;
    }
    let v0 = j.kvh * P.head_dim_v;
    for (var t0 = j.p0; t0 < end; t0 += T) {
        score_tile(j, t0 + lid, end, lid);
        workgroupBarrier();
        if (lid < HEADS) {
            softmax_tile(lid);
        }
        workgroupBarrier();
        let count = min(T, end - t0);
        for (var r = 0u; r < RV; r++) {
            let i = min(lid + r * WG, P.head_dim_v - 1u);
            for (var g = 0u; g < HEADS; g++) {
                acc[r * HEADS + g] *= cw[g];
            }
            for (var t = 0u; t < count; t++) {
                let v = value((j.base + t0 + t) * P.v_stride + v0 + i);
                for (var g = 0u; g < HEADS; g++) {
                    acc[r * HEADS + g] += sc[g * T + t] * v;
                }
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// The output of each head (one split), or the split's partial, max and sum.
fn finish(j: Job, acc: array<f32, HMAX>, lid: u32) {
    let hdv = P.head_dim_v;
    for (var r = 0u; r < RV; r++) {
        let i = lid + r * WG;
        if (i >= hdv) {
            break;
        }
        for (var g = 0u; g < HEADS; g++) {
            let row = j.k * j.n_head + j.h0 + g;
            if (P.splits == 1u) {
                O[row * hdv + i] = acc[r * HEADS + g] / lw[g];
            } else {
                let base = (row * P.splits + j.split) * (hdv + 2u);
                Part[base + i] = acc[r * HEADS + g];
                if (i == 0u) {
                    Part[base + hdv] = mw[g];
                    Part[base + hdv + 1u] = lw[g];
                }
            }
        }
    }
}

fn init_softmax(lid: u32) {
    if (lid < HEADS) {
        mw[lid] = NEG;
        lw[lid] = 0.0;
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let j = job_of(wid, nwg);
    for (var e = lid; e < HEADS * P.head_dim; e += WG) {
        qs[e] = Q[(j.k * j.n_head + j.h0) * P.head_dim + e];
    }
    init_softmax(lid);
    workgroupBarrier();
    finish(j, attend(j, j.p1, lid), lid);
}

// ---- Decoding one token with its RoPE (and Qwen 3 / Gemma 3's q and k norms) fused in ----
// One dispatch where a decoding layer had a rope dispatch (and two norms) before attention:
// on lavapipe each dispatch costs about as much as the work of a small kernel. Each
// workgroup normalises and rotates its own query heads and its KV head's new key in
// workgroup memory and attends to the new position from there, so no workgroup reads a
// cache row another one writes in the same dispatch; the one workgroup whose split holds
// the new position and whose heads come first in their KV group appends the key and value
// to the cache. The rotated queries and keys go to Qr and Kr (what `compare` captures as
// q and k), each head by one workgroup; no workgroup reads them, nor writes Q or Kn, which
// several may read.
// CPU twins: ops::rms_norm, ops::rope_with, ops::kv_store, ops::attention_head.

struct RopeFuse {
    n_rot: u32,    // leading dims of each head that rotate
    neox: u32,     // 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2)
    qk_norm: u32,  // 1: RMS-normalise every query and key head first (weights QN, KN)
    eps: f32,
}

@group(0) @binding(7) var<storage, read> Kn: array<f32>;         // [n_head_kv, head_dim] the token's keys
@group(0) @binding(8) var<storage, read> Vn: array<f32>;         // [n_head_kv, head_dim_v] its values
@group(0) @binding(9) var<storage, read> Rt: array<vec2<f32>>;   // [n_ctx, n_rot/2] (cos, sin)
@group(0) @binding(10) var<uniform> RP: RopeFuse;
@group(0) @binding(11) var<storage, read> QN: array<f32>;        // [head_dim] query norm weights (unread without qk_norm)
@group(0) @binding(12) var<storage, read> KN: array<f32>;        // [head_dim] key norm weights
@group(0) @binding(13) var<storage, read_write> Qr: array<f32>;  // [n_head, head_dim] the queries rotated
@group(0) @binding(14) var<storage, read_write> Kr: array<f32>;  // [n_head_kv, head_dim] the keys rotated

// The widest head this path takes (the host falls back to rope + attention beyond it).
const NEW_MAX: u32 = 512u;
var<workgroup> kn: array<f32, NEW_MAX>;   // [head_dim] the new key of the workgroup's KV head
var<workgroup> vn: array<f32, NEW_MAX>;   // [head_dim_v] its value
var<workgroup> rn: array<f32, 17>;        // [HEADS + 1] 1/rms of each query head, then the key's

// Element e of head g of the workgroup: a query head below HEADS, the key at HEADS.
fn head_get(g: u32, e: u32) -> f32 {
    if (g < HEADS) {
        return qs[g * P.head_dim + e];
    }
    return kn[e];
}

fn head_set(g: u32, e: u32, v: f32) {
    if (g < HEADS) {
        qs[g * P.head_dim + e] = v;
    } else {
        kn[e] = v;
    }
}

// 1/rms of each query head and of the key (rn), from the raw values in workgroup memory.
fn head_rms(lid: u32) {
    let hd = P.head_dim;
    if (lid <= HEADS) {
        var ss = 0.0;
        for (var e = 0u; e < hd; e++) {
            let x = head_get(lid, e);
            ss += x * x;
        }
        rn[lid] = 1.0 / sqrt(ss / f32(hd) + RP.eps);
    }
}

// Element e of head g as RoPE takes it: from workgroup memory, normalised, where the
// model has q/k norms (head_rms ran); straight from Q or Kn where it has none.
fn head_in(j: Job, g: u32, e: u32) -> f32 {
    let hd = P.head_dim;
    if (RP.qk_norm == 1u) {
        if (g < HEADS) {
            return qs[g * hd + e] * rn[g] * QN[e];
        }
        return kn[e] * rn[HEADS] * KN[e];
    }
    if (g < HEADS) {
        return Q[(j.k * j.n_head + j.h0 + g) * hd + e];
    }
    return Kn[j.k * P.k_stride + j.kvh * hd + e];
}

// Every element of the workgroup's heads into workgroup memory, rotated: a thread per
// pair of rotated dims or per dim past n_rot. Each item reads and writes only its own
// elements, so no barrier is needed between reading and writing.
fn rotate_heads(j: Job, pos: u32, lid: u32) {
    let half = RP.n_rot / 2u;
    let items = half + P.head_dim - RP.n_rot;
    for (var t = lid; t < (HEADS + 1u) * items; t += WG) {
        let g = t / items;
        let i = t % items;
        if (i >= half) {
            let e = RP.n_rot + i - half;
            head_set(g, e, head_in(j, g, e));
            continue;
        }
        var a = 2u * i;
        var b = a + 1u;
        if (RP.neox == 1u) {
            a = i;
            b = i + half;
        }
        let cs = Rt[pos * half + i];
        let x = vec2<f32>(head_in(j, g, a), head_in(j, g, b));
        head_set(g, a, x.x * cs.x - x.y * cs.y);
        head_set(g, b, x.x * cs.y + x.y * cs.x);
    }
}

// The new key and value into the cache row of the token's position, in the cache's type.
fn append(j: Job, row: u32, lid: u32) {
    let hd = P.head_dim;
    let hdv = P.head_dim_v;
    let kb = row * P.k_stride + j.kvh * hd;
    let vb = row * P.v_stride + j.kvh * hdv;
    if (KV_F16) {
        for (var w = lid; w < hd / 2u; w += WG) {
            Kc[kb / 2u + w] = pack2x16float(vec2<f32>(kn[2u * w], kn[2u * w + 1u]));
        }
        for (var w = lid; w < hdv / 2u; w += WG) {
            Vc[vb / 2u + w] = pack2x16float(vec2<f32>(vn[2u * w], vn[2u * w + 1u]));
        }
    } else {
        for (var e = lid; e < hd; e += WG) {
            Kc[kb + e] = bitcast<u32>(kn[e]);
        }
        for (var e = lid; e < hdv; e += WG) {
            Vc[vb + e] = bitcast<u32>(vn[e]);
        }
    }
}

fn f16_round(x: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}

// The queries and the new key and value in workgroup memory, normalised and rotated; the
// cache appended and the rotated values written out by the workgroups that own them. Few
// barriers: on lavapipe each one switches through all of the workgroup's SIMD threads.
fn prologue(j: Job, pos: u32, lid: u32) {
    let hd = P.head_dim;
    let hdv = P.head_dim_v;
    let q0 = (j.k * j.n_head + j.h0) * hd;
    for (var e = lid; e < hdv; e += WG) {
        vn[e] = Vn[j.k * P.v_stride + j.kvh * hdv + e];
    }
    init_softmax(lid);
    if (RP.qk_norm == 1u) {
        for (var e = lid; e < HEADS * hd; e += WG) {
            qs[e] = Q[q0 + e];
        }
        for (var e = lid; e < hd; e += WG) {
            kn[e] = Kn[j.k * P.k_stride + j.kvh * hd + e];
        }
        workgroupBarrier();
        head_rms(lid);
        workgroupBarrier();
    }
    rotate_heads(j, pos, lid);
    workgroupBarrier();
    if (pos >= j.p0 && pos < j.p1) {
        for (var e = lid; e < HEADS * hd; e += WG) {
            Qr[q0 + e] = qs[e];
        }
        if (j.h0 == j.kvh * P.group) {
            for (var e = lid; e < hd; e += WG) {
                Kr[j.k * P.k_stride + j.kvh * hd + e] = kn[e];
            }
            append(j, j.base + pos, lid);
        }
    }
    // Attention reads the new key and value as the cache keeps them.
    if (KV_F16) {
        workgroupBarrier();
        for (var e = lid; e < max(hd, hdv); e += WG) {
            kn[e] = f16_round(kn[e]);
            vn[e] = f16_round(vn[e]);
        }
        workgroupBarrier();
    }
}

// The new position (from workgroup memory) into the running softmax and partial output.
fn attend_new(acc0: array<f32, HMAX>, lid: u32) -> array<f32, HMAX> {
    var acc = acc0;
    if (lid < HEADS) {
        var d = 0.0;
        for (var i = 0u; i < P.head_dim; i++) {
            d += qs[lid * P.head_dim + i] * kn[i];
        }
        let s = cap_score(d * P.scale);
        let mx = max(mw[lid], s);
        let e = exp(s - mx);
        cw[lid] = exp(mw[lid] - mx);
        lw[lid] = lw[lid] * cw[lid] + e;
        mw[lid] = mx;
        sc[lid * T] = e;
    }
    workgroupBarrier();
    for (var r = 0u; r < RV; r++) {
        let i = min(lid + r * WG, P.head_dim_v - 1u);
        for (var g = 0u; g < HEADS; g++) {
            acc[r * HEADS + g] = acc[r * HEADS + g] * cw[g] + sc[g * T] * vn[i];
        }
    }
    return acc;
}

// One decoding token (S.rows[0]): the cached positions before it from the cache, its own
// from workgroup memory.
@compute @workgroup_size(64)
fn main_rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let j = job_of(wid, nwg);
    let pos = S.rows[j.k].x;
    prologue(j, pos, lid);
    var acc = attend(j, min(j.p1, pos), lid);
    if (pos >= j.p0 && pos < j.p1) {
        acc = attend_new(acc, lid);
    }
    finish(j, acc, lid);
}

// The splits' partials of one head (wid.x) of one token (wid.y), rescaled to their common
// max and normalised by the total sum.
@compute @workgroup_size(64)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let hdv = P.head_dim_v;
    let row = wid.y * nwg.x + wid.x;
    let base = row * P.splits * (hdv + 2u);
    var m = NEG;
    for (var s = 0u; s < P.splits; s++) {
        m = max(m, Part[base + s * (hdv + 2u) + hdv]);
    }
    var l = 0.0;
    for (var s = 0u; s < P.splits; s++) {
        let b = base + s * (hdv + 2u);
        l += exp(Part[b + hdv] - m) * Part[b + hdv + 1u];
    }
    for (var i = lid; i < hdv; i += WG) {
        var o = 0.0;
        for (var s = 0u; s < P.splits; s++) {
            let b = base + s * (hdv + 2u);
            o += exp(Part[b + hdv] - m) * Part[b + i];
        }
        O[row * hdv + i] = o / l;
    }
}
