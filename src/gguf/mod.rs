//! The GGUF container: header, metadata, tensor index and the data section, read from a
//! memory map. Nothing here trusts the file: every count, length, shape and offset is
//! checked against the file size before it is used.
//!
//! Layout (little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor count,
//! u64 metadata count, the metadata key/values, the tensor infos, padding to
//! `general.alignment`, then the tensor data.

mod reader;
mod value;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use reader::Cursor;
pub use value::{MetaValue, ValueType, MAX_ARRAY_DEPTH};

use crate::error::{Error, Result};
use crate::quant::GgmlType;

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: u32 = 4;

/// Where one tensor lies in the file and what it holds.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the row count.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the first byte, relative to the start of the data section.
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Weights per row (`dims[0]`).
    pub fn row_len(&self) -> usize {
        self.dims[0] as usize
    }
    /// Number of rows (product of the outer dims).
    pub fn n_rows(&self) -> usize {
        (self.n_elements / self.dims[0]) as usize
    }
}

enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

pub struct GgufFile {
    pub path: PathBuf,
    storage: Storage,
    pub version: u32,
    pub alignment: u64,
    /// Key/value pairs in file order.
    pub metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    /// Absolute file offset of the data section.
    pub data_offset: u64,
}

impl GgufFile {
    /// Memory-map and parse a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io { path: path.clone(), source };
        let file = std::fs::File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only; a file truncated underneath us by another
        // process is outside what any mmap-based reader can defend against.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, Storage::Mmap(mmap))
    }

    /// Parse a GGUF image held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(PathBuf::from("<memory>"), Storage::Owned(bytes))
    }

    fn parse(path: PathBuf, storage: Storage) -> Result<Self> {
        let buf: &[u8] = &storage;
        let mut c = Cursor::new(buf);
        let (version, n_tensors, n_kv) = read_header(&mut c)?;
        let (metadata, meta_index) = read_metadata(&mut c, n_kv)?;
        let alignment = match metadata.get(meta_index.get("general.alignment").copied().unwrap_or(usize::MAX)) {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => return Err(Error::metadata("general.alignment", format!("must be a power of two, found {v}"))),
            },
        };
        let (raw, tensor_index) = read_tensor_index(&mut c, n_tensors)?;

        let data_offset = c.pos().div_ceil(alignment) * alignment;
        let file_len = buf.len() as u64;
        if data_offset > file_len && n_tensors > 0 {
            let msg = format!("starts past the end of the file ({file_len} bytes)");
            return Err(Error::gguf("data section", data_offset, msg));
        }
        let data = DataSection { offset: data_offset, len: file_len.saturating_sub(data_offset), file_len, alignment };
        let tensors = raw.into_iter().map(|r| data.check(r)).collect::<Result<Vec<_>>>()?;
        Ok(GgufFile { path, storage, version, alignment, metadata, meta_index, tensors, tensor_index, data_offset })
    }

    pub fn file_size(&self) -> u64 {
        self.storage.len() as u64
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor, exactly as stored (bounds were checked at parse time).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.storage[start..start + t.n_bytes as usize]
    }

    // Typed metadata access: the error names the key and what was wrong with it.

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.get(key).ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_u64().ok_or_else(|| Error::metadata(key, format!("expected an unsigned integer, found {}", v.type_name())))
    }

    pub fn get_u64_or(&self, key: &str, default: u64) -> Result<u64> {
        if self.get(key).is_none() {
            Ok(default)
        } else {
            self.get_u64(key)
        }
    }

    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let v = self.get(key).ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_f64()
            .map(|x| x as f32)
            .ok_or_else(|| Error::metadata(key, format!("expected a number, found {}", v.type_name())))
    }

    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.get_f32(key).map(Some)
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.get(key).ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_str().ok_or_else(|| Error::metadata(key, format!("expected a string, found {}", v.type_name())))
    }

    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| Error::metadata(key, format!("expected a bool, found {}", v.type_name()))),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<&[MetaValue]> {
        let v = self.get(key).ok_or_else(|| Error::metadata(key, "missing"))?;
        v.as_array().ok_or_else(|| Error::metadata(key, format!("expected an array, found {}", v.type_name())))
    }

    /// Dequantize a whole tensor to f32 on the CPU.
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        let mut out = vec![0f32; t.n_elements as usize];
        crate::quant::dequantize(t.ty, self.tensor_data(t), &mut out)
            .map_err(|e| Error::tensor(&t.name, e.to_string()))?;
        Ok(out)
    }
}

