//! `lanterna serve`: the OpenAI-compatible server (`lanterna::serve`).

use clap::Args;
use lanterna::chat;
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::serve::{serve, Options};
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

use super::device::DeviceArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2 (fetched if missing).
    #[arg(short, long)]
    model: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free one, printed at start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Sequences generated at once, each with its own KV cache region of the full --ctx
    /// (the cache is --parallel × --ctx positions); one step advances all of them.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Requests that may wait for a free sequence; beyond them the answer is 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    queue: usize,
    /// Context of EACH sequence in tokens, not shared among them (default: the model's, at
    /// most 4096). Prompt plus max_tokens over it is refused with a 400.
    #[arg(long)]
    ctx: Option<usize>,
    /// Require `Authorization: Bearer KEY` on every endpoint but /health (env LANTERNA_API_KEY).
    #[arg(long, env = "LANTERNA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest request body in bytes (413 above).
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// A chat template: a Jinja file, or a built-in name (chatml, gemma, llama2, llama3,
    /// mistral, phi3, deepseek); default: the file's tokenizer.chat_template, else the
    /// family's built-in one.
    #[arg(long, value_name = "FILE|NAME")]
    chat_template: Option<String>,
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(a: ServeArgs) -> Result<()> {
    if a.parallel == 0 {
        return Err(Error::Usage("--parallel must be at least 1".into()));
    }
    let path = fetch::resolve(a.model.as_deref())?;
    let g = GgufFile::open(&path)?;
    let cfg = Config::from_gguf(&g)?.with_seqs(a.parallel)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let n_ctx = match a.ctx.unwrap_or(cfg.n_ctx_train.min(4096)) {
        0 => return Err(Error::Usage("--ctx must be at least 1".into())),
        n => n,
    };
    let template = chat::choose(&g, a.chat_template.as_deref())?;
    eprintln!("lanterna serve: chat template {} ({})", template.name, template.from);
    let model_name = path.file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let opts = Options {
        host: a.host,
        port: a.port,
        queue: a.queue,
        n_ctx,
        api_key: a.api_key,
        body_limit: a.body_limit,
        model_name,
    };
    let device = a.device;
    serve(opts, tok, template, move || {
        device.load(&g, cfg, n_ctx, |m| eprintln!("lanterna serve: kernels: {}", m.kernel_config()))
    })
}
