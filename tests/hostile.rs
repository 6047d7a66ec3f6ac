//! The hostile-file catalogue: each case is a broken or malicious GGUF — made from a valid
//! tiny model (tests/fixtures/zoo/llama-spm) by the project's own writer, or by patching
//! its bytes where the writer cannot produce the fault — and the specific error it must
//! produce. Every case runs twice: in process, through every loading step a user's `run`
//! takes (parse → configuration → tokenizer → weights), and through the real binary with
//! `RUST_BACKTRACE=1`, which must exit non-zero with `error: …` and never panic.

mod common;

use std::process::Command;

use lanterna::cpu::CpuModel;
use lanterna::gguf::writer::GgufWriter;
use lanterna::gguf::{GgufFile, MetaValue, ValueType};
use lanterna::model::Config;
use lanterna::quant::GgmlType;
use lanterna::tokenizer::Tokenizer;

const BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf");

fn base() -> GgufWriter {
    GgufWriter::from_file(&GgufFile::open(BASE).expect("the valid base model"))
}

fn set(w: &mut GgufWriter, key: &str, v: MetaValue) {
    match w.metadata.iter_mut().find(|(k, _)| k == key) {
        Some(kv) => kv.1 = v,
        None => w.metadata.push((key.to_string(), v)),
    }
}

fn remove(w: &mut GgufWriter, key: &str) {
    let n = w.metadata.len();
    w.metadata.retain(|(k, _)| k != key);
    assert!(w.metadata.len() < n, "the base model has no key {key}");
}

fn with(f: impl FnOnce(&mut GgufWriter)) -> Vec<u8> {
    let mut w = base();
    f(&mut w);
    w.to_bytes()
}

/// Byte offset of the first metadata key's length (after magic, version and two counts).
const FIRST_KEY: usize = 24;

fn patch_u64(mut b: Vec<u8>, at: usize, v: u64) -> Vec<u8> {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    b
}

fn patch_u32(mut b: Vec<u8>, at: usize, v: u32) -> Vec<u8> {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    b
}

/// Where the bytes of `needle` first occur in `b` (to patch a field the writer laid out).
fn find(b: &[u8], needle: &[u8]) -> usize {
    b.windows(needle.len()).position(|w| w == needle).expect("pattern in the image")
}

