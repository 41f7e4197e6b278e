//! The output of `vantiq-sim query`: the rows on stdout (or, with `--frames`, every answer
//! frame), a word on stderr when there is no data, and an error answer as a failure that
//! says its code and text.

use super::print_lines;
use serde_json::Value;
use vantiq_sim::QueryOutcome;

/// Prints a query's outcome; `Err` (exit 1) for an error answer, with its code and text.
pub(super) fn print(outcome: &QueryOutcome, frames: bool) -> Result<(), String> {
    if frames {
        print_lines(&outcome.frames)?;
    } else {
        print_lines(&outcome.rows)?;
        if outcome.status == 204 {
            eprintln!("no data (204)");
        }
    }
    if outcome.status >= 300 {
        return Err(error_text(outcome.status, outcome.error.as_ref()));
    }
    Ok(())
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
