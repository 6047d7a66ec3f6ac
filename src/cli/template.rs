//! `lanterna template`: a conversation rendered by the model's chat template, printed
//! byte for byte; and the rendering `run --messages` shares.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use lanterna::chat::{self, ChatTemplate};
use lanterna::gguf::GgufFile;
use lanterna::tokenizer::Tokenizer;
use lanterna::{fetch, Error, Result};

/// Where a conversation comes from and which template renders it.
#[derive(Args, Clone)]
pub struct ChatArgs {
    /// A chat template: a Jinja file, or a built-in name (chatml, gemma, llama2, llama3,
    /// mistral, phi3, deepseek); default: the file's tokenizer.chat_template, else the
    /// family's built-in one.
    #[arg(long, value_name = "FILE|NAME")]
    pub chat_template: Option<String>,
    /// Tool definitions (a JSON array, as OpenAI's `tools`) for templates that take them.
    #[arg(long, value_name = "FILE.json", requires = "messages")]
    pub tools: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })
}

impl ChatArgs {
    /// The messages file rendered with the chosen template, and the template.
    pub fn render(
        &self,
        g: &GgufFile,
        tok: &Tokenizer,
        messages: &Path,
        gen_prompt: bool,
    ) -> Result<(String, ChatTemplate)> {
        let msgs = chat::parse_messages(&read(messages)?, &messages.display().to_string())?;
        let tools = match &self.tools {
            Some(p) => Some(
                serde_json::from_str::<serde_json::Value>(&read(p)?)
                    .map_err(|e| Error::Usage(format!("{} is not JSON: {e}", p.display())))?,
            ),
            None => None,
        };
        let t = chat::choose(g, self.chat_template.as_deref())?;
        Ok((t.apply(tok, &msgs, tools.as_ref(), gen_prompt)?, t))
    }
}

#[derive(Args)]
pub struct TemplateArgs {
    /// GGUF file, or a known model name (smollm2, gemma3); default smollm2.
    #[arg(short, long)]
    model: Option<String>,
    /// The conversation: a JSON array of {"role", "content"} messages (OpenAI's format).
    #[arg(long, value_name = "FILE.json")]
    messages: PathBuf,
    #[command(flatten)]
    chat: ChatArgs,
    /// Leave out the assistant turn's opening that prompts the model to answer.
    #[arg(long)]
    no_generation_prompt: bool,
}

pub fn run(a: TemplateArgs) -> Result<()> {
    let g = GgufFile::open(fetch::resolve(a.model.as_deref())?)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let (text, t) = a.chat.render(&g, &tok, &a.messages, !a.no_generation_prompt)?;
    eprintln!("lanterna: chat template {} ({})", t.name, t.from);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::Usage(format!("writing to stdout: {e}")))
}