/// Magic, version and the two counts: (version, tensor count, metadata count).
fn read_header(c: &mut Cursor) -> Result<(u32, u64, u64)> {
    let magic = c.bytes(4, "magic")?;
    if magic != GGUF_MAGIC {
        return Err(Error::gguf("magic", 0, format!("expected \"GGUF\", found {magic:02x?}: not a GGUF file")));
    }
    let version = c.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(Error::gguf("version", 4, format!("version {version} is not supported (2 and 3 are)")));
    }
    let n_tensors = c.u64("tensor_count")?;
    let n_kv = c.u64("metadata_kv_count")?;
    // A key/value needs at least a key length, a type and one value byte.
    c.check_count(n_kv, 8 + 4 + 1, "metadata_kv_count")?;
    Ok((version, n_tensors, n_kv))
}

type Metadata = (Vec<(String, MetaValue)>, HashMap<String, usize>);

/// The metadata key/values, and where each key is.
fn read_metadata(c: &mut Cursor, n_kv: u64) -> Result<Metadata> {
    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut meta_index = HashMap::new();
    for _ in 0..n_kv {
        let at = c.pos();
        let key = c.string("metadata key")?;
        let tat = c.pos();
        let t = c.u32(&key)?;
        let ty = ValueType::from_u32(t)
            .ok_or_else(|| Error::gguf(key.clone(), tat, format!("unknown metadata value type {t}")))?;
        let v = MetaValue::read(c, ty, &key, 0)?;
        if meta_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(Error::gguf(key, at, "duplicate metadata key"));
        }
        metadata.push((key, v));
    }
    Ok((metadata, meta_index))
}

/// One tensor's entry in the index, as read: name, dims, type id, offset.
type RawTensor = (String, Vec<u64>, u32, u64);

/// The tensor index, and where each name is.
fn read_tensor_index(c: &mut Cursor, n_tensors: u64) -> Result<(Vec<RawTensor>, HashMap<String, usize>)> {
    // A tensor info needs at least a name length, n_dims, one dim, a type and an offset.
    c.check_count(n_tensors, 8 + 4 + 8 + 4 + 8, "tensor_count")?;
    let mut raw = Vec::with_capacity(n_tensors as usize);
    let mut tensor_index = HashMap::new();
    for i in 0..n_tensors {
        let at = c.pos();
        let name = c.string(&format!("tensor {i} name"))?;
        let nd_at = c.pos();
        let n_dims = c.u32(&format!("tensor '{name}' n_dims"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            let msg = format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)");
            return Err(Error::gguf(format!("tensor '{name}' n_dims"), nd_at, msg));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&format!("tensor '{name}' dims"))?);
        }
        let type_id = c.u32(&format!("tensor '{name}' type"))?;
        let offset = c.u64(&format!("tensor '{name}' offset"))?;
        if tensor_index.insert(name.clone(), raw.len()).is_some() {
            return Err(Error::gguf(format!("tensor '{name}'"), at, "duplicate tensor name"));
        }
        raw.push((name, dims, type_id, offset));
    }
    Ok((raw, tensor_index))
}

/// Where the tensor data lies in the file.
struct DataSection {
    offset: u64,
    len: u64,
    file_len: u64,
    alignment: u64,
}

impl DataSection {
    /// A tensor's type, shape, alignment and byte range, checked before its bytes are touched.
    fn check(&self, (name, dims, type_id, offset): RawTensor) -> Result<TensorInfo> {
        let ty =
            GgmlType::from_id(type_id).ok_or_else(|| Error::UnknownTensorType { tensor: name.clone(), type_id })?;
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| if d == 0 { None } else { acc.checked_mul(d) })
            .filter(|&n| n < 1 << 50)
            .ok_or_else(|| Error::tensor(&name, format!("shape {dims:?} is empty or its element count overflows")))?;
        let row_bytes = ty.row_bytes(dims[0]).ok_or_else(|| {
            let msg = format!("row length {} is not a multiple of the {ty} block size {}", dims[0], ty.block_size());
            Error::tensor(&name, msg)
        })?;
        let n_bytes =
            row_bytes.checked_mul(n_elements / dims[0]).ok_or_else(|| Error::tensor(&name, "byte size overflows"))?;
        if offset % self.alignment != 0 {
            let msg = format!("data offset {offset} is not a multiple of the alignment {}", self.alignment);
            return Err(Error::tensor(&name, msg));
        }
        if offset.checked_add(n_bytes).is_none_or(|end| end > self.len) {
            let start = self.offset as u128 + offset as u128;
            let end = start + n_bytes as u128;
            let msg = format!("data [{start}, {end}) lies past the end of the file ({} bytes)", self.file_len);
            return Err(Error::tensor(&name, msg));
        }
        Ok(TensorInfo { name, dims, ty, offset, n_elements, n_bytes })
    }
}
