//! Text ↔ token ids, built from the vocabulary stored in GGUF metadata with the
//! `tokenizers` crate, reproducing llama.cpp's `llama_tokenize(add_special=true,
//! parse_special=false)`:
//!
//! * `tokenizer.ggml.model = "gpt2"`: byte-level BPE with the file's merges; the text is
//!   first split by the regexes llama.cpp uses for `tokenizer.ggml.pre`.
//! * `tokenizer.ggml.model = "llama"`: SentencePiece BPE. llama.cpp merges the adjacent
//!   pair whose concatenation is the highest-scoring vocabulary entry; that is BPE with
//!   one merge per (left, right) split of every entry, ranked by the entry's score.
//!   Spaces become `▁`, unknown characters fall back to `<0xNN>` byte tokens.
//!
//! Control tokens are never matched in the text (parse_special=false); user-defined
//! tokens are, as llama.cpp does. Decoding is done here, byte-exact, so that streamed
//! output can hold back an incomplete UTF-8 character.

use std::collections::HashMap;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormSeq};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSeq;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::SplitDelimiterBehavior;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;

mod specials;

pub use specials::TokenType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// SentencePiece-style (`llama`)
    Spm,
    /// byte-level BPE (`gpt2`)
    Bpe,
}

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub kind: VocabKind,
    pub pre: String,
    pieces: Vec<String>,
    types: Vec<TokenType>,
    /// What each token prints as (control tokens print nothing, as in llama.cpp).
    bytes: Vec<Vec<u8>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    eog: Vec<u32>,
}

/// GPT-2's byte ↔ printable-character map: bytes that are printable stand for
/// themselves, the rest are shifted to U+0100 and up.
fn gpt2_byte_chars() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        map[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    map
}

/// Pre-tokenizers llama.cpp treats as Llama 3's: its regex, BOS added, and whole words
/// that are tokens taken as they are (`ignore_merges`).
fn is_llama3_pre(pre: &str) -> bool {
    matches!(pre, "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral")
}

/// The pre-tokenizer regexes llama.cpp applies for each `tokenizer.ggml.pre`, in order.
fn bpe_regexes(pre: &str) -> Vec<&'static str> {
    const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    match pre {
        p if is_llama3_pre(p) => vec![LLAMA3],
        "dbrx" | "smaug-bpe" => vec![LLAMA3],
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "megrez" => vec![QWEN2],
        "deepseek-coder" => vec![r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => vec![r"\p{N}", GPT2],
        "gpt-2" | "phi-2" | "mpt" | "olmo" | "jais" => vec![GPT2],
        _ => vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    }
}

fn tk_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

fn read_pieces(g: &GgufFile) -> Result<Vec<String>> {
    let pieces: Vec<String> = g
        .get_array("tokenizer.ggml.tokens")?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::metadata("tokenizer.ggml.tokens", "entries must be strings"))?;
    if pieces.is_empty() {
        return Err(Error::metadata("tokenizer.ggml.tokens", "empty vocabulary"));
    }
    Ok(pieces)
}

/// A per-token array of `key`, checked to have `n` entries; None when absent.
fn per_token<'a>(g: &'a GgufFile, key: &str, n: usize) -> Result<Option<&'a [crate::gguf::MetaValue]>> {
    let Some(v) = g.get(key) else { return Ok(None) };
    let a = v.as_array().ok_or_else(|| Error::metadata(key, "expected an array"))?;
    if a.len() != n {
        return Err(Error::metadata(key, format!("{} entries for {n} tokens", a.len())));
    }
    Ok(Some(a))
}

fn read_types(g: &GgufFile, n: usize) -> Result<Vec<TokenType>> {
    Ok(match per_token(g, "tokenizer.ggml.token_type", n)? {
        None => vec![TokenType::Normal; n],
        Some(a) => a
            .iter()
            .map(|x| match *x {
                crate::gguf::MetaValue::I32(t) => TokenType::from_i64(t as i64),
                ref o => TokenType::from_i64(o.as_u64().unwrap_or(1) as i64),
            })
            .collect(),
    })
}

fn read_scores(g: &GgufFile, n: usize) -> Result<Option<Vec<f32>>> {
    let a = per_token(g, "tokenizer.ggml.scores", n)?;
    Ok(a.map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as f32).collect()))
}

