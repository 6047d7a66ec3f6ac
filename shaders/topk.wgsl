// The k largest logits with their token ids, so that a decoding step reads back k pairs
// instead of the whole vocabulary (1 MiB a token on Gemma 3). Order: higher logit first,
// lower id first on ties, NaN last — the CPU sampler's order (sampler::top_of, the CPU twin).
//
// `chunk`: workgroup w sorts logits [w * SEG, (w + 1) * SEG) in workgroup memory (bitonic)
// and writes its best KP. `merge`: one workgroup keeps the best KP so far at the front of
// its memory, fills the rest with the next chunks' lists, sorts, and repeats. KP, a power
// of two, is a uniform: each step asks for what its sampler needs.

struct Params {
    n: u32,        // logits
    kp: u32,       // candidates kept per chunk and in the end (power of two, <= SEG / 2)
    n_chunks: u32, // workgroups of `chunk`
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> L: array<f32>;              // [n] logits
@group(0) @binding(1) var<storage, read_write> C: array<vec2<u32>>;  // [n_chunks, kp] (key, id)
@group(0) @binding(2) var<storage, read_write> O: array<vec2<u32>>;  // [kp] (key, id), best first
@group(0) @binding(3) var<uniform> P: Params;

const WG: u32 = 64u;
const SEG: u32 = 2048u;  // 16 KiB of (key, id): WebGPU's default workgroup memory limit
const NONE: vec2<u32> = vec2<u32>(0u, 0xffffffffu);  // below every logit, NaN included

var<workgroup> s: array<vec2<u32>, SEG>;

// A u32 that orders as the float does; NaN as the lowest.
fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    // NaN by its bits: compilers may fold `v != v` away.
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return 0u;
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn better(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y < b.y);
}

// Sort s[0..SEG) best first. Every thread runs every stage (barriers in uniform flow).
fn bitonic(lid: u32) {
    for (var size = 2u; size <= SEG; size <<= 1u) {
        for (var stride = size / 2u; stride > 0u; stride >>= 1u) {
            for (var t = lid; t < SEG / 2u; t += WG) {
                let i = 2u * t - (t & (stride - 1u));
                let j = i + stride;
                let a = s[i];
                let b = s[j];
                // Blocks with bit `size` clear end best first; the others the other way,
                // so that each next size merges two opposite runs.
                let swap = select(better(a, b), better(b, a), (i & size) == 0u);
                if (swap) {
                    s[i] = b;
                    s[j] = a;
                }
            }
            workgroupBarrier();
        }
    }
}

@compute @workgroup_size(64)
fn chunk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let base = wid.x * SEG;
    for (var i = lid; i < SEG; i += WG) {
        let g = base + i;
        s[i] = select(NONE, vec2<u32>(key(L[min(g, P.n - 1u)]), g), g < P.n);
    }
    workgroupBarrier();
    bitonic(lid);
    for (var i = lid; i < P.kp; i += WG) {
        C[wid.x * P.kp + i] = s[i];
    }
}

@compute @workgroup_size(64)
fn merge(@builtin(local_invocation_index) lid: u32) {
    let total = P.n_chunks * P.kp;
    // The first round takes SEG candidates; each next one the best KP so far and SEG - KP new.
    var next = 0u;
    var first = true;
    loop {
        let keep = select(P.kp, 0u, first);
        for (var i = keep + lid; i < SEG; i += WG) {
            let c = next + i - keep;
            s[i] = select(NONE, C[min(c, total - 1u)], c < total);
        }
        workgroupBarrier();
        bitonic(lid);
        next += SEG - keep;
        first = false;
        if (next >= total) {
            break;
        }
    }
    for (var i = lid; i < P.kp; i += WG) {
        O[i] = s[i];
    }
}