/// The byte just after tensor `name`'s name in the tensor-info table: its n_dims.
fn tensor_info_at(b: &[u8], name: &str) -> usize {
    let mut pat = (name.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(name.as_bytes());
    find(b, &pat) + pat.len()
}

/// (name, file image, text the error must contain)
fn catalogue() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = base().to_bytes();
    let (_, table_at, data_at) = base().to_bytes_with_layout();
    let q_dims = tensor_info_at(&good, "blk.0.attn_q.weight");
    let mut c: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        ("empty file", vec![], "magic"),
        (
            "wrong magic",
            {
                let mut b = good.clone();
                b[..4].copy_from_slice(b"GGML");
                b
            },
            "not a GGUF file",
        ),
        ("version 1", patch_u32(good.clone(), 4, 1), "version 1 is not supported"),
        ("version 4", patch_u32(good.clone(), 4, 4), "version 4 is not supported"),
        ("cut inside the header", good[..13].to_vec(), "truncated"),
        ("cut inside the metadata", good[..table_at / 2].to_vec(), "truncated"),
        ("cut inside the tensor table", good[..table_at + 20].to_vec(), "truncated"),
        (
            "cut inside the tensor data",
            good[..data_at + (good.len() - data_at) / 2].to_vec(),
            "past the end of the file",
        ),
        ("tensor count 2^63", patch_u64(good.clone(), 8, 1 << 63), "tensor_count"),
        ("metadata count 2^40", patch_u64(good.clone(), 16, 1 << 40), "metadata_kv_count"),
        ("key length 2^40", patch_u64(good.clone(), FIRST_KEY, 1 << 40), "metadata key"),
        (
            "key that is not UTF-8",
            {
                let mut b = good.clone();
                b[FIRST_KEY + 8] = 0xFF;
                b
            },
            "not valid UTF-8",
        ),
        (
            "unknown metadata value type",
            {
                let b = good.clone();
                // general.architecture's value type follows its key.
                let at = find(&b, b"general.architecture") + "general.architecture".len();
                patch_u32(b, at, 99)
            },
            "unknown metadata value type 99",
        ),
        (
            "string array of 2^50 entries",
            {
                let b = good.clone();
                let at = find(&b, b"tokenizer.ggml.tokens") + "tokenizer.ggml.tokens".len() + 4 + 4;
                patch_u64(b, at, 1 << 50)
            },
            "tokenizer.ggml.tokens",
        ),
        (
            "arrays nested 12 deep",
            with(|w| {
                let mut v = MetaValue::Array(ValueType::U8, vec![MetaValue::U8(1)]);
                for _ in 0..12 {
                    v = MetaValue::Array(ValueType::Array, vec![v]);
                }
                w.kv("hostile.nested", v);
            }),
            "nested",
        ),
        (
            "duplicate metadata key",
            with(|w| {
                w.kv("general.architecture", MetaValue::String("llama".into()));
            }),
            "duplicate metadata key",
        ),
        (
            "duplicate tensor name",
            with(|w| {
                let t = w.tensors[1].clone();
                w.tensors.push(t);
            }),
            "duplicate tensor name",
        ),
        ("tensor with 9 dimensions", patch_u32(good.clone(), q_dims, 9), "9 dimensions"),
        ("tensor with 0 dimensions", patch_u32(good.clone(), q_dims, 0), "0 dimensions"),
        (
            "element count that overflows",
            with(|w| {
                w.tensor("hostile.weight", &[1 << 40, 1 << 40], GgmlType::F32, vec![]);
            }),
            "overflows",
        ),
        (
            "unknown tensor type",
            {
                let b = good.clone();
                // n_dims (u32), 2 dims (u64 each), then the type id.
                patch_u32(b, q_dims + 4 + 16, 99)
            },
            "unknown ggml type id 99",
        ),
        (
            "misaligned tensor offset",
            {
                let b = good.clone();
                let at = q_dims + 4 + 16 + 4;
                let off = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
                patch_u64(b, at, off + 4)
            },
            "is not a multiple of the alignment",
        ),
        (
            "tensor data past the end",
            {
                let b = good.clone();
                let at = q_dims + 4 + 16 + 4;
                patch_u64(b, at, 1 << 40)
            },
            "past the end of the file",
        ),
        (
            "alignment that is not a power of two",
            with(|w| {
                set(w, "general.alignment", MetaValue::U32(24));
                w.alignment = 24;
            }),
            "general.alignment",
        ),
        (
            "alignment of the wrong type",
            with(|w| set(w, "general.alignment", MetaValue::String("32".into()))),
            "general.alignment",
        ),
        (
            "row that is not whole blocks",
            with(|w| {
                w.tensor("hostile.weight", &[33, 2], GgmlType::Q4_0, vec![0; 36]);
            }),
            "hostile.weight",
        ),
        ("no architecture", with(|w| remove(w, "general.architecture")), "general.architecture"),
        (
            "architecture of the wrong type",
            with(|w| set(w, "general.architecture", MetaValue::U32(7))),
            "general.architecture",
        ),
        (
            "unsupported architecture",
            with(|w| set(w, "general.architecture", MetaValue::String("mamba".into()))),
            "'mamba' is not supported",
        ),
        ("no embedding length", with(|w| remove(w, "llama.embedding_length")), "llama.embedding_length"),
        (
            "embedding length as a string",
            with(|w| set(w, "llama.embedding_length", MetaValue::String("64".into()))),
            "llama.embedding_length",
        ),
        ("embedding length 0", with(|w| set(w, "llama.embedding_length", MetaValue::U32(0))), "must be positive"),
        (
            "KV heads that do not divide the heads",
            with(|w| set(w, "llama.attention.head_count_kv", MetaValue::U32(3))),
            "does not divide",
        ),
        (
            "width the heads do not divide",
            with(|w| {
                set(w, "llama.attention.head_count", MetaValue::U32(7));
                set(w, "llama.attention.head_count_kv", MetaValue::U32(7));
            }),
            "is not divisible by attention.head_count 7",
        ),
        ("a billion layers", with(|w| set(w, "llama.block_count", MetaValue::U32(1_000_000_000))), "implausibly large"),
        (
            "odd RoPE dimension count",
            with(|w| set(w, "llama.rope.dimension_count", MetaValue::U32(7))),
            "llama.rope.dimension_count",
        ),
        ("no norm epsilon", with(|w| remove(w, "llama.attention.layer_norm_rms_epsilon")), "layer_norm_rms_epsilon"),
        (
            "more layers than tensors",
            with(|w| {
                let n = match w.metadata.iter().find(|(k, _)| k == "llama.block_count").unwrap().1 {
                    MetaValue::U32(n) => n,
                    ref v => panic!("{v:?}"),
                };
                set(w, "llama.block_count", MetaValue::U32(n + 1));
            }),
            "missing from the file",
        ),
        ("missing weight", with(|w| w.tensors.retain(|t| t.0 != "blk.0.attn_q.weight")), "blk.0.attn_q.weight"),
        (
            "weight of the wrong shape",
            with(|w| {
                let t = w.tensors.iter_mut().find(|t| t.0 == "blk.0.ffn_norm.weight").unwrap();
                t.1[0] -= 1;
                t.3.truncate(t.3.len() - 4);
            }),
            "blk.0.ffn_norm.weight",
        ),
        (
            "vocabulary larger than the embedding",
            with(|w| {
                let Some((_, MetaValue::Array(_, toks))) =
                    w.metadata.iter_mut().find(|(k, _)| k == "tokenizer.ggml.tokens")
                else {
                    panic!()
                };
                toks.push(MetaValue::String("extra".into()));
                for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
                    if let Some((_, MetaValue::Array(t, v))) = w.metadata.iter_mut().find(|(k, _)| k == key) {
                        let last = v.last().cloned().unwrap_or(MetaValue::F32(0.0));
                        let _ = t;
                        v.push(last);
                    }
                }
            }),
            "token_embd.weight",
        ),
        ("no vocabulary", with(|w| remove(w, "tokenizer.ggml.tokens")), "tokenizer.ggml.tokens"),
        (
            "tokens that are not strings",
            with(|w| {
                let n = GgufFile::open(BASE).unwrap().get_array("tokenizer.ggml.tokens").unwrap().len();
                set(w, "tokenizer.ggml.tokens", MetaValue::Array(ValueType::U32, vec![MetaValue::U32(1); n]));
            }),
            "entries must be strings",
        ),
        (
            "scores shorter than the vocabulary",
            with(|w| set(w, "tokenizer.ggml.scores", MetaValue::Array(ValueType::F32, vec![MetaValue::F32(0.0); 3]))),
            "tokenizer.ggml.scores",
        ),
        (
            "unknown tokenizer model",
            with(|w| set(w, "tokenizer.ggml.model", MetaValue::String("wordpiece-9000".into()))),
            "'wordpiece-9000' is not supported",
        ),
        (
            "BOS id outside the vocabulary",
            with(|w| set(w, "tokenizer.ggml.bos_token_id", MetaValue::U32(4_000_000))),
            "tokenizer.ggml.bos_token_id",
        ),
    ];
    c.sort_by_key(|x| x.0);
    c
}

