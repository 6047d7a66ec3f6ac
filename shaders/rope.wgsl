// Rotary position embedding, in place, for every head at the current position. The
// cos/sin table is computed once at load on the CPU with the CPU twin's own code, so
// both executors rotate by bit-identical angles.

struct Params {
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,    // leading dims of each head that rotate
    neox: u32,     // 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2)
}

struct Step {
    token: u32,
    pos: u32,       // position of the first token of this step
    n_pos: u32,
    n_tokens: u32,  // tokens in this step (1 when decoding, a chunk in prefill)
}

@group(0) @binding(0) var<storage, read_write> Y: array<f32>;  // [tokens, n_heads, head_dim]
@group(0) @binding(1) var<storage, read> T: array<vec2<f32>>;  // [n_ctx, n_rot/2] (cos, sin)
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let half = P.n_rot / 2u;
    let t = gid.x;
    if (t >= P.n_heads * half) {
        return;
    }
    let h = t / half;
    let i = t % half;
    // One token per y workgroup row: token k of the step sits at position pos + k.
    let k = gid.y;
    let base = k * P.n_heads * P.head_dim + h * P.head_dim;
    var a = base + 2u * i;
    var b = a + 1u;
    if (P.neox == 1u) {
        a = base + i;
        b = a + half;
    }
    let cs = T[(S.pos + k) * half + i];
    let x0 = Y[a];
    let x1 = Y[b];
    Y[a] = x0 * cs.x - x1 * cs.y;
    Y[b] = x0 * cs.y + x1 * cs.x;
}
