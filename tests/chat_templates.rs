//! Chat templates rendered by Lanterna (minijinja, configured as transformers configures
//! jinja2) against transformers' own renderer: tests/fixtures/templates/templates.json,
//! written by generate.py there. Byte for byte; where transformers raises, Lanterna fails
//! too, with the template's own message where the template raised it.

use lanterna::chat::{render, ChatInputs};
use serde_json::Value;

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/templates/templates.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("template fixture")).expect("template fixture JSON")
}

#[test]
fn every_template_renders_as_transformers_does() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let (mut same, mut raised) = (0, 0);
    for c in cases {
        let (tname, cname) = (c["template"].as_str().unwrap(), c["conversation"].as_str().unwrap());
        let source = fx["templates"][tname].as_str().unwrap();
        let messages = &fx["conversations"][cname];
        let tools = (cname == "tools_and_calls").then_some(&fx["tools"]);
        let inputs = ChatInputs {
            messages,
            tools,
            add_generation_prompt: c["add_generation_prompt"].as_bool().unwrap(),
            bos_token: c["bos_token"].as_str().unwrap(),
            eos_token: c["eos_token"].as_str().unwrap(),
        };
        let got = render(tname, source, &inputs);
        match (&c["expected"], &c["error"]) {
            (Value::String(want), _) => {
                let got = got.unwrap_or_else(|e| panic!("{tname} × {cname}: {e}"));
                assert_eq!(&got, want, "{tname} × {cname}");
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
