//! A minimal GGUF writer: builds valid files for tests (tiny models, and the starting
//! point of hostile ones) and for `lanterna quantize`.

use super::{GgufFile, MetaValue, ValueType, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::quant::GgmlType;

pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, MetaValue)>,
    /// name, ggml-order dims, type, raw bytes
    pub tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter { version: 3, alignment: DEFAULT_ALIGNMENT, metadata: Vec::new(), tensors: Vec::new() }
    }
}

fn value_type(v: &MetaValue) -> ValueType {
    use MetaValue::*;
    match v {
        U8(_) => ValueType::U8,
        I8(_) => ValueType::I8,
        U16(_) => ValueType::U16,
        I16(_) => ValueType::I16,
        U32(_) => ValueType::U32,
        I32(_) => ValueType::I32,
        F32(_) => ValueType::F32,
        Bool(_) => ValueType::Bool,
        String(_) => ValueType::String,
        U64(_) => ValueType::U64,
        I64(_) => ValueType::I64,
        F64(_) => ValueType::F64,
        Array(..) => ValueType::Array,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    use MetaValue::*;
    match v {
        U8(x) => out.push(*x),
        I8(x) => out.push(*x as u8),
        U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Bool(x) => out.push(*x as u8),
        String(s) => put_str(out, s),
        U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Array(t, items) => {
            out.extend_from_slice(&(*t as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                put_value(out, it);
            }
        }
    }
}

impl GgufWriter {
    /// Everything in `g` — metadata and each tensor's bytes as stored — ready to change
    /// and write again (hostile-file tests start from a valid model this way).
    pub fn from_file(g: &GgufFile) -> Self {
        GgufWriter {
            version: g.version,
            alignment: g.alignment,
            metadata: g.metadata.clone(),
            tensors: g
                .tensors
                .iter()
                .map(|t| (t.name.clone(), t.dims.clone(), t.ty, g.tensor_data(t).to_vec()))
                .collect(),
        }
    }

    pub fn kv(&mut self, key: &str, v: MetaValue) -> &mut Self {
        self.metadata.push((key.to_string(), v));
        self
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, bytes: Vec<u8>) -> &mut Self {
        self.tensors.push((name.to_string(), dims.to_vec(), ty, bytes));
        self
    }

    /// An F32 tensor from values.
    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> &mut Self {
        self.tensor(name, dims, GgmlType::F32, bytemuck::cast_slice(values).to_vec())
    }

    /// Serialize; also returns where the tensor-info table starts and where data starts
    /// (hostile-file tests cut or patch the image at those points).
    pub fn to_bytes_with_layout(&self) -> (Vec<u8>, usize, usize) {
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            out.extend_from_slice(&(value_type(v) as u32).to_le_bytes());
            put_value(&mut out, v);
        }
        let table_at = out.len();
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, ty, bytes) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + bytes.len() as u64).div_ceil(self.alignment) * self.alignment;
        }
        let data_at = (out.len() as u64).div_ceil(self.alignment) * self.alignment;
        out.resize(data_at as usize, 0);
        for ((_, _, _, bytes), off) in self.tensors.iter().zip(offsets) {
            out.resize(data_at as usize + off as usize, 0);
            out.extend_from_slice(bytes);
        }
        (out, table_at, data_at as usize)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with_layout().0
    }
}
