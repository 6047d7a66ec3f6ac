// Rotary position embedding, in place, for every head of Q and of K (one dispatch for
// both) at the current position. The cos/sin table is computed once at load on the CPU
// with the CPU twin's own code, so both executors rotate by bit-identical angles.

struct Params {
    n_heads: u32,  // heads in Y
    head_dim: u32,
    n_rot: u32,    // leading dims of each head that rotate
    neox: u32,     // 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2)
    n_heads_k: u32, // heads in K (0: Y only)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    token: u32,
    pos: u32,       // position of the first token of this step
    n_pos: u32,
    n_tokens: u32,  // tokens in this step (1 when decoding, a chunk in prefill)
}

@group(0) @binding(0) var<storage, read_write> Y: array<f32>;  // [tokens, n_heads, head_dim] queries
@group(0) @binding(1) var<storage, read> T: array<vec2<f32>>;  // [n_ctx, n_rot/2] (cos, sin)
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@group(0) @binding(4) var<storage, read_write> K: array<f32>;  // [tokens, n_heads_k, head_dim] keys

// Element indices (a, b) of pair i of head h of token k, in a buffer of `heads` heads.
fn pair(k: u32, heads: u32, h: u32, i: u32) -> vec2<u32> {
    let base = (k * heads + h) * P.head_dim;
    if (P.neox == 1u) {
        return vec2<u32>(base + i, base + i + P.n_rot / 2u);
    }
    return vec2<u32>(base + 2u * i, base + 2u * i + 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = P.n_rot / 2u;
    let t = gid.x;
    if (t >= (P.n_heads + P.n_heads_k) * half) {
        return;
    }
    let i = t % half;
    // One token per y workgroup row: token k of the step sits at position pos + k.
    let k = gid.y;
    let cs = T[(S.pos + k) * half + i];
    if (t < P.n_heads * half) {
        let ab = pair(k, P.n_heads, t / half, i);
        let x0 = Y[ab.x];
        let x1 = Y[ab.y];
        Y[ab.x] = x0 * cs.x - x1 * cs.y;
        Y[ab.y] = x0 * cs.y + x1 * cs.x;
    } else {
        let ab = pair(k, P.n_heads_k, t / half - P.n_heads, i);
        let x0 = K[ab.x];
        let x1 = K[ab.y];
        K[ab.x] = x0 * cs.x - x1 * cs.y;
        K[ab.y] = x0 * cs.y + x1 * cs.x;
    }
}
