//! `POST /v1/chat/completions` and `POST /v1/completions`: a request checked, rendered and
//! tokenized here (every mistake a 4xx before it takes a place), queued for the engine,
//! and its events turned into one JSON answer or a stream of server-sent events.

use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::api::{self, ApiError, GenParams};
use super::engine::{Event, Finish, Job, Usage};
use super::state::{json_body, AppState};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Text,
}

/// What the answer's objects share.
#[derive(Clone)]
struct Meta {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
}

pub async fn chat_completions(State(st): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let r = match prepare_chat(&st, body) {
        Ok((prompt, params)) => answer(st, prompt, params, Kind::Chat).await,
        Err(e) => Err(e),
    };
    r.unwrap_or_else(refuse)
}

pub async fn completions(State(st): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let prepared = json_body(&st, body).and_then(|v| {
        let params = api::gen_params(&v)?;
        let prompt = st.tok.encode(&api::prompt(&v)?).map_err(|e| ApiError::invalid("prompt", e.to_string()))?;
        Ok((prompt, params))
    });
    let r = match prepared {
        Ok((prompt, params)) => answer(st, prompt, params, Kind::Text).await,
        Err(e) => Err(e),
    };
    r.unwrap_or_else(refuse)
}

/// The error as the response, and its line on stderr.
fn refuse(e: ApiError) -> Response {
    eprintln!("lanterna serve: refused {} {}: {}", e.status, e.kind, e.message);
    e.into_response()
}

/// The conversation rendered by the model's chat template and tokenized, as `run --messages` does.
fn prepare_chat(st: &AppState, body: Result<Bytes, BytesRejection>) -> Result<(Vec<u32>, GenParams), ApiError> {
    let v = json_body(st, body)?;
    let params = api::gen_params(&v)?;
    let messages = api::messages(&v)?;
    let tools = match v.get("tools") {
        None | Some(Value::Null) => None,
        Some(t @ Value::Array(_)) => Some(t.clone()),
        Some(_) => return Err(ApiError::invalid("tools", "'tools' must be an array")),
    };
    let text = st
        .template
        .apply(&st.tok, &messages, tools.as_ref(), true)
        .map_err(|e| ApiError::invalid("messages", e.to_string()))?;
    let prompt = st.tok.encode_special(&text).map_err(|e| ApiError::invalid("messages", e.to_string()))?;
    Ok((prompt, params))
}

/// The request queued for the engine, and its answer.
async fn answer(st: Arc<AppState>, prompt: Vec<u32>, p: GenParams, kind: Kind) -> Result<Response, ApiError> {
    let max_tokens = fit_context(&st, prompt.len(), p.max_tokens)?;
    if !st.metrics.ready.load(Relaxed) {
        return Err(ApiError::new(503, "unavailable_error", "the model is still loading"));
    }
    if !st.metrics.try_enqueue(st.queue_cap) {
        st.metrics.rejected_total.fetch_add(1, Relaxed);
        let msg = format!("the server is busy: {} requests are already waiting", st.queue_cap);
        return Err(ApiError::new(503, "unavailable_error", msg));
    }
    st.metrics.requests_total.fetch_add(1, Relaxed);
    let n = st.next_id.fetch_add(1, Relaxed);
    let meta = Meta {
        id: format!("{}-{n}", if kind == Kind::Chat { "chatcmpl" } else { "cmpl" }),
        created: unix_now(),
        model: st.model_name.clone(),
        kind,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let job = Job {
        id: meta.id.clone(),
        prompt,
        max_tokens,
        sampling: p.sampling,
        stop: p.stop,
        events: tx,
        received: Instant::now(),
    };
    if st.jobs.send(job).is_err() {
        st.metrics.queued.fetch_sub(1, Relaxed);
        return Err(ApiError::new(503, "unavailable_error", "the server is shutting down"));
    }
    match p.stream {
        true => Ok(stream(meta, rx, p.include_usage)),
        false => collect(meta, rx).await,
    }
}

/// max_tokens, or what the context leaves; past the context a 400 saying by how much.
fn fit_context(st: &AppState, n_prompt: usize, asked: Option<usize>) -> Result<usize, ApiError> {
    let room = st.n_ctx.saturating_sub(n_prompt);
    let max = asked.unwrap_or(room);
    if room == 0 || n_prompt + max > st.n_ctx {
        let msg = format!(
            "the prompt ({n_prompt} tokens) plus max_tokens ({max}) exceeds the context of {} tokens per sequence",
            st.n_ctx
        );
        let mut e = ApiError::new(400, "exceed_context_size_error", msg).with_code("exceed_context_size_error");
        e.extra = vec![("n_prompt_tokens", json!(n_prompt)), ("n_ctx", json!(st.n_ctx))];
        return Err(e);
    }
    Ok(max)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

fn finish_json(f: Finish) -> &'static str {
    match f {
        Finish::Length => "length",
        _ => "stop",
    }
}

/// The whole answer as one JSON object.
async fn collect(m: Meta, mut rx: mpsc::UnboundedReceiver<Event>) -> Result<Response, ApiError> {
    let mut text = String::new();
    loop {
        match rx.recv().await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done(f, u)) => {
                let choice = match m.kind {
                    Kind::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                                         "logprobs": null, "finish_reason": finish_json(f)}),
                    Kind::Text => json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_json(f)}),
                };
                let object = if m.kind == Kind::Chat { "chat.completion" } else { "text_completion" };
                let body = json!({"id": m.id, "object": object, "created": m.created, "model": m.model,
                                  "choices": [choice], "usage": usage_json(&u)});
                return Ok(Json(body).into_response());
            }
            Some(Event::Failed(msg)) => return Err(ApiError::new(500, "server_error", msg)),
            None => return Err(ApiError::new(500, "server_error", "the engine stopped")),
        }
    }
}

