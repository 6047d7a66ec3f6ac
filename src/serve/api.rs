//! The OpenAI request bodies, read field by field so that every mistake gets its own
//! 400 naming the field (as OpenAI's API answers), and the error object every failure
//! is reported as: `{"error": {"message", "type", "param", "code"}}`.

use serde_json::{json, Map, Value};

use crate::sampler::SamplerConfig;

/// A failed request: the HTTP status and OpenAI's error object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI's `type`: invalid_request_error, authentication_error, …
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Further fields of the error object (`n_prompt_tokens`, `n_ctx`).
    pub extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, param: None, code: None, extra: Vec::new() }
    }

    /// A 400 about one field of the request.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(400, "invalid_request_error", message);
        e.param = Some(param.to_string());
        e
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// `{"error": {...}}`
    pub fn body(&self) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), json!(self.message));
        e.insert("type".into(), json!(self.kind));
        e.insert("param".into(), json!(self.param));
        e.insert("code".into(), json!(self.code));
        e.extend(self.extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        json!({ "error": e })
    }
}

/// What every generation request carries besides its prompt.
#[derive(Debug, Clone)]
pub struct GenParams {
    /// None: until the context is full.
    pub max_tokens: Option<usize>,
    pub sampling: SamplerConfig,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

fn number(body: &Value, name: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
            Some(x) => Err(ApiError::invalid(name, format!("'{name}' must be between {lo} and {hi}, not {x}"))),
            None => Err(ApiError::invalid(name, format!("'{name}' must be a number, not {v}"))),
        },
    }
}

fn integer(body: &Value, name: &str, lo: i64) -> Result<Option<i64>, ApiError> {
    match field(body, name) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(x) if x >= lo => Ok(Some(x)),
            Some(x) => Err(ApiError::invalid(name, format!("'{name}' must be at least {lo}, not {x}"))),
            None => Err(ApiError::invalid(name, format!("'{name}' must be an integer, not {v}"))),
        },
    }
}

fn boolean(body: &Value, name: &str) -> Result<bool, ApiError> {
    match field(body, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(ApiError::invalid(name, format!("'{name}' must be true or false, not {v}"))),
    }
}

/// `stop`: a string or a list of up to four strings.
fn stops(body: &Value) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid("stop", "'stop' must be a string or a list of up to 4 strings");
    let list = match field(body, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.len() <= 4 => {
            a.iter().map(|s| s.as_str().map(str::to_string).ok_or_else(bad)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(bad()),
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// The sampling and length fields of a completion request; unknown fields are ignored.
/// Defaults are llama.cpp's (as `lanterna run`), the seed the clock's.
pub fn gen_params(body: &Value) -> Result<GenParams, ApiError> {
    if !body.is_object() {
        return Err(ApiError::new(400, "invalid_request_error", "the request body must be a JSON object"));
    }
    if let Some(n) = integer(body, "n", 1)? {
        if n != 1 {
            return Err(ApiError::invalid("n", format!("only n = 1 is supported, not {n}")));
        }
    }
    let max = match integer(body, "max_completion_tokens", 1)? {
        Some(m) => Some(m),
        None => integer(body, "max_tokens", 1)?,
    };
    let d = SamplerConfig::default();
    let seed = match integer(body, "seed", i64::MIN)? {
        Some(s) => s as u64,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_nanos() as u64),
    };
    let sampling = SamplerConfig {
        temperature: number(body, "temperature", 0.0, 2.0)?.map_or(d.temperature, |x| x as f32),
        top_k: integer(body, "top_k", 0)?.map_or(d.top_k, |x| x as usize),
        top_p: number(body, "top_p", 0.0, 1.0)?.map_or(d.top_p, |x| x as f32),
        min_p: number(body, "min_p", 0.0, 1.0)?.map_or(d.min_p, |x| x as f32),
        repeat_penalty: number(body, "repeat_penalty", 0.0, 10.0)?.map_or(d.repeat_penalty, |x| x as f32),
        repeat_last_n: d.repeat_last_n,
        seed,
    };
    let include_usage = match field(body, "stream_options") {
        None => false,
        Some(o) if o.is_object() => boolean(o, "include_usage")?,
        Some(_) => return Err(ApiError::invalid("stream_options", "'stream_options' must be an object")),
    };
    Ok(GenParams {
        max_tokens: max.map(|m| m as usize),
        sampling,
        stop: stops(body)?,
        stream: boolean(body, "stream")?,
        include_usage,
    })
}

/// `messages` of a chat request, checked as `lanterna run --messages` checks a file.
pub fn messages(body: &Value) -> Result<Value, ApiError> {
    let m = field(body, "messages").ok_or_else(|| ApiError::invalid("messages", "'messages' is required"))?;
    if !m.is_array() {
        return Err(ApiError::invalid("messages", "'messages' must be an array of messages"));
    }
    crate::chat::parse_messages(&m.to_string(), "'messages'").map_err(|e| ApiError::invalid("messages", e.to_string()))
}

/// `prompt` of a completion request: a string, or a list holding one string.
pub fn prompt(body: &Value) -> Result<String, ApiError> {
    let bad = || ApiError::invalid("prompt", "'prompt' must be a non-empty string (or a list of one)");
    let p = match field(body, "prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_str().ok_or_else(bad)?.to_string(),
        _ => return Err(bad()),
    };
    if p.is_empty() {
        return Err(bad());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_field_is_named() {
        let param = |v: Value| gen_params(&v).unwrap_err().param.unwrap();
        assert_eq!(param(json!({"max_tokens": -1})), "max_tokens");
        assert_eq!(param(json!({"temperature": "hot"})), "temperature");
        assert_eq!(param(json!({"n": 5})), "n");
        assert_eq!(param(json!({"stop": 3})), "stop");
        assert_eq!(param(json!({"stream": "yes"})), "stream");
        assert_eq!(messages(&json!({"messages": []})).unwrap_err().param.unwrap(), "messages");
        assert!(messages(&json!({"messages": [{"role": "wizard", "content": "hi"}]})).is_err());
        assert!(messages(&json!({"messages": [{"role": "user", "content": 7}]})).is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let p = gen_params(&json!({"temperature": 0, "seed": 3, "stop": "x", "max_completion_tokens": 5,
                                   "stream": true, "stream_options": {"include_usage": true}, "whatever": 1}))
        .unwrap();
        assert_eq!((p.sampling.temperature, p.sampling.seed, p.max_tokens), (0.0, 3, Some(5)));
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert!(p.stream && p.include_usage);
        assert_eq!(gen_params(&json!({})).unwrap().sampling.top_k, SamplerConfig::default().top_k);
    }
}
