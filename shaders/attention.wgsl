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
@group(0) @binding(1) var<storage, read> Kc: array<u32>;       // [n_seq * n_ctx, n_head_kv * head_dim] f32 or f16 pairs
@group(0) @binding(2) var<storage, read> Vc: array<u32>;       // [n_seq * n_ctx, n_head_kv * head_dim_v] f32 or f16 pairs

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
fn score_tile(j: Job, p: u32, lid: u32) {
    var s: array<f32, HMAX>;
    for (var g = 0u; g < HEADS; g++) {
        s[g] = 0.0;
    }
    if (p < j.p1) {
        let kb = (j.base + p) * P.k_stride + j.kvh * P.head_dim;
        for (var i = 0u; i < P.head_dim; i++) {
            let kv = key(kb + i);
            for (var g = 0u; g < HEADS; g++) {
                s[g] += qs[g * P.head_dim + i] * kv;
            }
        }
    }
    for (var g = 0u; g < HEADS; g++) {
        sc[g * T + lid] = select(NEG, cap_score(s[g] * P.scale), p < j.p1);
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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let j = job_of(wid, nwg);
    for (var e = lid; e < HEADS * P.head_dim; e += WG) {
        qs[e] = Q[(j.k * j.n_head + j.h0) * P.head_dim + e];
    }
    if (lid < HEADS) {
        mw[lid] = NEG;
        lw[lid] = 0.0;
    }
    var acc: array<f32, HMAX>;  // [RV, HEADS] this thread's dims of every head
    for (var a = 0u; a < HEADS * RV; a++) {
        acc[a] = 0.0;
    }
    workgroupBarrier();
    let v0 = j.kvh * P.head_dim_v;
    for (var t0 = j.p0; t0 < j.p1; t0 += T) {
        score_tile(j, t0 + lid, lid);
        workgroupBarrier();
        if (lid < HEADS) {
            softmax_tile(lid);
        }
        workgroupBarrier();
        let count = min(T, j.p1 - t0);
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
