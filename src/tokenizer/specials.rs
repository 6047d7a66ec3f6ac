//! llama.cpp's special-token heuristics (llama-vocab.cpp, `llama_vocab::impl::load`, at
//! the commit the fixtures come from): besides the types a GGUF file gives its tokens,
//! llama.cpp recognises end-of-turn, fill-in-the-middle and end-of-generation tokens by
//! their text and forces them to control tokens — which are then never matched in raw
//! text (parse_special=false), print nothing, and stop generation. Reproducing this is
//! what makes `</s>` in Gemma-3's vocabulary (a user-defined token there) text, not a token.

use crate::gguf::GgufFile;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    pub(super) fn from_i64(v: i64) -> Self {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// Token texts llama.cpp looks for per special role, and the metadata key that, when
/// present, names the role's token instead (then the texts are not looked at).
const BY_ROLE: &[(&str, &[&str])] = &[
    ("tokenizer.ggml.eot_token_id", &["<|eot_id|>", "<end_of_utterance>"]),
    ("tokenizer.ggml.eom_token_id", &["<|eom_id|>"]),
    (
        "tokenizer.ggml.fim_pre_token_id",
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
    ),
    (
        "tokenizer.ggml.fim_suf_token_id",
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
    ),
    (
        "tokenizer.ggml.fim_mid_token_id",
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
    ),
    ("tokenizer.ggml.fim_pad_token_id", &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
    ("tokenizer.ggml.fim_rep_token_id", &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]),
    ("tokenizer.ggml.fim_sep_token_id", &["<|file_sep|>"]),
];

/// Texts that end generation, whatever their type (forced to control).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Roles whose token also ends generation.
const EOG_ROLES: &[&str] = &[
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
    "tokenizer.ggml.fim_pad_token_id",
    "tokenizer.ggml.fim_rep_token_id",
    "tokenizer.ggml.fim_sep_token_id",
];

fn id_of(g: &GgufFile, key: &str, n: usize) -> Option<u32> {
    g.get(key).and_then(|v| v.as_u64()).filter(|&id| (id as usize) < n).map(|id| id as u32)
}

/// Apply llama.cpp's overrides to `types` and return the end-of-generation ids, sorted.
pub fn apply(g: &GgufFile, pieces: &[String], types: &mut [TokenType], eos: Option<u32>) -> Vec<u32> {
    let n = pieces.len();
    let find = |text: &str| pieces.iter().position(|p| p == text).map(|i| i as u32);
    let mut eog: Vec<u32> = eos.into_iter().collect();
    for &(key, texts) in BY_ROLE {
        let id = match id_of(g, key, n) {
            Some(id) => Some(id),
            None => {
                // The role's token found by its text is forced to control.
                let found = texts.iter().find_map(|t| find(t));
                if let Some(id) = found {
                    types[id as usize] = TokenType::Control;
                }
                found
            }
        };
        if let Some(id) = id.filter(|_| EOG_ROLES.contains(&key)) {
            eog.push(id);
        }
    }
    for (i, p) in pieces.iter().enumerate() {
        if EOG_TEXTS.contains(&p.as_str()) {
            eog.push(i as u32);
            types[i] = TokenType::Control;
        }
    }
    // gpt-oss: these always print, as user-defined tokens.
    for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = find(t) {
            types[id as usize] = TokenType::UserDefined;
        }
    }
    eog.sort_unstable();
    eog.dedup();
    let in_eog = |t: &str| eog.iter().copied().find(|&id| pieces[id as usize] == t);
    let (end, ret, call, calls, flush) =
        (in_eog("<|end|>"), in_eog("<|return|>"), in_eog("<|call|>"), in_eog("<|calls|>"), in_eog("<|flush|>"));
    let (slash_s, tool_response) = (in_eog("</s>"), in_eog("<|tool_response>"));
    // o200k_harmony and solar-open: `<|end|>` does not end generation there.
    if let Some(end) = end.filter(|_| ret.is_some() && call.is_some() || calls.is_some() && flush.is_some()) {
        types[end as usize] = TokenType::UserDefined;
        eog.retain(|&id| id != end);
    }
    // Gemma 4 and PaddleOCR: `</s>` is text there.
    if let Some(s) = slash_s.filter(|_| tool_response.is_some()) {
        types[s as usize] = TokenType::Normal;
        eog.retain(|&id| id != s);
    }
    eog
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::writer::GgufWriter;
    use crate::gguf::MetaValue;

    fn file(kv: &[(&str, u32)]) -> GgufFile {
        let mut w = GgufWriter::default();
        for (k, v) in kv {
            w.kv(k, MetaValue::U32(*v));
        }
        GgufFile::from_bytes(w.to_bytes()).unwrap()
    }

    fn run(pieces: &[&str], kv: &[(&str, u32)]) -> (Vec<TokenType>, Vec<u32>) {
        let pieces: Vec<String> = pieces.iter().map(|s| s.to_string()).collect();
        let mut types = vec![TokenType::UserDefined; pieces.len()];
        let eog = apply(&file(kv), &pieces, &mut types, Some(0));
        (types, eog)
    }

    #[test]
    fn end_of_generation_texts_become_control_tokens() {
        let (types, eog) = run(&["<eos>", "</s>", "<|im_end|>", "hello", "<|fim_pad|>"], &[]);
        assert_eq!(eog, [0, 1, 2, 4]);
        assert_eq!(types[1], TokenType::Control, "</s> is forced to control");
        assert_eq!(types[3], TokenType::UserDefined, "other texts keep their type");
    }

    #[test]
    fn a_role_named_in_metadata_is_not_looked_up_by_text() {
        // The file names token 3 as its EOT: `<|eot_id|>` is then not forced by its text
        // as the EOT (it still ends generation through the EOG list).
        let (types, eog) = run(
            &["<eos>", "<PRE>", "<|eot_id|>", "x"],
            &[("tokenizer.ggml.eot_token_id", 3), ("tokenizer.ggml.fim_pre_token_id", 1)],
        );
        assert_eq!(eog, [0, 2, 3]);
        assert_eq!(types[1], TokenType::UserDefined, "FIM prefix named by metadata keeps its type");
    }

    #[test]
    fn workarounds_for_gemma4_and_harmony() {
        let (types, eog) = run(&["<eos>", "</s>", "<|tool_response>"], &[]);
        assert_eq!((types[1], eog.contains(&1)), (TokenType::Normal, false));
        let (types, eog) = run(&["<eos>", "<|end|>", "<|return|>", "<|call|>"], &[]);
        assert_eq!((types[1], eog.contains(&1)), (TokenType::UserDefined, false));
        assert!(eog.contains(&2) && eog.contains(&3));
    }
}

