//! GPU buffers: weights uploaded as their GGUF bytes (split by rows where a tensor is
//! larger than one storage binding may be), f32 activation buffers, and readback.

use super::context::GpuContext;
use super::kernels::UNIFORM_X_BYTES;
use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::{Config, ModelWeights};
use crate::quant::GgmlType;

/// Every weight of the model uploaded as its file bytes; also the bytes uploaded.
pub fn upload_weights(ctx: &GpuContext, g: &GgufFile, cfg: &Config) -> Result<(ModelWeights<GpuTensor>, u64)> {
    // Each upload goes through a staging copy that wgpu frees only once the queue has
    // moved on: flushing every UPLOAD_FLUSH_BYTES keeps the peak near the plan's total
    // instead of twice the weights.
    const UPLOAD_FLUSH_BYTES: u64 = 64 << 20;
    let (mut total, mut pending) = (0u64, 0u64);
    let weights = ModelWeights::load(cfg, g, |t| {
        total += t.n_bytes;
        pending += t.n_bytes;
        let w = GpuTensor::upload(ctx, &t.name, t.ty, t.row_len(), t.n_rows(), g.tensor_data(t))?;
        if pending >= UPLOAD_FLUSH_BYTES {
            pending = 0;
            ctx.queue.submit([]);
            ctx.wait("the upload")?;
        }
        Ok(w)
    })?;
    Ok((weights, total))
}

/// A contiguous run of rows of a tensor, in its own buffer.
#[derive(Clone)]
pub struct Part {
    pub buffer: wgpu::Buffer,
    pub row_start: u32,
    pub rows: u32,
}

/// A tensor in GPU memory: the file's bytes, in the layout `gpu::layout` gives its type
/// (cloning shares its buffers).
#[derive(Clone)]
pub struct GpuTensor {
    pub name: String,
    pub ty: GgmlType,
    /// Weights per row (ggml dims[0]).
    pub cols: u32,
    pub rows: u32,
    pub row_bytes: u32,
    pub parts: Vec<Part>,
}

impl GpuTensor {
    pub fn bytes(&self) -> u64 {
        self.row_bytes as u64 * self.rows as u64
    }

    /// Upload `data` (rows × row_bytes, as stored), in as few parts as the adapter's
    /// binding and buffer limits allow.
    pub fn upload(ctx: &GpuContext, name: &str, ty: GgmlType, cols: usize, rows: usize, data: &[u8]) -> Result<Self> {
        let cap = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        Self::upload_capped(ctx, name, ty, cols, rows, data, cap)
    }

    /// As `upload`, with parts of at most `cap` bytes (tests force splitting with it).
    pub fn upload_capped(
        ctx: &GpuContext,
        name: &str,
        ty: GgmlType,
        cols: usize,
        rows: usize,
        data: &[u8],
        cap: u64,
    ) -> Result<Self> {
        let row_bytes =
            ty.row_bytes(cols as u64).ok_or_else(|| Error::tensor(name, "row is not a whole number of blocks"))?;
        if row_bytes * rows as u64 != data.len() as u64 {
            return Err(Error::tensor(name, format!("{} bytes for {rows} rows of {row_bytes}", data.len())));
        }
        if row_bytes > cap {
            return Err(Error::tensor(
                name,
                format!("one row is {row_bytes} bytes, more than the adapter's largest binding ({cap} bytes)"),
            ));
        }
        if rows > u32::MAX as usize || row_bytes > u32::MAX as u64 {
            return Err(Error::tensor(name, "too large for 32-bit indexing"));
        }
        // Byte offsets inside a part are u32 in the shaders.
        let per_part = (cap.min(u32::MAX as u64) / row_bytes).max(1) as usize;
        let mut parts = Vec::new();
        let mut start = 0usize;
        while start < rows {
            let n = per_part.min(rows - start);
            let bytes = &data[start * row_bytes as usize..(start + n) * row_bytes as usize];
            let buffer = ctx.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(name),
                contents: &super::layout::for_gpu(ty, bytes),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            });
            parts.push(Part { buffer, row_start: start as u32, rows: n as u32 });
            start += n;
        }
        Ok(GpuTensor {
            name: name.to_string(),
            ty,
            cols: cols as u32,
            rows: rows as u32,
            row_bytes: row_bytes as u32,
            parts,
        })
    }
}

/// An f32 buffer for activations, caches and test inputs.
pub fn f32_buffer(ctx: &GpuContext, label: &str, len: usize) -> wgpu::Buffer {
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (len.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// An f32 buffer that a decoding matvec may read X from: up to `UNIFORM_X_BYTES / 4`
/// floats get a buffer of exactly that size that can also be bound as uniform; wider ones
/// a plain `f32_buffer`. `x_buffer_floats` is its size in floats, for the memory plan.
pub fn x_buffer(ctx: &GpuContext, label: &str, len: usize) -> wgpu::Buffer {
    if len > (UNIFORM_X_BYTES / 4) as usize {
        return f32_buffer(ctx, label, len);
    }
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: UNIFORM_X_BYTES,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::UNIFORM
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// The floats `x_buffer` allocates for `len`.
pub fn x_buffer_floats(len: usize) -> usize {
    let uniform = (UNIFORM_X_BYTES / 4) as usize;
    if len <= uniform {
        uniform
    } else {
        len
    }
}

pub fn f32_buffer_init(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    let padded: Vec<f32> = if data.is_empty() { vec![0.0] } else { data.to_vec() };
    ctx.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&padded),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    })
}

/// A mappable buffer to read results back through.
pub fn staging_buffer(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Wait for submitted work and copy `len` floats out of a mapped staging buffer.
pub fn read_staging(ctx: &GpuContext, staging: &wgpu::Buffer, out: &mut [f32]) -> Result<()> {
    let bytes = (out.len() * 4) as u64;
    let slice = staging.slice(..bytes);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait("the GPU")?;
    rx.recv()
        .map_err(|_| Error::Gpu("the readback callback never ran".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
    {
        let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")))?;
        out.copy_from_slice(bytemuck::cast_slice(&view));
    }
    staging.unmap();
    Ok(())
}

/// Read a whole f32 buffer back (tests, comparisons; not the per-token path).
/// Copy `len` bytes of `buf` from byte `src` to byte `dst` (the ranges apart; all three
/// multiples of 4) through `scratch`, as much of it as fits at a time: WebGPU copies no
/// buffer into itself.
pub fn copy_within(
    enc: &mut wgpu::CommandEncoder,
    buf: &wgpu::Buffer,
    src: u64,
    dst: u64,
    len: u64,
    scratch: &wgpu::Buffer,
) {
    let piece = scratch.size() / 4 * 4;
    let mut done = 0;
    while done < len {
        let n = piece.min(len - done);
        enc.copy_buffer_to_buffer(buf, src + done, scratch, 0, n);
        enc.copy_buffer_to_buffer(scratch, 0, buf, dst + done, n);
        done += n;
    }
}

pub fn read_f32(ctx: &GpuContext, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    let staging = staging_buffer(ctx, "readback", (len * 4) as u64);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buf, 0, &staging, 0, (len * 4) as u64);
    ctx.queue.submit(std::iter::once(enc.finish()));
    let mut out = vec![0f32; len];
    read_staging(ctx, &staging, &mut out)?;
    Ok(out)
}
