//! `lanterna serve` as its users meet it: the real binary on a free port, spoken to over
//! HTTP (and, once, through the official `openai` Python client), on the GPU adapter.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Loading SmolLM2 and compiling its pipelines on a cold Mesa cache takes a minute or two on lavapipe.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// A running server; killed when dropped.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let model = model_path(&SMOLLM2);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanterna"));
        cmd.args(["serve", "-m", model.to_str().unwrap(), "--port", "0", "--ctx", "512"]).args(args);
        cmd.envs(env.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start lanterna serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let base = rx.recv_timeout(READY_TIMEOUT).unwrap_or_else(|_| panic!("no address: {:?}", log.lock().unwrap()));
        Server { child, base, log }
    }

    /// Wait until /health says ok.
    fn ready(self) -> Server {
        let t = Instant::now();
        while self.get("/health").0 != 200 {
            assert!(t.elapsed() < READY_TIMEOUT, "not ready: {:?}", self.log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(100));
        }
        self
    }

    fn get(&self, path: &str) -> (u16, String) {
        answer(ureq::get(&format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, None)
    }

    fn post_with(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut req = ureq::post(&format!("{}{path}", self.base)).set("Content-Type", "application/json");
        if let Some(k) = key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let (status, text) = answer(req.send_string(&body.to_string()));
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} not JSON ({e}): {text}")))
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        let line = text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn host_port(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn chat(content: &str, max_tokens: usize) -> Value {
    json!({"model": "x", "messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": max_tokens})
}

fn text_of(v: &Value) -> String {
    v["choices"][0]["message"]["content"].as_str().unwrap_or_else(|| panic!("no answer: {v}")).to_string()
}

/// `lanterna run … --json` on the GPU, for what the server must equal.
fn run_json(args: &[&str]) -> Value {
    let model = model_path(&SMOLLM2);
    let out = Command::new(env!("CARGO_BIN_EXE_lanterna"))
        .args(["run", "-m", model.to_str().unwrap(), "--device", "gpu", "--temp", "0", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `run`'s answer text: its tokens without the end-of-turn token that ended it.
fn run_text(r: &Value, tok: &lanterna::tokenizer::Tokenizer) -> String {
    let mut ids = ids(&r["tokens"]);
    if r["stop"] == "eos" {
        ids.pop();
    }
    tok.decode(&ids)
}

fn tokenizer() -> lanterna::tokenizer::Tokenizer {
    lanterna::tokenizer::Tokenizer::from_gguf(&lanterna::gguf::GgufFile::open(model_path(&SMOLLM2)).unwrap()).unwrap()
}

/// The Python interpreter of the test virtual environment scripts/test.sh makes.
fn python() -> Option<String> {
    let p = std::env::var("LANTERNA_TEST_PYTHON").ok().filter(|p| std::path::Path::new(p).exists());
    if p.is_none() {
        missing("the test virtual environment with the openai client (LANTERNA_TEST_PYTHON; scripts/test.sh makes it)");
    }
    p
}

#[test]
fn the_openai_client_gets_what_run_gives() {
    let Some(py) = python() else { return };
    let s = Server::start(&["--device", "gpu", "--parallel", "2", "--api-key", "sesame"], &[]).ready();
    let messages = json!([
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}
    ]);
    let dir = std::env::temp_dir().join(format!("lanterna-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("messages.json");
    std::fs::write(&file, messages.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/serve/openai_client.py");
    let out = Command::new(&py).args([script, &s.base, file.to_str().unwrap(), "40", "sesame"]).output().unwrap();
    assert!(out.status.success(), "openai client: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (plain, streamed) = (&got["non_stream"], &got["stream"]);

    let want = run_json(&["--messages", file.to_str().unwrap(), "-n", "40"]);
    let want_text = run_text(&want, &tokenizer());
    assert_eq!(plain["text"].as_str().unwrap(), want_text, "non-stream answer vs run --messages");
    assert_eq!(streamed["text"], plain["text"], "stream and non-stream answers");
    let finish = if want["stop"] == "eos" { "stop" } else { "length" };
    assert_eq!(plain["finish"], finish);
    assert_eq!(streamed["finish"], json!([finish]));
    assert_eq!(plain["role"], "assistant");
    assert_eq!(streamed["first_role"], "assistant");
    let (n_prompt, n_gen) = (want["prompt_tokens"].as_array().unwrap().len(), want["tokens"].as_array().unwrap().len());
    for usage in [&plain["usage"], &streamed["usage"]] {
        assert_eq!(usage["prompt_tokens"], n_prompt, "{usage}");
        assert_eq!(usage["completion_tokens"], n_gen, "{usage}");
        assert_eq!(usage["total_tokens"], n_prompt + n_gen, "{usage}");
    }
    assert_eq!(streamed["last_has_no_choices"], true, "usage comes last, with no choices");
    assert_eq!(streamed["ids"].as_array().unwrap().len(), 1, "one id for every chunk");
    // The second time the same conversation comes, its slot still holds the prompt.
    assert!(streamed["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap() >= n_prompt as u64 - 1);

    // The conversation's next turn reuses the slot's cache for everything before it.
    let mut next = messages.as_array().unwrap().clone();
    next.push(json!({"role": "assistant", "content": plain["text"]}));
    next.push(json!({"role": "user", "content": "And one more?"}));
    let body = json!({"messages": next, "temperature": 0, "max_tokens": 4});
    let (status, v) = s.post_with("/v1/chat/completions", &body, Some("sesame"));
    assert_eq!(status, 200, "{v}");
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= n_prompt as u64, "the next turn reused {cached} tokens, not the first turn's {n_prompt}");

    // The raw stream: [DONE] is the last event.
    let mut body = chat("Say hello.", 8);
    body["stream"] = json!(true);
    let raw = sse(&s, &body, Some("sesame"));
    assert_eq!(raw.last().map(String::as_str), Some("[DONE]"), "{raw:?}");

    // /v1/completions against run -p.
    let (status, c) = s.post_with(
        "/v1/completions",
        &json!({"prompt": "The capital of France is", "max_tokens": 12, "temperature": 0}),
        Some("sesame"),
    );
    assert_eq!(status, 200, "{c}");
    let want = run_json(&["-p", "The capital of France is", "-n", "12"]);
    assert_eq!(c["choices"][0]["text"].as_str().unwrap(), run_text(&want, &tokenizer()));
    println!("openai client: {:?} ({} + {} tokens), stream = non-stream = run", plain["text"], n_prompt, n_gen);
}

/// The `data:` payloads of a streamed request, read to the end.
fn sse(s: &Server, body: &Value, key: Option<&str>) -> Vec<String> {
    let mut req = ureq::post(&format!("{}/v1/chat/completions", s.base));
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    let resp = req.send_string(&body.to_string()).unwrap();
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let text = resp.into_string().unwrap();
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_string).collect()
}

const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "What colour is the sky?",
    "Say something kind.",
    "Who wrote Hamlet?",
    "What is 12 times 12?",
    "Name a fruit that is yellow.",
];

/// Eight requests at once through the prompt program (`LANTERNA_BATCH=together`, where
/// sequences really share steps) each get the answer they get alone.
#[test]
fn eight_requests_at_once_get_what_each_gets_alone() {
    let s = Server::start(&["--device", "gpu", "--parallel", "8"], &[("LANTERNA_BATCH", "together")]).ready();
    let alone: Vec<String> = PROMPTS.iter().map(|p| text_of(&s.post("/v1/chat/completions", &chat(p, 16)).1)).collect();
    let s = Arc::new(s);
    let t = Instant::now();
    let handles: Vec<_> = PROMPTS
        .iter()
        .map(|p| {
            let (s, body) = (s.clone(), chat(p, 16));
            std::thread::spawn(move || s.post("/v1/chat/completions", &body))
        })
        .collect();
    let together: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let secs = t.elapsed().as_secs_f64();
    let mut generated = 0;
    for ((status, v), want) in together.iter().zip(&alone) {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(&text_of(v), want, "cross-talk: an answer changed when others ran beside it");
        generated += v["usage"]["completion_tokens"].as_u64().unwrap();
        // Every prompt begins with the template's system prompt: the slot the requests
        // alone used holds it, and the requests in the other slots copy it from there.
        let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
        assert!(cached > 0, "a request at once computed its whole prompt again: {v}");
    }
    assert_eq!(s.metric("lanterna_requests_active"), 0.0);
    println!("8 requests at once: the answers alone; {generated} tokens in {secs:.1} s");
}

#[test]
fn a_burst_beyond_the_queue_gets_503_and_the_server_goes_on() {
    let s = Arc::new(Server::start(&["--device", "gpu", "--parallel", "8", "--queue", "16"], &[]).ready());
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                let r = ureq::post(&format!("{}/v1/chat/completions", s.base))
                    .send_string(&chat(&format!("Count to {i}."), 4).to_string());
                match r {
                    Ok(resp) => (resp.status(), None),
                    Err(ureq::Error::Status(code, resp)) => (code, resp.header("Retry-After").map(str::to_string)),
                    Err(e) => panic!("request failed: {e}"),
                }
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy = results.iter().filter(|r| r.0 == 503 && r.1.is_some()).count();
    assert_eq!(ok + busy, 64, "every request answered 200, or 503 with Retry-After: {results:?}");
    assert!(ok >= 8 + 16 - 8, "at least the queue and some slots were served: {ok}");
    assert!(busy > 0, "64 requests against 8 slots and a queue of 16 must overflow it");
    let (status, v) = s.post("/v1/chat/completions", &chat("Hello!", 4));
    assert_eq!(status, 200, "{v}");
    assert_eq!(s.metric("lanterna_queue_depth"), 0.0);
    println!("burst of 64: {ok} answered, {busy} told to retry; served normally afterwards");
}

/// A cancelled sequence frees its slot within a step; this bound only keeps a loaded CI
/// machine from failing the test (a lavapipe step is well under a second).
const CANCEL_BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_client_that_goes_away_is_cancelled() {
    let s = Server::start(&["--device", "gpu", "--parallel", "2"], &[]).ready();
    let mut body = chat("Tell me a very long story about a dragon.", 400);
    body["stream"] = json!(true);
    let text = body.to_string();
    let mut conn = TcpStream::connect(s.host_port()).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        text.len()
    );
    conn.write_all(format!("{head}{text}").as_bytes()).unwrap();
    // Wait for some generated text, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"content\":\"") || seen.len() < 1500 {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(s.metric("lanterna_requests_active"), 1.0);
    drop(conn);
    let t = Instant::now();
    while s.metric("lanterna_requests_active") != 0.0 {
        assert!(t.elapsed() < CANCEL_BOUND, "still generating {CANCEL_BOUND:?} after the client left");
        std::thread::sleep(Duration::from_millis(20));
    }
    let freed = t.elapsed();
    let generated = s.metric("lanterna_generated_tokens_total");
    assert!(generated < 400.0, "the sequence ran to its end ({generated} tokens)");
    assert!(s.log.lock().unwrap().iter().any(|l| l.contains("finish=cancelled")));
    let (status, _) = s.post("/v1/chat/completions", &chat("Hi.", 2));
    assert_eq!(status, 200);
    println!("client gone: slot free after {:.0} ms, {generated} tokens generated", freed.as_secs_f64() * 1e3);
}

/// A raw request, for bodies a client library would refuse to send: its status and body.
fn raw(s: &Server, head_extra: &str, body: &[u8]) -> (u16, String) {
    let mut conn = TcpStream::connect(s.host_port()).unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n{head_extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    // The server may answer before it has read a body it refuses: stop writing then.
    let mut writer = conn.try_clone().unwrap();
    let body = body.to_vec();
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    let _ = w.join();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[test]
fn bad_requests_get_their_4xx_and_the_server_stays_up() {
    let s = Server::start(&["--device", "cpu", "--api-key", "sesame"], &[]);
    // The CPU reference dequantizes every weight first: the port is open before that ends.
    assert_eq!(s.get("/health").0, 503, "healthy before the model was loaded");
    let s = s.ready();
    let key = "Authorization: Bearer sesame\r\n";
    let user = |content: Value| json!([{"role": "user", "content": content}]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"messages\": [".to_vec(), 400, "invalid_request_error"),
        ("no messages", b"{}".to_vec(), 400, "invalid_request_error"),
        ("empty messages", json!({"messages": []}).to_string().into_bytes(), 400, "invalid_request_error"),
        (
            "unknown role",
            json!({"messages": [{"role": "wizard", "content": "x"}]}).to_string().into(),
            400,
            "invalid_request_error",
        ),
        (
            "content of the wrong type",
            json!({"messages": user(json!(42))}).to_string().into(),
            400,
            "invalid_request_error",
        ),
        (
            "negative max_tokens",
            json!({"messages": user(json!("x")), "max_tokens": -5}).to_string().into(),
            400,
            "invalid_request_error",
        ),
        (
            "a string temperature",
            json!({"messages": user(json!("x")), "temperature": "warm"}).to_string().into(),
            400,
            "invalid_request_error",
        ),
        ("n=5", json!({"messages": user(json!("x")), "n": 5}).to_string().into(), 400, "invalid_request_error"),
        (
            "a prompt over the context",
            json!({"messages": user(json!("word ".repeat(600)))}).to_string().into(),
            400,
            "exceed_context_size_error",
        ),
        ("a 10 MB body", vec![b' '; 10 << 20], 413, "invalid_request_error"),
    ];
    for (what, body, want, kind) in &cases {
        let (status, text) = raw(&s, key, body);
        assert_eq!(status, *want, "{what}: {text}");
        let e: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(e["error"]["type"], *kind, "{what}: {e}");
        for f in ["message", "type", "param", "code"] {
            assert!(e["error"].get(f).is_some(), "{what}: no {f} in {e}");
        }
        if *kind == "exceed_context_size_error" {
            assert_eq!(e["error"]["n_ctx"], 512);
            assert!(e["error"]["n_prompt_tokens"].as_u64().unwrap() > 512);
        }
    }
    let (status, text) = raw(&s, "", json!({"messages": user(json!("x"))}).to_string().as_bytes());
    assert_eq!(status, 401, "no API key: {text}");
    assert_eq!(s.get("/health").0, 200, "health needs no key");
    let (status, v) = s.post_with("/v1/chat/completions", &chat("Hi.", 2), Some("sesame"));
    assert_eq!(status, 200, "{v}");
    println!("{} bad requests answered with their 4xx; the server answers after", cases.len() + 1);
}

/// How long a finished request's log line may take to reach the test's stderr reader: the
/// server writes it after the response, and a loaded 2-core machine has taken over the
/// microseconds the assert once allowed; seconds leave no doubt that it never came.
const LOG_LINE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[test]
fn tokenize_models_metrics_and_a_clean_stop() {
    let s = Server::start(&["--device", "gpu", "--parallel", "1"], &[]).ready();
    let tok = tokenizer();
    let (status, v) = s.post("/tokenize", &json!({"content": "<|im_start|>user\nHello"}));
    assert_eq!(status, 200);
    assert_eq!(ids(&v["tokens"]), tok.encode_special("<|im_start|>user\nHello").unwrap());
    let (_, back) = s.post("/detokenize", &v);
    assert_eq!(back["content"], "<|im_start|>user\nHello");
    let (status, m) = s.get("/v1/models");
    let m: Value = serde_json::from_str(&m).unwrap();
    assert_eq!((status, m["data"][0]["id"].as_str().unwrap()), (200, "SmolLM2-135M-Instruct.Q4_1"));
    s.post("/v1/chat/completions", &chat("Hi.", 3));
    for name in ["lanterna_requests_total", "lanterna_prompt_tokens_total", "lanterna_generated_tokens_total"] {
        assert!(s.metric(name) > 0.0, "{name}");
    }
    assert!(s.metric("lanterna_decode_tokens_per_second") >= 0.0);
    // The request's log line is written as the request ends, which can be after its
    // response reached us: wait for it (a busy machine took longer than the assert did).
    let logged = || s.log.lock().unwrap().iter().any(|l| l.contains("generated_tokens=") && l.contains("time_ms="));
    let deadline = std::time::Instant::now() + LOG_LINE_WAIT;
    while !logged() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(logged(), "no log line for the request within {LOG_LINE_WAIT:?}");
    // SIGTERM: stop accepting, finish, exit 0.
    let mut s = s;
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let t = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < CANCEL_BOUND, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
