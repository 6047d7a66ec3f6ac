//! `tojson` as transformers defines it for chat templates: Python's `json.dumps` with
//! `ensure_ascii=False` by default, keys in the order given, `indent` and `separators`
//! as in Python — not Jinja's own filter, which escapes HTML characters.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// The filter: `x|tojson`, `x|tojson(indent=2)`, `x|tojson(separators=(",", ":"))`;
/// positional arguments in transformers' order (ensure_ascii, indent, separators, sort_keys).
pub fn tojson(value: Value, args: &[Value], kwargs: Kwargs) -> Result<String, Error> {
    let arg = |i: usize, name: &str| -> Result<Option<Value>, Error> {
        let kw: Option<Value> = kwargs.get(name)?;
        Ok(kw.or_else(|| args.get(i).cloned()).filter(|v| !v.is_none() && !v.is_undefined()))
    };
    let ensure_ascii = arg(0, "ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match arg(1, "indent")? {
        None => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_string()),
        Some(v) => Some(" ".repeat(i64::try_from(v)?.max(0) as usize)),
    };
    let seps = match arg(2, "separators")? {
        Some(v) => {
            let items: Vec<Value> = v.try_iter()?.collect();
            match items.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                _ => return Err(Error::new(ErrorKind::InvalidOperation, "tojson: separators must be two strings")),
            }
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let sort_keys = arg(3, "sort_keys")?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    let mut out = String::new();
    let opts = Opts { ensure_ascii, indent, seps, sort_keys };
    write(&mut out, &value, &opts, 0)?;
    Ok(out)
}

struct Opts {
    ensure_ascii: bool,
    indent: Option<String>,
    seps: (String, String),
    sort_keys: bool,
}

fn write(out: &mut String, v: &Value, o: &Opts, level: usize) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number(v)),
        ValueKind::String | ValueKind::Bytes => string(out, v.as_str().unwrap_or_default(), o.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            let parts = items.iter().map(|x| {
                let mut s = String::new();
                write(&mut s, x, o, level + 1).map(|_| s)
            });
            container(out, '[', ']', parts.collect::<Result<Vec<_>, _>>()?, o, level);
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if o.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            let mut parts = Vec::new();
            for k in keys {
                let mut s = String::new();
                string(&mut s, &k.to_string(), o.ensure_ascii);
                s.push_str(&o.seps.1);
                write(&mut s, &v.get_item(&k)?, o, level + 1)?;
                parts.push(s);
            }
            container(out, '{', '}', parts, o, level);
        }
        _ => string(out, &v.to_string(), o.ensure_ascii),
    }
    Ok(())
}

/// Items in brackets: Python's one-line form, or one item per line with `indent` per level.
fn container(out: &mut String, open: char, close: char, parts: Vec<String>, o: &Opts, level: usize) {
    out.push(open);
    if !parts.is_empty() {
        match &o.indent {
            None => out.push_str(&parts.join(&o.seps.0)),
            Some(ind) => {
                let (inner, outer) = (format!("\n{}", ind.repeat(level + 1)), format!("\n{}", ind.repeat(level)));
                out.push_str(&inner);
                out.push_str(&parts.join(&format!("{}{inner}", o.seps.0.trim_end())));
                out.push_str(&outer);
            }
        }
    }
    out.push(close);
}

/// Integers as they are, floats as Python's `repr` writes them (`1.0`, `1e-05`, `1e+16`).
fn number(v: &Value) -> String {
    // minijinja prints an integer without a point and a float always with one.
    let shown = v.to_string();
    if shown.parse::<i128>().is_ok() {
        return shown;
    }
    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Python's repr: positional from 1e-4 up to 1e16, else the shortest digits with an
    // exponent of a sign and at least two digits.
    let exp = if f == 0.0 { 0 } else { f.abs().log10().floor() as i32 };
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// A JSON string as Python writes it: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
/// control characters as `\u00XX`; non-ASCII kept, or escaped as UTF-16 with ensure_ascii.
fn string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(v: serde_json::Value, indent: Option<i64>) -> String {
        let kwargs = match indent {
            Some(i) => Kwargs::from_iter([("indent", Value::from(i))]),
            None => Kwargs::from_iter(std::iter::empty::<(&str, Value)>()),
        };
        tojson(Value::from_serialize(&v), &[], kwargs).unwrap()
    }

    /// Expected strings are what CPython 3.11's json.dumps(x, ensure_ascii=False[, indent=2]) prints.
    #[test]
    fn writes_what_python_json_dumps_writes() {
        let v = serde_json::json!({"b": 1, "a": [1.5, "é\"\n", null, true], "c": {}, "d": [], "e": 1e-5, "f": 2.0});
        assert_eq!(
            dumps(v.clone(), None),
            r#"{"b": 1, "a": [1.5, "é\"\n", null, true], "c": {}, "d": [], "e": 1e-05, "f": 2.0}"#
        );
        assert_eq!(
            dumps(serde_json::json!({"x": [1, {"y": "z"}], "w": []}), Some(2)),
            "{\n  \"x\": [\n    1,\n    {\n      \"y\": \"z\"\n    }\n  ],\n  \"w\": []\n}"
        );
        assert_eq!(dumps(serde_json::json!("\u{1}<>&'"), None), r#""\u0001<>&'""#);
    }
}
