//! `lanterna quantize`: a GGUF's F32/F16/BF16 weight matrices re-encoded as one quantized
//! type, as `llama-quantize IN OUT TYPE` does for a plain type: 1-D tensors (norms, biases)
//! stay F32, rows that are not a whole number of the type's blocks fall back as llama.cpp
//! falls back, and metadata is kept with `general.file_type` updated.

use crate::error::{Error, Result};
use crate::gguf::writer::GgufWriter;
use crate::gguf::{GgufFile, MetaValue};
use crate::quant::quantize::{quantize, QUANTIZE_TYPES};
use crate::quant::GgmlType;

/// llama.cpp's `llama_ftype` for a file mostly of `ty` (general.file_type): for the
/// K-quants, the `_S` variants, which are the ones "mostly" of that type.
pub fn file_type(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q2K => 10,
        GgmlType::Q3K => 11,
        GgmlType::Q4K => 14,
        GgmlType::Q5K => 16,
        GgmlType::Q6K => 18,
        GgmlType::BF16 => 32,
    }
}

/// What happened to one tensor.
pub struct TensorReport {
    pub name: String,
    pub from: GgmlType,
    pub to: GgmlType,
    pub note: Option<String>,
}

/// The type a matrix with rows of `row_len` becomes when `target` is asked for:
/// llama.cpp's fallbacks where the row is not a whole number of blocks.
fn type_for_row(target: GgmlType, row_len: u64) -> GgmlType {
    if row_len.is_multiple_of(target.block_size()) {
        return target;
    }
    let fallback = match target {
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        _ => GgmlType::F16,
    };
    if row_len.is_multiple_of(fallback.block_size()) {
        fallback
    } else {
        GgmlType::F16
    }
}

/// Quantize every weight matrix of `g` to `target`; `on_tensor(i, n, report)` after each.
pub fn quantize_model(
    g: &GgufFile,
    target: GgmlType,
    allow_requantize: bool,
    mut on_tensor: impl FnMut(usize, usize, &TensorReport),
) -> Result<GgufWriter> {
    if !QUANTIZE_TYPES.contains(&target) {
        return Err(Error::Usage(format!(
            "cannot quantize to {target} (supported: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)"
        )));
    }
    let mut w = GgufWriter {
        version: 3,
        alignment: g.alignment,
        metadata: g.metadata.clone(),
        tensors: Vec::with_capacity(g.tensors.len()),
    };
    let set = |w: &mut GgufWriter, k: &str, v: MetaValue| match w.metadata.iter_mut().find(|(key, _)| key == k) {
        Some(kv) => kv.1 = v,
        None => w.metadata.push((k.to_string(), v)),
    };
    set(&mut w, "general.file_type", MetaValue::U32(file_type(target)));
    set(&mut w, "general.quantization_version", MetaValue::U32(2));
    let n = g.tensors.len();
    for (i, t) in g.tensors.iter().enumerate() {
        let is_float = matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
        let matrix = t.dims.iter().skip(1).any(|&d| d > 1);
        let (to, note) = if !matrix {
            // Norms, biases and other vectors: F32, as llama.cpp keeps them.
            (if is_float { GgmlType::F32 } else { t.ty }, None)
        } else if !is_float && !allow_requantize {
            return Err(Error::tensor(&t.name, format!(
                "is already {}; quantizing it again loses precision a second time — pass --allow-requantize to do it anyway",
                t.ty
            )));
        } else {
            let to = type_for_row(target, t.dims[0]);
            let mut notes = Vec::new();
            if !is_float {
                notes.push(format!("requantized from {}", t.ty));
            }
            if to != target {
                notes.push(format!("rows of {} are not whole {target} blocks: {to} instead", t.dims[0]));
            }
            (to, (!notes.is_empty()).then(|| notes.join("; ")))
        };
        let bytes = if to == t.ty {
            g.tensor_data(t).to_vec()
        } else {
            let values = g.dequantize(t)?;
            quantize(to, &values).map_err(|e| Error::tensor(&t.name, e.to_string()))?
        };
        w.tensors.push((t.name.clone(), t.dims.clone(), to, bytes));
        on_tensor(i, n, &TensorReport { name: t.name.clone(), from: t.ty, to, note });
    }
    Ok(w)
}