/// Every loading step `lanterna run` takes, in process.
fn load_everything(bytes: Vec<u8>) -> lanterna::Result<()> {
    let g = GgufFile::from_bytes(bytes)?;
    let cfg = Config::from_gguf(&g)?;
    Tokenizer::from_gguf(&g)?;
    CpuModel::load(&g, cfg, 16)?;
    Ok(())
}

#[test]
fn the_base_model_is_valid() {
    // Otherwise every case below would fail for the wrong reason.
    load_everything(base().to_bytes()).unwrap();
}

#[test]
fn catalogue_has_at_least_25_cases_with_distinct_names() {
    let c = catalogue();
    let mut names: Vec<_> = c.iter().map(|x| x.0).collect();
    names.dedup();
    assert!(names.len() >= 25 && names.len() == c.len(), "{} cases", c.len());
}

#[test]
fn every_hostile_file_is_refused_in_process_with_its_error() {
    let mut failures = Vec::new();
    for (name, bytes, want) in catalogue() {
        match load_everything(bytes) {
            Ok(()) => failures.push(format!("{name}: accepted")),
            Err(e) if !e.to_string().contains(want) => {
                failures.push(format!("{name}: error does not mention {want:?}: {e}"))
            }
            Err(e) => println!("{name}: {e}"),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_hostile_file_is_refused_by_the_binary_without_a_panic() {
    let dir = std::env::temp_dir().join(format!("lanterna-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (i, (name, bytes, want)) in catalogue().into_iter().enumerate() {
        let path = dir.join(format!("case{i}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_lanterna"))
            .args(["run", "-m", path.to_str().unwrap(), "--device", "cpu", "-n", "1", "-p", "hi"])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let out = String::from_utf8_lossy(&o.stdout);
        if o.status.success() {
            failures.push(format!("{name}: exit 0"));
        } else if err.contains("panicked at") || out.contains("panicked at") {
            failures.push(format!("{name}: panicked: {err}"));
        } else if !err.lines().any(|l| l.starts_with("error: ") && l.contains(want)) {
            failures.push(format!("{name}: stderr lacks `error: …{want}…`: {err}"));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
