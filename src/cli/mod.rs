//! The `lanterna` command line: one module per subcommand.

mod bench;
mod chat;
mod compare;
mod device;
mod devices;
mod info;
mod perplexity;
mod plan;
mod profile;
mod quantize;
mod run;
mod sampling;
mod serve;
mod template;
mod tokenize;
mod tune;

use clap::{Parser, Subcommand};
use lanterna::Result;

#[derive(Parser)]
#[command(
    name = "lanterna",
    version,
    about = "Run GGUF language models with WGSL compute shaders (and a plain f32 CPU reference)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate text from a prompt, streamed to stdout.
    Run(run::RunArgs),
    /// Print the token ids (and pieces) of a text, BOS as the model says.
    Tokenize(tokenize::TokenizeArgs),
    /// Architecture, hyperparameters, tensors by type, parameter count, file size.
    Info(info::InfoArgs),
    /// Every GPU adapter wgpu can use: name, backend, type, driver, limits, features.
    Devices(devices::DevicesArgs),
    /// Prompt-processing and generation speed, llama-bench style (md, json or csv).
    Bench(bench::BenchArgs),
    /// Run GPU and CPU on the same tokens and compare every layer's intermediates.
    Compare(compare::CompareArgs),
    /// Time every GPU pass of prefill and decode; per-kernel table and a Chrome trace.
    Profile(profile::ProfileArgs),
    /// Perplexity of a text, as llama.cpp's llama-perplexity computes it.
    Perplexity(perplexity::PerplexityArgs),
    /// Write a copy of a GGUF with its weight matrices quantized (llama-quantize style).
    Quantize(quantize::QuantizeArgs),
    /// Memory a hypothetical model needs: weights at each precision, KV cache.
    Plan(plan::PlanArgs),
    /// Time the GPU matvec shapes of a model on this adapter and cache the fastest.
    Tune(tune::TuneArgs),
    /// Print a conversation as the model's chat template renders it, byte for byte.
    Template(template::TemplateArgs),
    /// Talk with a model: a line-edited session on a terminal, one turn per line otherwise.
    Chat(chat::ChatArgs),
    /// An OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, …) that
    /// batches the running requests on one device.
    Serve(serve::ServeArgs),
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(a) => run::run(a),
        Cmd::Tokenize(a) => tokenize::run(a),
        Cmd::Info(a) => info::run(a),
        Cmd::Devices(a) => devices::run(a),
        Cmd::Profile(a) => profile::run(a),
        Cmd::Compare(a) => compare::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Perplexity(a) => perplexity::run(a),
        Cmd::Quantize(a) => quantize::run(a),
        Cmd::Plan(a) => plan::run(a),
        Cmd::Tune(a) => tune::run(a),
        Cmd::Template(a) => template::run(a),
        Cmd::Chat(a) => chat::run(a),
        Cmd::Serve(a) => serve::run(a),
    }
}
