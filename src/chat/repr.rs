//! Lists and dicts printed by a template (`{{ message.tool_calls }}`) as Python prints them,
//! `[{'name': 'f', 'ok': True}]`, rather than minijinja's JSON-like form: jinja2 formats a
//! printed value with Python's `str`, which is `repr` inside containers.

use minijinja::value::ValueKind;
use minijinja::{Error, Output, State, Value};

/// The environment's formatter: what Python's `str` gives for containers, None and
/// booleans; everything else as before.
pub fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::None | ValueKind::Bool => {
            out.write_str(&python_str(value)?).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Python's `str(value)`, which jinja2's string filters (`trim`, `string`) apply first.
pub fn python_str(value: &Value) -> Result<String, Error> {
    let mut s = String::new();
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => s.push_str(value.as_str().unwrap_or_default()),
        _ => repr(&mut s, value)?,
    }
    Ok(s)
}

/// jinja2's `trim`: Python's `str(value).strip(chars)`.
pub fn trim(value: &Value, chars: Option<String>) -> Result<String, Error> {
    let s = python_str(value)?;
    Ok(match chars {
        Some(c) => s.trim_matches(|x| c.contains(x)).to_string(),
        None => s.trim().to_string(),
    })
}

/// jinja2's `string` filter: Python's `str(value)`.
pub fn string(value: &Value) -> Result<String, Error> {
    python_str(value)
}

fn repr(out: &mut String, v: &Value) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::String => quoted(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, x) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(out, &x)?;
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, k) in v.try_iter()?.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr(out, &k)?;
                out.push_str(": ");
                repr(out, &v.get_item(&k)?)?;
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
    Ok(())
}

/// Python's string repr: single quotes unless the text has a single quote and no double one.
fn quoted(out: &mut String, s: &str) {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
}
