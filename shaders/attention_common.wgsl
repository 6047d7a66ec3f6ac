// Attention's parameters, bindings and helpers, shared by attention.wgsl and
// attention_subgroup.wgsl (prepended to either by the host).

struct Params {
    group: u32,       // query heads per KV head
    head_dim: u32,
    head_dim_v: u32,
    k_stride: u32,    // floats per cached position of K (n_head_kv * head_dim)
    v_stride: u32,    // floats per cached position of V
    n_ctx: u32,       // scores row length
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
    n_pos: u32,     // positions the first token sees (pos + 1)
    n_tokens: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;        // [tokens, n_head, head_dim]
@group(0) @binding(1) var<storage, read> Kc: array<u32>;       // [n_ctx, n_head_kv * head_dim] f32 or f16 pairs
@group(0) @binding(2) var<storage, read> Vc: array<u32>;       // [n_ctx, n_head_kv * head_dim_v] f32 or f16 pairs
@group(0) @binding(3) var<storage, read_write> Sc: array<f32>; // [tokens, n_head, n_ctx] scratch
@group(0) @binding(4) var<storage, read_write> O: array<f32>;  // [tokens, n_head, head_dim_v]
@group(0) @binding(5) var<uniform> P: Params;
@group(0) @binding(6) var<uniform> S: Step;

// reduce_max, reduce_sum and WG come from reduce.wgsl, prepended by the host.

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

// Where one workgroup works: query head wid.x of token wid.y of the step, which sees cached
// positions first..n (causal: token k sees up to pos + k; a window keeps the last ones).
struct Head {
    h: u32,
    k: u32,
    n_head: u32,
    kvh: u32,
    first: u32,
    n: u32,
    q0: u32,  // first query value
    k0: u32,  // first key value of the KV head within a cached position
    s0: u32,  // first score of this head and token
}

fn head_of(wid: vec3<u32>, nwg: vec3<u32>) -> Head {
    var w: Head;
    w.h = wid.x;
    w.k = wid.y;
    w.n_head = nwg.x;
    w.kvh = w.h / P.group;
    w.n = S.n_pos + w.k;
    w.first = 0u;
    if (P.window > 0u && w.n > P.window) {
        w.first = w.n - P.window;
    }
    w.q0 = (w.k * w.n_head + w.h) * P.head_dim;
    w.k0 = w.kvh * P.head_dim;
    w.s0 = (w.k * w.n_head + w.h) * P.n_ctx;
    return w;
}
