// x = token_embd[token] * scale: one row of the embedding, dequantized (block_get from
// quant/<type>.wgsl). A split embedding runs this once per part; only the part that
// holds the token writes.

struct Params {
    row_start: u32,  // first row (token id) in this part
    rows: u32,       // rows in this part
    cols: u32,       // n_embd
    row_bytes: u32,
    scale: f32,      // Gemma: sqrt(n_embd); others 1
}

struct Step {
    token: u32,
    pos: u32,
    n_pos: u32,
    n_tokens: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;        // [n_embd, n_vocab] any GGUF type
@group(0) @binding(12) var<storage, read> Wv: array<vec4<u32>>;  // W as vec4s, for block_dot only
const WV: bool = false;  // words (common.wgsl); block_dot is never called here
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;  // [n_embd]
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;
@group(0) @binding(4) var<storage, read> Tok: array<u32>;      // [tokens] (main_batch only)

// Only block_get is used here; block_dot still has to type-check (acc_t: acc_f32.wgsl).
fn xval(i: u32) -> acc_t {
    return 0.0;
}

const XSUM_CACHED: bool = false;

fn x32_sum(xi: u32) -> acc_t {
    return 0.0;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= P.cols || S.token < P.row_start || S.token >= P.row_start + P.rows) {
        return;
    }
    let b = (S.token - P.row_start) * P.row_bytes + (i / BLOCK_WEIGHTS) * BLOCK_BYTES;
    Y[i] = block_get(b, i % BLOCK_WEIGHTS) * P.scale;
}

// Prompt chunks: the token of each y workgroup row comes from Tok.
@compute @workgroup_size(64)
fn main_batch(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let k = gid.y;
    if (i >= P.cols || k >= S.n_tokens) {
        return;
    }
    let token = Tok[k];
    if (token < P.row_start || token >= P.row_start + P.rows) {
        return;
    }
    let b = (token - P.row_start) * P.row_bytes + (i / BLOCK_WEIGHTS) * BLOCK_BYTES;
    Y[k * P.cols + i] = block_get(b, i % BLOCK_WEIGHTS) * P.scale;
}