/// BOS, EOS and whether BOS is added by default, with llama.cpp's defaults when the keys are absent.
fn bos_eos(g: &GgufFile, kind: VocabKind, pre: &str, n: usize) -> Result<(Option<u32>, Option<u32>, bool)> {
    let id_key = |key: &str, default: u32| -> Result<Option<u32>> {
        let Some(v) = g.get(key) else { return Ok(Some(default)) };
        let id = v.as_u64().ok_or_else(|| Error::metadata(key, "expected a token id"))?;
        if id as usize >= n {
            return Err(Error::metadata(key, format!("token id {id} is outside the vocabulary of {n}")));
        }
        Ok(Some(id as u32))
    };
    let (bos_key, eos_key) = ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id");
    Ok(match kind {
        VocabKind::Spm => (id_key(bos_key, 1)?, id_key(eos_key, 2)?, true),
        VocabKind::Bpe => {
            let add = is_llama3_pre(pre) || matches!(pre, "tekken" | "chameleon");
            (id_key(bos_key, 11)?, id_key(eos_key, 11)?, add)
        }
    })
}

impl Tokenizer {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let model = g.get_str("tokenizer.ggml.model")?.to_string();
        let kind = match model.as_str() {
            "llama" => VocabKind::Spm,
            "gpt2" => VocabKind::Bpe,
            other => {
                return Err(Error::metadata(
                    "tokenizer.ggml.model",
                    format!("'{other}' is not supported (llama and gpt2 are)"),
                ))
            }
        };
        let pre = match g.get("tokenizer.ggml.pre") {
            Some(v) => v.as_str().unwrap_or("default").to_string(),
            None => "default".to_string(),
        };
        let pieces = read_pieces(g)?;
        let n = pieces.len();
        let mut types = read_types(g, n)?;
        let scores = read_scores(g, n)?;

        let (bos, eos, default_add_bos) = bos_eos(g, kind, &pre, n)?;
        let add_bos = g.get_bool_opt("tokenizer.ggml.add_bos_token")?.unwrap_or(default_add_bos);
        let add_eos = g.get_bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        let add_space_prefix = g.get_bool_opt("tokenizer.ggml.add_space_prefix")?.unwrap_or(kind == VocabKind::Spm);

        let eog = specials::apply(g, &pieces, &mut types, eos);

