//! Rendering a chat template as transformers' `apply_chat_template` does: jinja2 with
//! `trim_blocks` and `lstrip_blocks`, loop controls, `raise_exception`, `strftime_now`,
//! its own `tojson`, Python's string and dict methods, and the special tokens as variables.

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

use crate::error::{Error, Result};

/// What a template sees besides its own text.
pub struct ChatInputs<'a> {
    /// OpenAI-style messages, as given (content a string or a list of parts).
    pub messages: &'a serde_json::Value,
    /// Tool definitions, or None (the template sees `none`).
    pub tools: Option<&'a serde_json::Value>,
    pub add_generation_prompt: bool,
    pub bos_token: &'a str,
    pub eos_token: &'a str,
}

/// The environment transformers configures for chat templates.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, JinjaError> {
        Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", strftime_now);
    env.add_filter("tojson", super::json::tojson);
    env.add_filter("trim", super::repr::trim);
    env.add_filter("string", super::repr::string);
    env.set_formatter(super::repr::formatter);
    env
}

/// The local time in a Python strftime format (`%d %b %Y`); an unknown directive is an error.
fn strftime_now(format: String) -> std::result::Result<String, JinjaError> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", chrono::Local::now().format(&format))
        .map_err(|_| JinjaError::new(ErrorKind::InvalidOperation, format!("strftime_now: bad format '{format}'")))?;
    Ok(out)
}

/// `template` (named `name` in errors) rendered with `inputs`, byte for byte.
pub fn render(name: &str, template: &str, inputs: &ChatInputs<'_>) -> Result<String> {
    let env = environment();
    let fail = |e: JinjaError| {
        // The template's own message (raise_exception) or minijinja's, with the line.
        let msg = match e.kind() {
            ErrorKind::InvalidOperation => e.detail().unwrap_or("error").to_string(),
            _ => format!("{}{}", e.kind(), e.detail().map(|d| format!(": {d}")).unwrap_or_default()),
        };
        Error::Template { template: name.to_string(), line: e.line(), msg }
    };
    let tmpl = env.template_from_str(template).map_err(fail)?;
    let ctx = minijinja::context! {
        messages => Value::from_serialize(inputs.messages),
        tools => inputs.tools.map(Value::from_serialize),
        add_generation_prompt => inputs.add_generation_prompt,
        bos_token => inputs.bos_token,
        eos_token => inputs.eos_token,
    };
    tmpl.render(ctx).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &str, messages: serde_json::Value) -> Result<String> {
        let inputs = ChatInputs {
            messages: &messages,
            tools: None,
            add_generation_prompt: true,
            bos_token: "<s>",
            eos_token: "</s>",
        };
        render("test", t, &inputs)
    }

    #[test]
    fn blocks_trim_loops_break_and_python_methods_work() {
        let m = serde_json::json!([{"role": "user", "content": "  hi  "}, {"role": "assistant", "content": "yo"}]);
        let t = "{{ bos_token }}\n  {% for m in messages %}\n    {% if loop.index > 1 %}{% break %}{% endif %}\n[{{ m.content.strip() }}]\n  {% endfor %}\n{% for k, v in messages[0].items() %}{{ k }}={{ v|tojson }};{% endfor %}\n{{ messages[::-1][0]['role'] }}";
        // As jinja2 3.1 renders it with trim_blocks and lstrip_blocks: the newline after
        // `}}` stays, those after block tags and the indentation before them go.
        assert_eq!(run(t, m).unwrap(), "<s>\n[hi]\nrole=\"user\";content=\"  hi  \";assistant");
    }

    #[test]
    fn raise_exception_names_the_line_and_the_message() {
        let t = "ok\n{% if messages|length > 0 %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}";
        let e = run(t, serde_json::json!([{"role": "user", "content": "x"}])).unwrap_err().to_string();
        assert_eq!(e, "chat template test, line 2: Conversation roles must alternate");
        let e = run("{% for %}", serde_json::json!([])).unwrap_err().to_string();
        assert!(e.starts_with("chat template test, line 1: syntax error"), "{e}");
    }

    /// What CPython's jinja2 prints for the same template (checked with jinja2 3.1).
    #[test]
    fn printed_containers_look_as_python_prints_them() {
        let t = "{{ messages[0] }} {{ [none, true, 1.5, \"it's\", 'a\\nb'] }} {{ true }} {{ none }}";
        let m = serde_json::json!([{"role": "user", "content": "x"}]);
        assert_eq!(
            run(t, m).unwrap(),
            r#"{'role': 'user', 'content': 'x'} [None, True, 1.5, "it's", 'a\nb'] True None"#
        );
    }

    #[test]
    fn strftime_now_formats_the_local_date() {
        let s = run("{{ strftime_now('%Y') }}", serde_json::json!([])).unwrap();
        assert_eq!(s, chrono::Local::now().format("%Y").to_string());
    }
}
