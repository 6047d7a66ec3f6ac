//! Lanterna's own chat templates, one per family (`assets/templates/*.jinja`, embedded at
//! build time), for files that carry no `tokenizer.chat_template` — the Gemma-3-270M file
//! we test with is one.

use crate::gguf::GgufFile;

/// (name, Jinja source) of every built-in template.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("chatml", include_str!("../../assets/templates/chatml.jinja")),
    ("gemma", include_str!("../../assets/templates/gemma.jinja")),
    ("llama2", include_str!("../../assets/templates/llama2.jinja")),
    ("llama3", include_str!("../../assets/templates/llama3.jinja")),
    ("mistral", include_str!("../../assets/templates/mistral.jinja")),
    ("phi3", include_str!("../../assets/templates/phi3.jinja")),
    ("deepseek", include_str!("../../assets/templates/deepseek.jinja")),
];

pub fn get(name: &str) -> Option<&'static str> {
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(n, _)| *n).collect()
}

/// The built-in template of a model's family: by architecture, and for `llama` files (which
/// cover Llama 2/3, CodeLlama, Mistral, DeepSeek-Coder, SmolLM2) by the turn tokens its
/// vocabulary has, its pre-tokenizer and its name.
pub fn for_model(g: &GgufFile) -> &'static str {
    let arch = g.get("general.architecture").and_then(|v| v.as_str()).unwrap_or("");
    match arch {
        "gemma" | "gemma2" | "gemma3" => return "gemma",
        "qwen2" | "qwen3" => return "chatml",
        "phi3" => return "phi3",
        _ => {}
    }
    let has = |piece: &str| {
        let tokens = g.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()).unwrap_or(&[]);
        tokens.iter().any(|t| t.as_str() == Some(piece))
    };
    let pre = g.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("");
    let name = g.get("general.name").and_then(|v| v.as_str()).unwrap_or("").to_lowercase();
    if has("<|start_header_id|>") {
        "llama3"
    } else if has("<|im_start|>") {
        "chatml"
    } else if pre.starts_with("deepseek") || has("<|EOT|>") {
        "deepseek"
    } else if name.contains("mistral") {
        "mistral"
    } else {
        "llama2"
    }
}
