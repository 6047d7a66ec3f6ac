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
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;        // [n_embd, n_vocab] any GGUF type
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;  // [n_embd]
@group(0) @binding(2) var<uniform> P: Params;
@group(0) @binding(3) var<uniform> S: Step;

fn xval(i: u32) -> f32 {
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
