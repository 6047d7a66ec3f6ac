//! Tokenizer edge cases against llama.cpp (tests/fixtures/tokenizer/edge_cases.json,
//! written by generate.py beside it with llama.cpp's own `llama_tokenize(add_special=true,
//! parse_special=false)`): the empty string, whitespace only, `\r\n`, control-token text
//! that must stay text, and a long input — on the two real models and on one model of
//! every zoo family.

mod common;

use common::*;
use lanterna::gguf::GgufFile;
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/edge_cases.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("tokenizer fixture")).expect("tokenizer JSON")
}

fn check(name: &str, g: &GgufFile, cases: &Value) {
    let tok = Tokenizer::from_gguf(g).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "{name}: {} cases", cases.len());
    for c in cases {
        let (case, text) = (c["name"].as_str().unwrap(), c["text"].as_str().unwrap());
        let want = ids(&c["ids"]);
        let got = tok.encode(text).unwrap_or_else(|e| panic!("{name} {case}: {e}"));
        if got != want {
            let at = common_prefix(&got, &want);
            panic!(
                "{name} {case}: {} ids, llama.cpp {}; first difference at {at}: ours {:?}, llama.cpp {:?}",
                got.len(),
                want.len(),
                &got[at..(at + 8).min(got.len())],
                &want[at..(at + 8).min(want.len())]
            );
        }
        // And back: the text itself (SentencePiece adds a leading space; BOS decodes to nothing).
        if !text.trim().is_empty() {
            let back = tok.decode(&got);
            assert_eq!(back.trim_start(), text.trim_start(), "{name} {case}: decoding");
        }
    }
}

#[test]
fn real_models_tokenize_edge_cases_as_llama_cpp() {
    let fx = fixture();
    for m in [&SMOLLM2, &GEMMA3] {
        let g = GgufFile::open(model_path(m)).unwrap();
        check(m.name, &g, &fx["models"][m.name]);
    }
}

#[test]
fn zoo_families_tokenize_edge_cases_as_llama_cpp() {
    let fx = fixture();
    let mut checked = 0;
    for (key, cases) in fx["models"].as_object().unwrap() {
        let Some(family) = key.strip_prefix("zoo/") else { continue };
        let Some(path) = zoo_model(family, cases["file"].as_str().unwrap()) else { continue };
        check(key, &GgufFile::open(path).unwrap(), cases);
        checked += 1;
    }
    println!("{checked} zoo families");
}
