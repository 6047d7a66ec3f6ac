// Rotary position embedding of the step's queries and keys, in place, and the append of
// the rotated keys and the values to the layer's KV cache in the cache's type: one
// dispatch where decoding had a RoPE dispatch and two buffer copies (which also ended the
// compute pass), and the only way into an f16 cache. The cos/sin table is computed once
// at load on the CPU with the CPU twin's own code, so both executors rotate by
// bit-identical angles. CPU twins: ops::rope_with and ops::kv_store.
//
// Workgroup 0 of each token's row owns the keys: it rotates them, waits for its own
// writes (storageBarrier), then stores the row; a key pair and the cache word it lands in
// need not belong to the same thread. The other workgroups rotate query pairs and store
// value units.

struct Params {
    n_heads: u32,   // heads in Y
    head_dim: u32,
    n_rot: u32,     // leading dims of each head that rotate
    neox: u32,      // 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2)
    n_heads_k: u32, // heads in K (0: Y only, nothing stored)
    v_dim: u32,     // values per token of V (0: none stored)
    _pad0: u32,
    _pad1: u32,
}

struct Step {
    token: u32,
    pos: u32,       // position of the first token of this step
    n_pos: u32,
    n_tokens: u32,  // tokens in this step (1 when decoding, a chunk or a batch otherwise)
    rows: array<vec4<u32>, 64>,  // per token: (position, first cache row of its sequence, -, -)
}

// true: the cache holds two f16 per word (pack2x16float); false: one f32 per word.
override KV_F16: bool = false;

@group(0) @binding(0) var<storage, read_write> Y: array<f32>;  // [tokens, n_heads, head_dim] queries
@group(0) @binding(1) var<storage, read> T: array<vec2<f32>>;  // [n_ctx, n_rot/2] (cos, sin)
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;
@group(0) @binding(4) var<storage, read_write> K: array<f32>;  // [tokens, n_heads_k, head_dim] keys
@group(0) @binding(5) var<storage, read> V: array<f32>;        // [tokens, v_dim] values
@group(0) @binding(6) var<storage, read_write> Kc: array<u32>; // [n_seq * n_ctx, n_heads_k * head_dim] f32 or f16 pairs
@group(0) @binding(7) var<storage, read_write> Vc: array<u32>; // [n_seq * n_ctx, v_dim] f32 or f16 pairs

const WG: u32 = 64u;

// Element indices (a, b) of pair i of head h of token k, in a buffer of `heads` heads.
fn pair(k: u32, heads: u32, h: u32, i: u32) -> vec2<u32> {
    let base = (k * heads + h) * P.head_dim;
    if (P.neox == 1u) {
        return vec2<u32>(base + i, base + i + P.n_rot / 2u);
    }
    return vec2<u32>(base + 2u * i, base + 2u * i + 1u);
}

fn rotate(x: vec2<f32>, cs: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(x.x * cs.x - x.y * cs.y, x.x * cs.y + x.y * cs.x);
}

// Cache words per token row of `width` values.
fn units(width: u32) -> u32 {
    if (KV_F16) {
        return width / 2u;
    }
    return width;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let half = P.n_rot / 2u;
    // One token per y workgroup row; each token has its own position and its sequence's
    // region of the cache (rows of several sequences can share a step).
    let k = wid.y;
    let pos = S.rows[k].x;
    let row = S.rows[k].y + pos;
    if (wid.x == 0u) {
        for (var t = lid; t < P.n_heads_k * half; t += WG) {
            let ab = pair(k, P.n_heads_k, t / half, t % half);
            let r = rotate(vec2<f32>(K[ab.x], K[ab.y]), T[pos * half + t % half]);
            K[ab.x] = r.x;
            K[ab.y] = r.y;
        }
        storageBarrier();
        let k_dim = P.n_heads_k * P.head_dim;
        for (var j = lid; j < units(k_dim); j += WG) {
            if (KV_F16) {
                let e = k * k_dim + 2u * j;
                Kc[row * k_dim / 2u + j] = pack2x16float(vec2<f32>(K[e], K[e + 1u]));
            } else {
                Kc[row * k_dim + j] = bitcast<u32>(K[k * k_dim + j]);
            }
        }
        return;
    }
    let t = (wid.x - 1u) * WG + lid;
    let q_pairs = P.n_heads * half;
    if (t < q_pairs) {
        let ab = pair(k, P.n_heads, t / half, t % half);
        let r = rotate(vec2<f32>(Y[ab.x], Y[ab.y]), T[pos * half + t % half]);
        Y[ab.x] = r.x;
        Y[ab.y] = r.y;
        return;
    }
    let j = t - q_pairs;
    if (j >= units(P.v_dim)) {
        return;
    }
    if (KV_F16) {
        let e = k * P.v_dim + 2u * j;
        Vc[row * P.v_dim / 2u + j] = pack2x16float(vec2<f32>(V[e], V[e + 1u]));
    } else {
        Vc[row * P.v_dim + j] = bitcast<u32>(V[k * P.v_dim + j]);
    }
}