        let inner = Self::build(g, kind, &pre, &pieces, &types, scores, add_space_prefix)?;
        let bytes = Self::decode_table(kind, &pieces, &types);
        Ok(Tokenizer { inner, kind, pre, pieces, types, bytes, bos, eos, add_bos, add_eos, eog })
    }

    /// The `tokenizers` model for the vocabulary, with the file's user-defined tokens added.
    fn build(
        g: &GgufFile,
        kind: VocabKind,
        pre: &str,
        pieces: &[String],
        types: &[TokenType],
        scores: Option<Vec<f32>>,
        add_space_prefix: bool,
    ) -> Result<tokenizers::Tokenizer> {
        let mut vocab: HashMap<String, u32> = HashMap::with_capacity(pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            vocab.entry(p.clone()).or_insert(i as u32);
        }
        let mut inner = match kind {
            VocabKind::Bpe => Self::build_bpe(g, &vocab, pre)?,
            VocabKind::Spm => {
                let scores = scores.ok_or_else(|| {
                    Error::metadata("tokenizer.ggml.scores", "missing (needed by a llama vocabulary)")
                })?;
                Self::build_spm(pieces, types, &scores, &vocab, add_space_prefix)?
            }
        };
        // User-defined tokens are matched in raw text even with parse_special=false.
        let user: Vec<AddedToken> = pieces
            .iter()
            .zip(types)
            .filter(|(_, t)| **t == TokenType::UserDefined)
            .map(|(p, _)| AddedToken::from(p.clone(), false).normalized(false))
            .collect();
        inner.add_tokens(&user);
        Ok(inner)
    }

    fn build_bpe(g: &GgufFile, vocab: &HashMap<String, u32>, pre: &str) -> Result<tokenizers::Tokenizer> {
        let merges: Vec<(String, String)> = g
            .get_array("tokenizer.ggml.merges")?
            .iter()
            .filter_map(|m| m.as_str())
            .filter_map(|m| {
                // llama.cpp splits at the first space after the first character.
                let first = m.chars().next()?.len_utf8();
                let pos = m[first..].find(' ')? + first;
                let (a, b) = (&m[..pos], &m[pos + 1..]);
                // A merge whose parts or result are not tokens can never fire in llama.cpp either.
                (vocab.contains_key(a) && vocab.contains_key(b) && vocab.contains_key(&format!("{a}{b}")))
                    .then(|| (a.to_string(), b.to_string()))
            })
            .collect();
        let ignore_merges = is_llama3_pre(pre) || pre == "tekken";
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.iter().map(|(k, v)| (k.clone(), *v)).collect::<ahash::AHashMap<_, _>>(), merges)
            .ignore_merges(ignore_merges)
            .build()
            .map_err(|e| tk_err("building the BPE model", e))?;
        let mut pres: Vec<PreTokenizerWrapper> = Vec::new();
        for re in bpe_regexes(pre) {
            let split = Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| tk_err(&format!("pre-tokenizer regex {re}"), e))?;
            pres.push(split.into());
        }
        pres.push(ByteLevel::new(false, false, false).into());
        let mut t = tokenizers::Tokenizer::new(bpe);
        t.with_pre_tokenizer(Some(PreSeq::new(pres)));
        Ok(t)
    }

    fn build_spm(
        pieces: &[String],
        types: &[TokenType],
        scores: &[f32],
        vocab: &HashMap<String, u32>,
        add_space_prefix: bool,
    ) -> Result<tokenizers::Tokenizer> {
        // Every way to write a vocabulary entry as two entries is a merge, ranked by the
        // entry's score (higher first) as llama.cpp's bigram queue does.
        let mut merges: Vec<(f32, u32, usize, &str, &str)> = Vec::new();
        for (id, p) in pieces.iter().enumerate() {
            if types[id] == TokenType::Byte {
                continue;
            }
            for (split, _) in p.char_indices().skip(1) {
                let (a, b) = p.split_at(split);
                if vocab.contains_key(a) && vocab.contains_key(b) {
                    merges.push((scores[id], id as u32, split, a, b));
                }
            }
        }
        merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let merges: Vec<(String, String)> = merges.into_iter().map(|m| (m.3.to_string(), m.4.to_string())).collect();
        let mut b = BPE::builder()
            .vocab_and_merges(vocab.iter().map(|(k, v)| (k.clone(), *v)).collect::<ahash::AHashMap<_, _>>(), merges)
            .byte_fallback(true);
        if let Some(unk) = types.iter().position(|t| *t == TokenType::Unknown) {
            b = b.unk_token(pieces[unk].clone());
        }
        let bpe = b.build().map_err(|e| tk_err("building the SentencePiece model", e))?;
        let mut norms: Vec<NormalizerWrapper> = Vec::new();
        if add_space_prefix {
            norms.push(Prepend::new("▁".to_string()).into());
        }
        norms.push(Replace::new(" ", "▁").map_err(|e| tk_err("normalizer", e))?.into());
        let mut t = tokenizers::Tokenizer::new(bpe);
        t.with_normalizer(Some(NormSeq::new(norms)));
        Ok(t)
    }

    fn decode_table(kind: VocabKind, pieces: &[String], types: &[TokenType]) -> Vec<Vec<u8>> {
        let mut byte_of = HashMap::new();
        for (b, c) in gpt2_byte_chars().iter().enumerate() {
            byte_of.insert(*c, b as u8);
        }
        pieces
            .iter()
            .zip(types)
            .map(|(p, t)| match (t, kind) {
                (TokenType::Control | TokenType::Unused, _) => Vec::new(),
                (TokenType::UserDefined, _) => p.as_bytes().to_vec(),
                (TokenType::Byte, VocabKind::Spm) => {
                    let hex = p.trim_start_matches("<0x").trim_end_matches('>');
                    u8::from_str_radix(hex, 16).map(|b| vec![b]).unwrap_or_else(|_| p.as_bytes().to_vec())
                }
                (_, VocabKind::Spm) => p.replace('▁', " ").into_bytes(),
                (_, VocabKind::Bpe) => {
                    // Characters outside the byte map are kept as their UTF-8.
                    let mut out = Vec::with_capacity(p.len());
                    for c in p.chars() {
                        match byte_of.get(&c) {
                            Some(b) => out.push(*b),
                            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        }
                    }
                    out
                }
            })
            .collect()
    }

    pub fn n_vocab(&self) -> usize {
        self.pieces.len()
    }

    /// Token ids for `text`, with BOS/EOS as the model asks (llama.cpp's
    /// `llama_tokenize(add_special=true, parse_special=false)`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        if !text.is_empty() {
            let enc = self.inner.encode(text, false).map_err(|e| tk_err("encoding", e))?;
            ids.extend_from_slice(enc.get_ids());
        }
        if self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// Token ids for a rendered chat prompt: special tokens written as text (`<|im_start|>`)
    /// become those tokens (llama.cpp's `parse_special=true`), and BOS is added where the
    /// model asks for it unless the template already wrote it.
    pub fn encode_special(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for f in specials::split_specials(text, &self.pieces, &self.types) {
            match f {
                specials::Fragment::Special(id) => ids.push(id),
                specials::Fragment::Text(t) => {
                    let enc = self.inner.encode(t, false).map_err(|e| tk_err("encoding", e))?;
                    ids.extend_from_slice(enc.get_ids());
                }
            }
        }
        if let Some(bos) = self.bos.filter(|_| self.add_bos) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        if self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// The vocabulary entry of a token, as stored.
    pub fn piece(&self, id: u32) -> &str {
        self.pieces.get(id as usize).map_or("", String::as_str)
    }

    /// What the token prints as: bytes, possibly part of a UTF-8 character.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    pub fn token_type(&self, id: u32) -> TokenType {
        self.types.get(id as usize).copied().unwrap_or(TokenType::Normal)
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The whole text of a sequence of tokens (lossy only on invalid UTF-8).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| self.token_bytes(i).iter().copied()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The text of a sequence of tokens with control tokens written out (`<|im_start|>`),
    /// so that `encode_special` gives the tokens back (the server's `/detokenize`).
    pub fn decode_special(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &i in ids {
            match self.token_type(i) {
                TokenType::Control | TokenType::Unused => bytes.extend_from_slice(self.piece(i).as_bytes()),
                _ => bytes.extend_from_slice(self.token_bytes(i)),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A printable form of a token's bytes, with bytes that are not whole UTF-8
    /// characters written as `\xNN` (as llama.cpp's fixtures show pieces).
    pub fn display_piece(&self, id: u32) -> String {
        escape_bytes(self.token_bytes(id))
    }

    /// Like `display_piece`, but control tokens show their vocabulary text (`<bos>`).
    pub fn display_piece_or_text(&self, id: u32) -> String {
        match self.token_type(id) {
            TokenType::Control | TokenType::Unused => self.piece(id).to_string(),
            _ => self.display_piece(id),
        }
    }
}

/// Bytes as text, with invalid UTF-8 written as `\xNN` escapes.
pub fn escape_bytes(mut b: &[u8]) -> String {
    let mut s = String::new();
    loop {
        match std::str::from_utf8(b) {
            Ok(v) => {
                s.push_str(v);
                return s;
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                s.push_str(std::str::from_utf8(good).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                for x in &rest[..bad] {
                    s.push_str(&format!("\\x{x:02x}"));
                }
                b = &rest[bad..];
            }
        }
    }
}

/// Turns a stream of tokens into text without ever emitting half a UTF-8 character:
/// bytes of an incomplete character are held until the next token completes it.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// Add one token; returns the text that is complete so far.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.push_bytes(tok.token_bytes(id))
    }

    /// Add the bytes of one token; returns the text that is complete so far.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never become valid: print a replacement character.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is still held at the end of the stream.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_holds_back_split_characters() {
        let llama = "🦙".as_bytes(); // 4 bytes, as SmolLM2 splits it: " \xf0\x9f", "\xa6", "\x99"
        let mut d = StreamDecoder::default();
        assert_eq!(d.push_bytes(&[b' ', llama[0], llama[1]]), " ");
        assert_eq!(d.push_bytes(&llama[2..3]), "");
        assert_eq!(d.push_bytes(&llama[3..4]), "🦙");
        assert_eq!(d.push_bytes(b"!"), "!");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn stream_replaces_bytes_that_can_never_be_valid() {
        let mut d = StreamDecoder::default();
        assert_eq!(d.push_bytes(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(d.push_bytes(&[0xE6]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn gpt2_byte_map_is_a_bijection() {
        let m = gpt2_byte_chars();
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(m[b'A' as usize], 'A');
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
    }

    #[test]
    fn escape_marks_invalid_bytes() {
        assert_eq!(escape_bytes(&[b' ', 0xF0, 0x9F]), " \\xf0\\x9f");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }
}
