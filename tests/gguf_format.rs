//! The GGUF reader: every metadata type round-trips through the project's writer, and
//! broken files give an error that names the problem (never a panic).

use lanterna::gguf::writer::GgufWriter;
use lanterna::gguf::{GgufFile, MetaValue, ValueType};
use lanterna::quant::GgmlType;
use lanterna::Error;

fn sample() -> GgufWriter {
    let mut w = GgufWriter::default();
    w.kv("general.architecture", MetaValue::String("llama".into()))
        .kv("u8", MetaValue::U8(200))
        .kv("i8", MetaValue::I8(-5))
        .kv("u16", MetaValue::U16(60000))
        .kv("i16", MetaValue::I16(-30000))
        .kv("u32", MetaValue::U32(4_000_000_000))
        .kv("i32", MetaValue::I32(-2_000_000_000))
        .kv("f32", MetaValue::F32(1.5))
        .kv("bool", MetaValue::Bool(true))
        .kv("u64", MetaValue::U64(1 << 40))
        .kv("i64", MetaValue::I64(-(1 << 40)))
        .kv("f64", MetaValue::F64(-2.25))
        .kv(
            "strings",
            MetaValue::Array(ValueType::String, vec![MetaValue::String("a".into()), MetaValue::String("βγ".into())]),
        )
        .kv(
            "nested",
            MetaValue::Array(
                ValueType::Array,
                vec![
                    MetaValue::Array(ValueType::I32, vec![MetaValue::I32(1), MetaValue::I32(-2)]),
                    MetaValue::Array(ValueType::I32, vec![]),
                ],
            ),
        );
    let vals: Vec<f32> = (0..3 * 5).map(|i| i as f32 * 0.5).collect();
    w.tensor_f32("a.weight", &[5, 3], &vals);
    w.tensor("b.weight", &[32, 2], GgmlType::Q8_0, vec![0u8; 2 * 34]);
    w
}

fn parse_err(bytes: Vec<u8>) -> String {
    match GgufFile::from_bytes(bytes) {
        Ok(_) => panic!("a broken file was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_value_type_round_trips() {
    let w = sample();
    let g = GgufFile::from_bytes(w.to_bytes()).unwrap();
    assert_eq!(g.version, 3);
    for (k, v) in &w.metadata {
        assert_eq!(g.get(k), Some(v), "{k}");
    }
    let a = g.tensor("a.weight").unwrap();
    assert_eq!(a.dims, vec![5, 3]);
    assert_eq!(g.dequantize(a).unwrap(), (0..15).map(|i| i as f32 * 0.5).collect::<Vec<_>>());
    let b = g.tensor("b.weight").unwrap();
    assert_eq!((b.ty, b.n_bytes), (GgmlType::Q8_0, 68));
    assert_eq!(b.offset % g.alignment, 0);
}

#[test]
fn version_2_is_read() {
    let mut w = sample();
    w.version = 2;
    assert_eq!(GgufFile::from_bytes(w.to_bytes()).unwrap().version, 2);
}

#[test]
fn wrong_magic_is_refused() {
    let mut b = sample().to_bytes();
    b[..4].copy_from_slice(b"GGML");
    let e = parse_err(b);
    assert!(e.contains("magic") && e.contains("not a GGUF file"), "{e}");
}

#[test]
fn unsupported_version_is_refused() {
    let mut b = sample().to_bytes();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    let e = parse_err(b);
    assert!(e.contains("version 1"), "{e}");
}

#[test]
fn truncated_tensor_table_names_the_field() {
    let (b, table_at, _) = sample().to_bytes_with_layout();
    for cut in [table_at + 3, table_at + 12, table_at + 20] {
        let e = parse_err(b[..cut].to_vec());
        assert!(e.contains("tensor") && e.contains("byte"), "cut at {cut}: {e}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let b = sample().to_bytes();
    let full = GgufFile::from_bytes(b.clone()).unwrap();
    // The writer ends the file with the last tensor's bytes (no trailing padding), so every
    // shorter file is missing something and must be refused — and none may panic.
    let end = (full.data_offset + full.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap()) as usize;
    assert_eq!(end, b.len());
    for cut in 0..b.len() {
        assert!(GgufFile::from_bytes(b[..cut].to_vec()).is_err(), "cut at {cut} of {} accepted", b.len());
    }
}

#[test]
fn tensor_past_end_of_file_is_refused() {
    let mut w = sample();
    // Claim a larger tensor than the bytes that follow.
    w.tensors[1].1 = vec![32, 2000];
    let e = parse_err(w.to_bytes());
    assert!(e.contains("b.weight") && e.contains("past the end of the file"), "{e}");
}

#[test]
fn unknown_tensor_type_names_tensor_and_id() {
    let (mut b, table_at, _) = sample().to_bytes_with_layout();
    // First tensor info: name (8 + 8 bytes "a.weight"), n_dims u32, 2 dims u64, then type.
    let ty_at = table_at + 8 + 8 + 4 + 16;
    b[ty_at..ty_at + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = GgufFile::from_bytes(b).err().unwrap();
    assert!(matches!(&e, Error::UnknownTensorType { tensor, type_id: 99 } if tensor == "a.weight"), "{e}");
}

#[test]
fn huge_counts_are_refused_before_allocation() {
    let mut b = sample().to_bytes();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
    let e = parse_err(b.clone());
    assert!(e.contains("metadata_kv_count"), "{e}");
    let mut b2 = sample().to_bytes();
    b2[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes()); // tensor count
    let e = parse_err(b2);
    assert!(e.contains("tensor_count"), "{e}");
}

#[test]
fn overlong_string_is_refused() {
    let mut b = sample().to_bytes();
    // The first key's length field.
    b[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let e = parse_err(b);
    assert!(e.contains("metadata key") && e.contains("remain"), "{e}");
}

#[test]
fn row_not_multiple_of_block_is_refused() {
    let mut w = sample();
    w.tensors[1].1 = vec![33, 2];
    let e = parse_err(w.to_bytes());
    assert!(e.contains("not a multiple"), "{e}");
}
