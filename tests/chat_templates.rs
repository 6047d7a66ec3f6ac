//! Chat templates rendered by Lanterna (minijinja, configured as transformers configures
//! jinja2) against transformers' own renderer: tests/fixtures/templates/templates.json,
//! written by generate.py there. Byte for byte; where transformers raises, Lanterna fails
//! too, with the template's own message where the template raised it.
//!
//! The real templates of other families are third-party text: the fixture names their file
//! in the model cache (`scripts/fetch-models.sh templates`) and its sha256.

use lanterna::chat::{render, ChatInputs};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A template's source: inline in the fixture, or the cached file the fixture names,
/// checked against the hash it was rendered from.
fn source(entry: &Value) -> String {
    if let Some(s) = entry.as_str() {
        return s.to_string();
    }
    let path = lanterna::fetch::cache_dir().join(entry["file"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "\n\n*** MISSING: {} ({e}) ***\nRun scripts/fetch-models.sh templates (scripts/test.sh does it).\n",
            path.display()
        )
    });
    let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hash, entry["sha256"].as_str().unwrap(), "{} is not the file the fixture was made from", path.display());
    String::from_utf8(bytes).expect("template is UTF-8")
}

/// transformers' strftime_now is today's date: the fixture's, replaced by ours (the real
/// templates that call it all ask for "%d %b %Y").
fn expected_today(case: &Value, want: &str) -> String {
    match case["strftime_now"].as_str() {
        Some(then) => want.replace(then, &chrono::Local::now().format("%d %b %Y").to_string()),
        None => want.to_string(),
    }
}

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/templates/templates.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("template fixture")).expect("template fixture JSON")
}

#[test]
fn every_template_renders_as_transformers_does() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    let (mut same, mut raised) = (0, 0);
    for c in cases {
        let (tname, cname) = (c["template"].as_str().unwrap(), c["conversation"].as_str().unwrap());
        let source = source(&fx["templates"][tname]);
        let messages = &fx["conversations"][cname];
        let tools = cname.starts_with("tool").then_some(&fx["tools"]);
        let inputs = ChatInputs {
            messages,
            tools,
            add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
            bos_token: c["bos_token"].as_str().unwrap(),
            eos_token: c["eos_token"].as_str().unwrap(),
        };
        let got = render(tname, &source, &inputs);
        match (&c["expected"], &c["error"]) {
            (Value::String(want), _) => {
                let got = got.unwrap_or_else(|e| panic!("{tname} × {cname}: {e}"));
                assert_eq!(got, expected_today(c, want), "{tname} × {cname}");
                same += 1;
            }
            (_, Value::String(err)) => {
                let e = got.expect_err(&format!("{tname} × {cname}: transformers raised {err}")).to_string();
                // A template's raise_exception message comes through as it is.
                if let Some(msg) = err.strip_prefix("TemplateError: ") {
                    assert!(e.ends_with(msg), "{tname} × {cname}: {e}");
                }
                raised += 1;
            }
            _ => panic!("case without expected or error"),
        }
    }
    println!("{same} renders byte-identical to transformers, {raised} errors where it raised ({})", fx["generator"]);
}
