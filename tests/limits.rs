//! Runtime limits on the adapter the tests run on (lavapipe in CI): a context that does
//! not fit is refused before upload with the figures and a context that does; a prompt
//! longer than the context is refused on the GPU too; wgpu faults (validation outside a
//! scope, device loss) become errors instead of wgpu's default panic; Ctrl-C stops a run
//! and keeps what it printed.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lanterna::generate::Executor;
use lanterna::gguf::GgufFile;
use lanterna::gpu::{AdapterChoice, GpuModel};
use lanterna::model::Config;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/llama-spm/llama-spm-Q4_K_M.gguf");

fn lanterna(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lanterna")).args(args).env("RUST_BACKTRACE", "1").output().expect("run lanterna")
}

#[test]
fn a_context_too_large_for_the_adapter_is_refused_before_upload_and_the_hint_fits() {
    if gpu().is_none() {
        return;
    }
    // A billion positions: a K cache no adapter can hold in one buffer.
    let o = lanterna(&["run", "-m", TINY, "--device", "gpu", "--ctx", "1000000000", "-n", "1", "-p", "hi"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    let line =
        err.lines().find(|l| l.starts_with("error: does not fit the adapter: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("K cache") && line.contains("needs") && line.contains("allows") && line.contains("max_"),
        "{line}"
    );
    assert!(!err.contains("uploaded"), "nothing may be uploaded first: {err}");
    // The suggested context must itself load and run.
    let suggested = line.rsplit("--ctx ").next().unwrap().trim();
    let n: usize = suggested.parse().unwrap_or_else(|_| panic!("no --ctx figure in {line}"));
    assert!((256..1_000_000_000).contains(&n), "{line}");
    let o = lanterna(&["run", "-m", TINY, "--device", "gpu", "--ctx", suggested, "-n", "1", "--temp", "0", "-p", "hi"]);
    assert!(o.status.success(), "--ctx {suggested}: {}", String::from_utf8_lossy(&o.stderr));
    println!("refused: {line}\nand --ctx {suggested} ran");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_on_the_gpu() {
    if gpu().is_none() {
        return;
    }
    let o = lanterna(&[
        "run",
        "-m",
        TINY,
        "--device",
        "gpu",
        "--ctx",
        "8",
        "-n",
        "4",
        "-p",
        "one two three four five six seven eight",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: context: the prompt (") && l.contains("the context holds 8")),
        "{err}"
    );
}

fn tiny_on_gpu() -> GpuModel {
    let g = GgufFile::open(TINY).unwrap();
    let cfg = Config::from_gguf(&g).unwrap();
    GpuModel::load(&g, cfg, 32, &AdapterChoice::from_args(None, None).unwrap()).unwrap()
}

#[test]
fn a_validation_error_outside_any_scope_becomes_an_error_not_a_panic() {
    if gpu().is_none() {
        return;
    }
    let mut m = tiny_on_gpu();
    m.forward(1, 0).unwrap();
    // MAP_READ may only go with COPY_DST: wgpu reports this to the uncaptured-error
    // handler, whose default panics.
    let _bad = m.ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let e = m.forward(2, 1).expect_err("a faulted device must not keep running").to_string();
    assert!(e.contains("rejected by validation"), "{e}");
    println!("validation fault: {e}");
}

#[test]
fn a_lost_device_becomes_an_error_not_a_panic() {
    if gpu().is_none() {
        return;
    }
    let mut m = tiny_on_gpu();
    m.forward(1, 0).unwrap();
    m.ctx.device.destroy();
    let e = m.forward(2, 1).expect_err("a lost device cannot compute").to_string();
    assert!(e.contains("lost"), "{e}");
    println!("device loss: {e}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_generation_and_keeps_what_was_printed() {
    // The CPU path of the real model: slow enough to interrupt, no adapter needed.
    let path = model_path(&SMOLLM2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanterna"))
        .args([
            "run",
            "-m",
            path.to_str().unwrap(),
            "--device",
            "cpu",
            "--temp",
            "0",
            "--ignore-eos",
            "-n",
            "2000",
            "--ctx",
            "2048",
            "-p",
            "Once upon a time",
        ])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Wait until some text has been streamed, then press Ctrl-C.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut buf = [0u8; 256];
    while seen.len() < 20 && Instant::now() < deadline {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the run ended before it was interrupted");
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("stop: interrupted") && err.contains("lanterna: interrupted"), "{err}");
    seen.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&seen);
    assert!(text.len() >= 20 && text.ends_with('\n'), "the printed text is kept and ends the line: {text:?}");
    // Far fewer than the 2000 tokens asked for: it stopped.
    let decoded: usize = err
        .split("decode ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("decode count in the summary");
    assert!(decoded < 2000, "{err}");
    println!("interrupted after {decoded} tokens: {text:?}");
}
