//! One error type for the whole crate. Every variant names what went wrong and where
//! (file offset, tensor, metadata key, kernel), so `main` can print it as is.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A structural problem in a GGUF file, at a byte offset.
    #[error("GGUF {field} at byte {offset}: {msg}")]
    Gguf { field: String, offset: u64, msg: String },

    #[error("tensor '{tensor}' has unknown ggml type id {type_id}")]
    UnknownTensorType { tensor: String, type_id: u32 },

    #[error("tensor '{tensor}': {msg}")]
    Tensor { tensor: String, msg: String },

    #[error("metadata key '{key}': {msg}")]
    Metadata { key: String, msg: String },

    #[error("architecture '{arch}' is not supported (supported: {supported})")]
    UnsupportedArch { arch: String, supported: String },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A chat template that does not parse, raises, or fails while rendering: which
    /// template, the line, and the message.
    #[error("chat template {template}{}: {msg}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Template { template: String, line: Option<usize>, msg: String },

    /// The matvec tuner's cache could not be written.
    #[error("tuning cache {path}: {msg}")]
    TuneCache { path: PathBuf, msg: String },

    #[error("GPU: {0}")]
    Gpu(String),

    /// A GPU kernel failed (validation, out of memory, device lost), named.
    #[error("GPU kernel '{kernel}': {msg}")]
    Kernel { kernel: String, msg: String },

    /// A model, cache or buffer larger than the adapter allows, found before upload.
    #[error("does not fit the adapter: {0}")]
    DoesNotFit(String),

    /// Generation stopped by the user (Ctrl-C); what was printed stays printed.
    #[error("interrupted")]
    Interrupted,

    #[error("context: {0}")]
    Context(String),

    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn gguf(field: impl Into<String>, offset: u64, msg: impl Into<String>) -> Self {
        Error::Gguf { field: field.into(), offset, msg: msg.into() }
    }
    pub fn tensor(tensor: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Tensor { tensor: tensor.into(), msg: msg.into() }
    }
    pub fn metadata(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Metadata { key: key.into(), msg: msg.into() }
    }
}
