//! Chat on the real models through the binary: `template` prints what transformers
//! renders (tests/fixtures/templates), bad conversations are refused with a message,
//! and `run --messages` tokenizes the rendered prompt with its special tokens.

mod common;

use std::process::{Command, Output};

use common::*;
use lanterna::gguf::GgufFile;
use lanterna::tokenizer::Tokenizer;
use serde_json::Value;

fn lanterna(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanterna")).args(args).output().expect("run lanterna")
}

fn fixture() -> Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/templates/templates.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A conversation of the fixture written to a file of its own.
fn messages_file(name: &str, messages: &Value) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("lanterna-chat-{}-{name}.json", std::process::id()));
    std::fs::write(&p, messages.to_string()).unwrap();
    p
}

/// `run --messages` greedy, as JSON.
fn run_messages(model: &std::path::Path, messages: &std::path::Path, n: &str, device: &str) -> Value {
    let (model, messages) = (model.to_str().unwrap(), messages.to_str().unwrap());
    let args = ["run", "-m", model, "--messages", messages, "--temp", "0", "-n", n, "--json", "--device", device];
    let o = lanterna(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn expected(fx: &Value, template: &str, conversation: &str) -> String {
    let c =
        fx["cases"].as_array().unwrap().iter().find(|c| {
            c["template"] == template && c["conversation"] == conversation && c["add_generation_prompt"] == true
        });
    c.unwrap()["expected"].as_str().unwrap().to_string()
}

/// SmolLM2 renders with the template in its file, Gemma-3 (whose file has none) with the
/// built-in gemma one — each byte for byte what transformers renders, and says which.
#[test]
fn template_prints_the_rendered_prompt_byte_for_byte() {
    let fx = fixture();
    let path = messages_file("turns", &fx["conversations"]["system_and_turns"]);
    for (m, template, from) in
        [(&SMOLLM2, "smollm2 (from its GGUF)", "tokenizer.chat_template"), (&GEMMA3, "built-in gemma", "built in")]
    {
        let model = model_path(m);
        let o = lanterna(&["template", "-m", model.to_str().unwrap(), "--messages", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains(from), "{}: {err}", m.name);
        assert_eq!(String::from_utf8(o.stdout).unwrap(), expected(&fx, template, "system_and_turns"), "{}", m.name);
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_conversations_are_refused_with_a_message() {
    let model = model_path(&SMOLLM2);
    let cases = [
        ("not json", "[{\"role\":", "is not JSON"),
        ("empty", "[]", "holds no messages"),
        ("role", r#"[{"role": "wizard", "content": "x"}]"#, "unknown role 'wizard'"),
        ("content", r#"[{"role": "user", "content": 5}]"#, "must be a string or a list of parts"),
        ("object", r#"{"role": "user"}"#, "must be a JSON array"),
    ];
    for (name, text, want) in cases {
        let p = std::env::temp_dir().join(format!("lanterna-bad-{}-{name}.json", std::process::id()));
        std::fs::write(&p, text).unwrap();
        let o = lanterna(&["template", "-m", model.to_str().unwrap(), "--messages", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        let _ = std::fs::remove_file(p);
    }
    // A template that raises: the run fails with the template's own words and its line.
    let p = messages_file("alternate", &fixture()["conversations"]["not_alternating"]);
    let o = lanterna(&[
        "template",
        "-m",
        model.to_str().unwrap(),
        "--chat-template",
        "gemma",
        "--messages",
        p.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("line") && err.contains("Conversation roles must alternate"), "{err}");
    let _ = std::fs::remove_file(p);
}

/// The rendered prompt's special tokens are single tokens (`<|im_start|>` is one id, not
/// nine), the template's own BOS is not doubled, and a greedy answer ends at the turn's end.
#[test]
fn run_messages_tokenizes_special_tokens_and_stops_at_the_end_of_turn() {
    let fx = fixture();
    let g = GgufFile::open(model_path(&SMOLLM2)).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let rendered = expected(&fx, "smollm2 (from its GGUF)", "system_and_turns");
    let ids = tok.encode_special(&rendered).unwrap();
    let im_start = (0..tok.n_vocab() as u32).find(|&i| tok.piece(i) == "<|im_start|>").unwrap();
    assert_eq!(ids[0], im_start, "{:?}", &ids[..4]);
    assert_eq!(ids.iter().filter(|&&i| i == im_start).count(), 5, "one per turn and one to answer");
    assert_eq!(tok.decode(&ids), rendered.replace("<|im_start|>", "").replace("<|im_end|>", ""));

    let gemma = GgufFile::open(model_path(&GEMMA3)).unwrap();
    let gtok = Tokenizer::from_gguf(&gemma).unwrap();
    let gids = gtok.encode_special(&expected(&fx, "built-in gemma", "system_and_turns")).unwrap();
    assert_eq!(gids.iter().filter(|&&i| Some(i) == gtok.bos).count(), 1, "the template wrote BOS; none added");
    assert_eq!(Some(gids[0]), gtok.bos);

    let path = messages_file("run", &fx["conversations"]["system_and_turns"]);
    let model = model_path(&SMOLLM2);
    let v = run_messages(&model, &path, "48", "cpu");
    let prompt: Vec<u32> = v["prompt_tokens"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    assert_eq!(prompt, ids, "run --messages tokenizes what template prints");
    assert_eq!(v["stop"], "eos", "{v}");
    let _ = std::fs::remove_file(path);
}

/// `lanterna chat` fed `lines` on stdin with `args`: (turn objects, stderr).
fn chat(args: &[&str], lines: &str) -> (Vec<Value>, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanterna"))
        .arg("chat")
        .args(args)
        .args(["--temp", "0", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    (String::from_utf8(o.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect(), err)
}

/// Two greedy turns of `chat` on each executor: the second reuses the cache for at least
/// the first turn's prompt, and answers what `run --messages` answers for the same history.
#[test]
fn a_second_chat_turn_reuses_the_cache_and_answers_as_run_does() {
    if gpu().is_none() {
        return;
    }
    for device in ["gpu", "cpu"] {
        second_turn_as_run(device);
    }
}

fn second_turn_as_run(device: &str) {
    let model = model_path(&SMOLLM2);
    let system = "You are a concise assistant.";
    let (q1, q2) = ("What is the capital of France?", "And of Italy?");
    let args = ["-m", model.to_str().unwrap(), "--system", system, "-n", "40", "--device", device];
    let (turns, _) = chat(&args, &format!("{q1}\n{q2}\n"));
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[1]["turn"], 2);
    let first_prompt = turns[0]["prompt_tokens"].as_u64().unwrap();
    let reused = turns[1]["reused_tokens"].as_u64().unwrap();
    assert!(reused >= first_prompt, "turn 2 reused {reused} tokens; turn 1's prompt was {first_prompt}");

    let history = serde_json::json!([
        {"role": "system", "content": system},
        {"role": "user", "content": q1},
        {"role": "assistant", "content": turns[0]["text"]},
        {"role": "user", "content": q2},
    ]);
    let path = messages_file("history", &history);
    let run = run_messages(&model, &path, "40", device);
    assert_eq!(turns[1]["tokens"], run["tokens"], "{device}: chat turn 2 against run --messages");
    assert_eq!(turns[1]["prompt_tokens"].as_u64().unwrap() as usize, run["prompt_tokens"].as_array().unwrap().len());
    println!("{device}: turn 2 reused {reused} of {} prompt tokens: {}", turns[1]["prompt_tokens"], turns[1]["text"]);
    let _ = std::fs::remove_file(path);
}

/// A conversation longer than the context: the oldest turns go (with a note), the system
/// message and the new question stay, and every turn is answered.
#[test]
fn a_conversation_past_the_context_drops_its_oldest_turns() {
    let model = model_path(&SMOLLM2);
    let args = [
        "-m",
        model.to_str().unwrap(),
        "--system",
        "Answer in one word.",
        "-n",
        "12",
        "--ctx",
        "80",
        "--device",
        "cpu",
    ];
    let questions = "Name a colour.\nName a fruit.\nName an animal.\nName a country.\n";
    let (turns, err) = chat(&args, questions);
    assert_eq!(turns.len(), 4, "{err}");
    assert!(err.contains("outgrew the context"), "{err}");
    for t in &turns {
        assert!(t["prompt_tokens"].as_u64().unwrap() + 12 <= 80, "{t}");
    }
}
