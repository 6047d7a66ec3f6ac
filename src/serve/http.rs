//! The HTTP side (axum): routes, the API key, the body limit, the small endpoints, and
//! every failure as OpenAI's error object with its status.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::api::ApiError;
use super::complete::{chat_completions, completions};
use super::state::json_body;
use super::state::AppState;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, Json(self.body())).into_response();
        if self.status == 503 {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .fallback(|| async { ApiError::new(404, "not_found_error", "no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::new(405, "invalid_request_error", "method not allowed") })
        .layer(middleware::from_fn_with_state(state.clone(), api_key))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// `--api-key`: every endpoint but /health wants `Authorization: Bearer KEY`.
async fn api_key(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &st.api_key {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let ok = given.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|k| k == key);
        if !ok && req.uri().path() != "/health" {
            let e = ApiError::new(401, "authentication_error", "missing or wrong API key (Authorization: Bearer …)");
            return e.with_code("invalid_api_key").into_response();
        }
    }
    next.run(req).await
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    match st.metrics.ready.load(Relaxed) {
        true => Json(json!({"status": "ok"})).into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "loading model"}))).into_response(),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

async fn models(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": [
        {"id": st.model_name, "object": "model", "created": st.started, "owned_by": "lanterna"}
    ]}))
}

/// `/tokenize`: `{"content": TEXT, "add_special": bool}` → `{"tokens": [...]}`, special
/// tokens written as text parsed as such (as a rendered chat prompt is); BOS as the model
/// asks unless `add_special` is false.
async fn tokenize(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = json_body(&st, body)?;
    let text = v.get("content").and_then(Value::as_str);
    let text = text.ok_or_else(|| ApiError::invalid("content", "'content' must be a string"))?;
    let add = v.get("add_special").and_then(Value::as_bool).unwrap_or(true);
    let mut ids = st.tok.encode_special(text).map_err(|e| ApiError::invalid("content", e.to_string()))?;
    let added_bos = st.tok.bos.is_some_and(|b| ids.first() == Some(&b) && !text.starts_with(st.tok.piece(b)));
    if !add && added_bos {
        ids.remove(0);
    }
    Ok(Json(json!({ "tokens": ids })))
}

async fn detokenize(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = json_body(&st, body)?;
    let bad = || ApiError::invalid("tokens", "'tokens' must be a list of token ids of this model");
    let list = v.get("tokens").and_then(Value::as_array).ok_or_else(bad)?;
    let n_vocab = st.tok.n_vocab() as u64;
    let ids = list
        .iter()
        .map(|t| t.as_u64().filter(|&t| t < n_vocab).map(|t| t as u32).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "content": st.tok.decode_special(&ids) })))
}
