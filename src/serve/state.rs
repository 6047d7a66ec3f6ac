//! What every handler sees, and the request body as JSON.

use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::Value;

use super::api::ApiError;
use super::engine::Job;
use super::metrics::Metrics;
use crate::chat::ChatTemplate;
use crate::tokenizer::Tokenizer;

/// What every handler sees.
pub struct AppState {
    pub jobs: mpsc::Sender<Job>,
    pub metrics: Arc<Metrics>,
    pub tok: Arc<Tokenizer>,
    pub template: ChatTemplate,
    pub model_name: String,
    pub n_ctx: usize,
    pub queue_cap: usize,
    pub api_key: Option<String>,
    pub body_limit: usize,
    pub started: u64,
    pub next_id: AtomicU64,
}

/// The request body as JSON; too large is 413, not JSON is 400.
pub fn json_body(st: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            413,
            "invalid_request_error",
            format!("the request body is larger than the limit of {} bytes", st.body_limit),
        ),
        s => ApiError::new(s.as_u16(), "invalid_request_error", e.body_text()),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(400, "invalid_request_error", format!("the body is not valid JSON: {e}")))
}
