//! How the CPU reference holds a weight: dequantized to f32 once at load.

/// A dequantized tensor; `rows` × `cols` row-major (ggml dims `[cols, rows]`).
pub struct CpuTensor {
    pub data: Vec<f32>,
    pub cols: usize,
    pub rows: usize,
}