/// One chunk object: a delta of text (or the assistant role first), or the finish.
fn chunk(m: &Meta, text: Option<&str>, role: bool, finish: Option<Finish>) -> Value {
    let reason = finish.map(finish_json);
    let choice = match m.kind {
        Kind::Chat => {
            let delta = match (role, text) {
                (true, _) => json!({"role": "assistant", "content": ""}),
                (false, Some(t)) => json!({"content": t}),
                (false, None) => json!({}),
            };
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason})
        }
        Kind::Text => json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": reason}),
    };
    let object = if m.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" };
    json!({"id": m.id, "object": object, "created": m.created, "model": m.model, "choices": [choice]})
}

/// Server-sent events: the chunks, `usage` last where asked, then `[DONE]`. When the
/// client goes, the relay ends and drops the engine's channel, which cancels the sequence.
fn stream(m: Meta, rx: mpsc::UnboundedReceiver<Event>, include_usage: bool) -> Response {
    let (tx, out) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    tokio::spawn(relay(m, rx, tx, include_usage));
    let events = tokio_stream::wrappers::ReceiverStream::new(out);
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(1))).into_response()
}

async fn relay(
    m: Meta,
    mut rx: mpsc::UnboundedReceiver<Event>,
    tx: mpsc::Sender<Result<SseEvent, Infallible>>,
    include_usage: bool,
) {
    let data = |v: Value| Ok(SseEvent::default().data(v.to_string()));
    if m.kind == Kind::Chat && tx.send(data(chunk(&m, None, true, None))).await.is_err() {
        return;
    }
    loop {
        let ev = tokio::select! {
            _ = tx.closed() => return,
            ev = rx.recv() => ev,
        };
        let out = match ev {
            Some(Event::Text(t)) => vec![data(chunk(&m, Some(&t), false, None))],
            Some(Event::Done(f, u)) => {
                let mut v = vec![data(chunk(&m, None, false, Some(f)))];
                if include_usage {
                    v.push(data(json!({"id": m.id, "object": if m.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" },
                                       "created": m.created, "model": m.model, "choices": [], "usage": usage_json(&u)})));
                }
                v.push(Ok(SseEvent::default().data("[DONE]")));
                v
            }
            Some(Event::Failed(msg)) => {
                vec![data(ApiError::new(500, "server_error", msg).body()), Ok(SseEvent::default().data("[DONE]"))]
            }
            None => return,
        };
        let last = out.len() > 1;
        for e in out {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        if last {
            return;
        }
    }
}