/// A stretch of text, or a special token found in it.
#[derive(Debug, PartialEq)]
pub enum Fragment<'a> {
    Text(&'a str),
    Special(u32),
}

/// `text` cut at every special token's piece (control, user-defined and unknown tokens,
/// as llama.cpp's `parse_special`), the longest piece winning where several start at once.
pub fn split_specials<'a>(text: &'a str, pieces: &[String], types: &[TokenType]) -> Vec<Fragment<'a>> {
    use std::collections::HashMap;
    let mut by_first: HashMap<u8, Vec<(&str, u32)>> = HashMap::new();
    for (id, (p, t)) in pieces.iter().zip(types).enumerate() {
        if !p.is_empty() && matches!(t, TokenType::Control | TokenType::UserDefined | TokenType::Unknown) {
            by_first.entry(p.as_bytes()[0]).or_default().push((p.as_str(), id as u32));
        }
    }
    for list in by_first.values_mut() {
        list.sort_by_key(|(p, id)| (std::cmp::Reverse(p.len()), *id));
    }
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let hit = by_first.get(&bytes[i]).and_then(|l| l.iter().find(|(p, _)| text[i..].starts_with(p)));
        match hit {
            Some(&(p, id)) => {
                if start < i {
                    out.push(Fragment::Text(&text[start..i]));
                }
                out.push(Fragment::Special(id));
                i += p.len();
                start = i;
            }
            None => i += 1,
        }
    }
    if start < bytes.len() {
        out.push(Fragment::Text(&text[start..]));
    }
    out
}
