//! The output of `vantiq-sim query`: the rows on stdout as their answers arrive (or, with
//! `--frames`, every answer frame), a word on stderr when there is no data, and an error
//! answer as a failure that says its code and text. Nothing is kept but the last status:
//! an answer of any size passes through.

use serde_json::Value;
use std::io::Write;

/// Prints a query's answer frames as they arrive.
pub(super) struct Printer {
    frames: bool,
    status: u64,
    error: Option<Value>,
}

impl Printer {
    pub(super) fn new(frames: bool) -> Self {
        Printer {
            frames,
            status: 0,
            error: None,
        }
    }

    /// Prints one answer frame (its rows, or the frame itself with `--frames`).
    pub(super) fn frame(&mut self, frame: Value) -> std::io::Result<()> {
        self.status = frame["status"].as_u64().unwrap_or_default();
        let mut out = std::io::stdout().lock();
        if self.frames {
            writeln!(out, "{frame}")?;
        } else if self.status == 100 || self.status == 200 {
            match frame.get("body") {
                Some(Value::Array(rows)) => {
                    for row in rows {
                        writeln!(out, "{row}")?;
                    }
                }
                Some(Value::Null) | None => {}
                Some(row) => writeln!(out, "{row}")?,
            }
        }
        if self.status >= 300 {
            self.error = frame.get("body").cloned();
        }
        out.flush()
    }

    /// After the final frame: "no data (204)" on stderr, or `Err` (exit 1) for an error
    /// answer, with its code and text.
    pub(super) fn finish(self) -> Result<(), String> {
        if self.status == 204 && !self.frames {
            eprintln!("no data (204)");
        }
        if self.status >= 300 {
            let status = u16::try_from(self.status).unwrap_or(u16::MAX);
            return Err(error_text(status, self.error.as_ref()));
        }
        Ok(())
    }
}

/// "the connector answered with an error (status 400): CODE: TEXT" for each error object;
/// the body as JSON when it has neither shape.
fn error_text(status: u16, body: Option<&Value>) -> String {
    let errors: Vec<String> = match body {
        Some(Value::Array(items)) => items.iter().map(one_error).collect(),
        Some(other) => vec![one_error(other)],
        None => vec!["(no error body)".to_owned()],
    };
    format!(
        "the connector answered with an error (status {status}): {}",
        errors.join("; ")
    )
}

/// One error object as "CODE: TEXT": Vantiq's `{code, message}`, or the Java and Python
/// SDKs' `{messageCode, messageTemplate, parameters}` with the parameters put in place of
/// `{0}`, `{1}`...
fn one_error(error: &Value) -> String {
    let text = |key: &str| error.get(key).and_then(Value::as_str);
    let code = text("code").or_else(|| text("messageCode"));
    let message = text("message").map(str::to_owned).or_else(|| {
        let template = text("messageTemplate")?;
        let params = error.get("parameters").and_then(Value::as_array);
        Some(fill(template, params.map_or(&[][..], Vec::as_slice)))
    });
    match (code, message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(message)) => message,
        (None, None) => error.to_string(),
    }
}

/// Replaces `{n}` in `template` with parameter `n` (strings as they are, others as JSON).
fn fill(template: &str, params: &[Value]) -> String {
    let mut out = template.to_owned();
    for (i, p) in params.iter().enumerate() {
        let value = match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out = out.replace(&format!("{{{i}}}"), &value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_say_their_code_and_text() {
        let java = json!({"messageCode": "io.x", "messageTemplate": "Bad {0} and {1}", "parameters": ["p", 2]});
        assert_eq!(
            error_text(400, Some(&java)),
            "the connector answered with an error (status 400): io.x: Bad p and 2"
        );
        let vantiq = json!([{"code": "c1", "message": "m1"}, {"code": "c2", "message": "m2"}]);
        assert_eq!(
            error_text(500, Some(&vantiq)),
            "the connector answered with an error (status 500): c1: m1; c2: m2"
        );
        assert!(error_text(400, Some(&json!({"x": 1}))).ends_with(r#"{"x":1}"#));
        assert!(error_text(400, None).ends_with("(no error body)"));
    }
}
