//! `lanterna chat`: a conversation with a model. On a terminal, line editing and history
//! (rustyline), answers streamed, `/reset`, `/system TEXT`, `/save FILE`, `/quit`, and
//! Ctrl-C stopping the current answer; otherwise each input line is one user turn, and
//! `--json` prints one object per turn.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use lanterna::chat::{self, session::Session};
use lanterna::generate::{Executor, StopReason};
use lanterna::gguf::GgufFile;
use lanterna::model::Config;
use lanterna::sampler::Sampler;
use lanterna::tokenizer::{StreamDecoder, Tokenizer};
use lanterna::{fetch, interrupt, Error, Result};

use super::device::{CtxArgs, DeviceArgs};
use super::sampling::SamplingArgs;

#[derive(Args)]
pub struct ChatArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// The system message.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens per answer.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n: usize,
    /// A chat template: a Jinja file or a built-in name (see `lanterna template`).
    #[arg(long, value_name = "FILE|NAME")]
    chat_template: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    ctx: CtxArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// One JSON object per turn (input from a pipe).
    #[arg(long)]
    json: bool,
}

struct Chat {
    exec: Box<dyn Executor>,
    tok: Tokenizer,
    session: Session,
    args: ChatArgs,
    turns: usize,
}

pub fn run(a: ChatArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let cfg = Config::from_gguf(&g)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let n_ctx = a.ctx.n_ctx(&cfg)?;
    let exec = a.device.load(&g, cfg, n_ctx, |m| eprintln!("lanterna: kernels: {}", m.kernel_config()))?;
    let template = chat::choose(&g, a.chat_template.as_deref())?;
    eprintln!("lanterna: {} on {}, chat template {} ({})", g.path.display(), exec.name(), template.name, template.from);
    let session = Session::new(template, a.system.clone());
    let mut c = Chat { exec, tok, session, args: a, turns: 0 };
    interrupt::install_handler();
    if std::io::stdin().is_terminal() && !c.args.json {
        c.interactive()
    } else {
        c.piped()
    }
}

impl Chat {
    /// Answer one user line: streamed text, or one JSON object.
    fn answer(&mut self, line: &str) -> Result<()> {
        let (cfg, _) = self.args.sampling.config();
        // A fresh sampler per turn: the same seed answers the same history alike, as
        // `run --messages` does.
        let mut sampler = Sampler::new(cfg);
        let (json, tok) = (self.args.json, &self.tok);
        let mut out = std::io::stdout().lock();
        let mut stream = StreamDecoder::default();
        let t = self.session.turn(self.exec.as_mut(), tok, &mut sampler, line, self.args.n, |id| {
            if !json && !tok.is_eog(id) {
                out.write_all(stream.push(tok, id).as_bytes()).and_then(|_| out.flush()).map_err(stdout_err)?;
            }
            Ok(())
        })?;
        self.turns += 1;
        if t.dropped_turns > 0 {
            eprintln!("lanterna: the conversation outgrew the context: dropped its {} oldest turn(s)", t.dropped_turns);
        }
        let line = if json {
            let v = serde_json::json!({
                "turn": self.turns,
                "text": t.text,
                "prompt_tokens": t.prompt_tokens,
                "reused_tokens": t.reused_tokens,
                "tokens": t.gen.tokens,
                "stop": t.gen.stop.as_str(),
            });
            format!("{v}\n")
        } else {
            format!("{}\n", stream.finish())
        };
        out.write_all(line.as_bytes()).and_then(|_| out.flush()).map_err(stdout_err)?;
        if t.gen.stop == StopReason::Interrupted {
            interrupt::reset();
        }
        Ok(())
    }

    /// Each input line is one user turn.
    fn piped(&mut self) -> Result<()> {
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| Error::Usage(format!("reading stdin: {e}")))?;
            if !line.trim().is_empty() {
                self.answer(&line)?;
            }
        }
        Ok(())
    }

    fn interactive(&mut self) -> Result<()> {
        let mut rl = rustyline::DefaultEditor::new().map_err(|e| Error::Usage(format!("terminal: {e}")))?;
        eprintln!("lanterna: /reset, /system TEXT, /save FILE, /quit; Ctrl-C stops an answer, Ctrl-D ends");
        loop {
            let line = match rl.readline("> ") {
                Ok(l) => l,
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => return Ok(()),
                Err(e) => return Err(Error::Usage(format!("terminal: {e}"))),
            };
            let _ = rl.add_history_entry(line.as_str());
            match self.command(line.trim())? {
                Some(false) => return Ok(()),
                Some(true) => {}
                None if line.trim().is_empty() => {}
                None => self.answer(&line).or_else(report)?,
            }
        }
    }

    /// A slash command: Some(keep going) where `line` is one, None for a user turn.
    fn command(&mut self, line: &str) -> Result<Option<bool>> {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "/quit" | "/exit" => Ok(Some(false)),
            "/reset" => {
                self.session.reset();
                eprintln!("lanterna: conversation cleared");
                Ok(Some(true))
            }
            "/system" => {
                self.session.system = (!rest.trim().is_empty()).then(|| rest.trim().to_string());
                self.session.reset();
                eprintln!("lanterna: system message set; conversation cleared");
                Ok(Some(true))
            }
            "/save" if !rest.trim().is_empty() => {
                let text = serde_json::to_string_pretty(&self.session.all_messages()).unwrap_or_default();
                std::fs::write(rest.trim(), text + "\n")
                    .map_err(|source| Error::Io { path: rest.trim().into(), source })?;
                eprintln!("lanterna: saved to {}", rest.trim());
                Ok(Some(true))
            }
            c if c.starts_with('/') => {
                eprintln!("lanterna: unknown command {c} (/reset, /system TEXT, /save FILE, /quit)");
                Ok(Some(true))
            }
            _ => Ok(None),
        }
    }
}

/// On a terminal a failed turn (a template that raises, a context too small) is reported
/// and the conversation goes on.
fn report(e: Error) -> Result<()> {
    eprintln!("lanterna: {e}");
    Ok(())
}

fn stdout_err(e: std::io::Error) -> Error {
    Error::Usage(format!("writing to stdout: {e}"))
}
