//! Checking a connector's query answers: which statuses end a query, which rows an answer
//! carries, and what is wrong with its body. Pure functions, shared by the ordinary query
//! path (`state.rs`) and the query load generator (`load.rs`), so both judge answers alike.

use crate::types::kinds;
use crate::wire;
use serde_json::Value;

/// Whether an answer with `status` is a query's last: 200, 204 and errors end it; 100 (a
/// partial answer with more to come) does not.
pub(crate) fn is_final(status: u64) -> bool {
    status == 200 || status == 204 || status >= 300
}

/// The problems with an answer's status and body; empty when it is well-formed. `raw` is
/// the whole message, excerpted into the details.
pub(crate) fn problems(
    status: u64,
    body: Option<&Value>,
    raw: &str,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match status {
        100 | 200 => match body {
            Some(Value::Object(_)) => {}
            Some(Value::Array(rows)) => {
                if rows.iter().any(|r| !r.is_object()) {
                    out.push((
                        kinds::BAD_BODY,
                        format!("rows must be objects: {}", wire::excerpt(raw)),
                    ));
                }
            }
            Some(Value::Null) | None => out.push((
                kinds::BAD_BODY,
                format!(
                    "status {status} needs a body (use 204 for no data): {}",
                    wire::excerpt(raw)
                ),
            )),
            Some(_) => out.push((
                kinds::BAD_BODY,
                format!(
                    "a body must be an object or a list of objects: {}",
                    wire::excerpt(raw)
                ),
            )),
        },
        204 => {}
        s if s >= 300 => {
            let well_formed = match body {
                Some(Value::Object(_)) => true,
                Some(Value::Array(items)) => items.iter().all(Value::is_object),
                _ => false,
            };
            if !well_formed {
                out.push((
                    kinds::BAD_BODY,
                    format!(
                        "an error answer's body must be an error object or a list of them: {}",
                        wire::excerpt(raw)
                    ),
                ));
            }
        }
        _ => out.push((
            kinds::BAD_STATUS,
            format!(
                "status {status} is not a query answer status (100, 200, 204, >= 300): {}",
                wire::excerpt(raw)
            ),
        )),
    }
    out
}

/// Appends the rows an answer carries: for 100 and 200, an object body is one row and a
/// list body contributes each element (malformed ones too, so a test can see them); a
/// scalar body is kept as one row. Other statuses carry none.
pub(crate) fn push_rows(status: u64, body: Option<&Value>, rows: &mut Vec<Value>) {
    if status != 100 && status != 200 {
        return;
    }
    match body {
        Some(Value::Array(items)) => rows.extend(items.iter().cloned()),
        Some(Value::Null) | None => {}
        Some(other) => rows.push(other.clone()),
    }
}

/// How many rows [`push_rows`] would append, without copying them.
pub(crate) fn row_count(status: u64, body: Option<&Value>) -> usize {
    if status != 100 && status != 200 {
        return 0;
    }
    match body {
        Some(Value::Array(items)) => items.len(),
        Some(Value::Null) | None => 0,
        Some(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn final_statuses() {
        assert!(!is_final(100));
        assert!(is_final(200) && is_final(204) && is_final(300) && is_final(500));
        assert!(
            !is_final(201),
            "201 is not an answer status, so it ends nothing"
        );
    }

    #[test]
    fn well_formed_answers_have_no_problems() {
        assert!(problems(200, Some(&json!([{"a": 1}])), "").is_empty());
        assert!(problems(100, Some(&json!({"a": 1})), "").is_empty());
        assert!(problems(204, None, "").is_empty());
        assert!(problems(400, Some(&json!([{"code": "x", "message": "y"}])), "").is_empty());
    }

    #[test]
    fn malformed_answers_are_named() {
        let kind = |s, b: Option<Value>| problems(s, b.as_ref(), "raw")[0].0;
        assert_eq!(kind(200, None), kinds::BAD_BODY);
        assert_eq!(kind(200, Some(json!([1]))), kinds::BAD_BODY);
        assert_eq!(kind(200, Some(json!("text"))), kinds::BAD_BODY);
        assert_eq!(kind(500, Some(json!("boom"))), kinds::BAD_BODY);
        assert_eq!(kind(201, Some(json!({}))), kinds::BAD_STATUS);
    }

    #[test]
    fn rows_are_counted_as_they_are_kept() {
        for (status, body) in [
            (200, Some(json!([{"a": 1}, {"a": 2}]))),
            (100, Some(json!({"a": 1}))),
            (200, Some(json!(7))),
            (200, None),
            (204, None),
            (400, Some(json!([{"code": "x"}]))),
        ] {
            let mut rows = Vec::new();
            push_rows(status, body.as_ref(), &mut rows);
            assert_eq!(
                rows.len(),
                row_count(status, body.as_ref()),
                "{status} {body:?}"
            );
        }
    }
}
