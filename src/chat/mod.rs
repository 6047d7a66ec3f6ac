//! Chat: a conversation (OpenAI-style messages) rendered into a prompt by the model's chat
//! template, the Jinja program in its `tokenizer.chat_template` — or one of Lanterna's
//! built-in templates for the family (`assets/templates/`) where the file has none.

pub mod builtin;
pub mod json;
pub mod render;
pub mod repr;
pub mod session;

pub use render::{render, ChatInputs};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;

/// A template and where it came from, for the note on stderr.
pub struct ChatTemplate {
    pub name: String,
    pub source: String,
    pub from: String,
}

impl ChatTemplate {
    /// `messages` (and `tools`) rendered with `tok`'s BOS and EOS as the special-token
    /// variables: what `run --messages`, `template`, `chat` and `serve` all render.
    pub fn apply(
        &self,
        tok: &Tokenizer,
        messages: &serde_json::Value,
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let piece = |id: Option<u32>| id.map(|i| tok.piece(i).to_string()).unwrap_or_default();
        let (bos, eos) = (piece(tok.bos), piece(tok.eos));
        let inputs = ChatInputs { messages, tools, add_generation_prompt, bos_token: &bos, eos_token: &eos };
        render(&self.name, &self.source, &inputs)
    }
}

/// Which template a model's chat uses: `--chat-template` (a file or a built-in name) when
/// given, else the file's `tokenizer.chat_template`, else the built-in one of its family.
pub fn choose(g: &GgufFile, flag: Option<&str>) -> Result<ChatTemplate> {
    if let Some(f) = flag {
        if let Some(src) = builtin::get(f) {
            return Ok(ChatTemplate {
                name: f.to_string(),
                source: src.to_string(),
                from: "built in, --chat-template".into(),
            });
        }
        let source = std::fs::read_to_string(f).map_err(|source| Error::Io { path: f.into(), source })?;
        return Ok(ChatTemplate { name: f.to_string(), source, from: "--chat-template".into() });
    }
    if let Some(src) = g.get("tokenizer.chat_template").and_then(|v| v.as_str()) {
        return Ok(ChatTemplate {
            name: "the model's".into(),
            source: src.to_string(),
            from: "tokenizer.chat_template".into(),
        });
    }
    let name = builtin::for_model(g);
    let source = builtin::get(name).unwrap_or_default().to_string();
    Ok(ChatTemplate { name: name.into(), source, from: "built in: the file has no tokenizer.chat_template".into() })
}

/// A messages file: a JSON array of objects with a string `role`, and `content` a string,
/// a list of parts, or null (an assistant turn of tool calls only).
pub fn parse_messages(text: &str, what: &str) -> Result<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::Usage(format!("{what} is not JSON: {e}")))?;
    let list = v.as_array().ok_or_else(|| Error::Usage(format!("{what} must be a JSON array of messages")))?;
    if list.is_empty() {
        return Err(Error::Usage(format!("{what} holds no messages")));
    }
    for (i, m) in list.iter().enumerate() {
        let bad = |msg: &str| Error::Usage(format!("{what}: message {i}: {msg}"));
        let role = m.get("role").and_then(|r| r.as_str()).ok_or_else(|| bad("needs a string \"role\""))?;
        if !["system", "user", "assistant", "tool", "developer"].contains(&role) {
            return Err(bad(&format!("unknown role '{role}'")));
        }
        match m.get("content") {
            None | Some(serde_json::Value::Null) if role == "assistant" => {}
            Some(serde_json::Value::String(_)) | Some(serde_json::Value::Array(_)) => {}
            _ => return Err(bad("\"content\" must be a string or a list of parts")),
        }
    }
    Ok(v)
}
