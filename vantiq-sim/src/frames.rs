//! The emulator's wire format as text, for load generators that speak to connectors
//! without the emulator's sessions (the benchmark's load server, `bench/src/loadsrv`).
//!
//! The frames are those the emulator itself sends ([`crate::Sim`]'s sessions build them with
//! the same functions), and what a connector sends back is judged by the same rules: a
//! notification as the session checks it, a query answer as [`crate::Sim::query`] and the
//! query load generator check it. Both readers borrow from the frame and skip the objects
//! they carry, so no JSON tree is built per message: a load generator can keep up with a
//! fast connector.

use crate::answers::{self, Shape};
use crate::types::kinds;
use crate::wire;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// The acknowledgement of a notification: `{"status":200}`.
pub fn ack() -> &'static str {
    r#"{"status":200}"#
}

/// The answer to a successful `validate` or `authenticate`.
pub fn auth_ok(session_id: u64, username: &str) -> String {
    text(wire::auth_ok(session_id, username))
}

/// The answer to a refused `validate`: status 401 with an error body.
pub fn auth_refused() -> String {
    text(wire::error_status(
        401,
        "io.vantiq.authentication.failed",
        "Authentication failed.",
    ))
}

/// An error status for a refused `connectExtension`.
pub fn connect_refused(message: &str) -> String {
    text(wire::error_status(
        400,
        "io.vantiq.sim.connectRefused",
        message,
    ))
}

/// The answer to a malformed notification (in place of its acknowledgement), as the
/// emulator sends it.
pub fn notification_refused() -> String {
    text(wire::error_status(
        400,
        "io.vantiq.sim.invalidNotification",
        "Malformed notification.",
    ))
}

/// `configureExtension` carrying a source's configuration document.
pub fn configure_extension(source: &str, config: &Value) -> String {
    text(wire::configure_extension(source, config))
}

/// A query request for `source` with parameters `params` and reply address `reply_addr`.
pub fn query(source: &str, params: &Value, reply_addr: &str) -> String {
    wire::query_text(source, params, reply_addr)
}

/// The constant beginning of a source's publish frames; a publish is this, the object's
/// JSON text and `}`.
pub fn publish_prefix(source: &str) -> String {
    wire::publish_prefix(source)
}

/// The reply address of query number `id`.
pub fn reply_address(id: u64) -> String {
    wire::reply_address(id)
}

/// The query number in a reply address, if the emulator's scheme could have issued it.
pub fn parse_reply_address(addr: &str) -> Option<u64> {
    wire::parse_reply_address(addr)
}

/// A short excerpt of a frame, for reports (whole frames can be megabytes).
pub fn excerpt(text: &str) -> String {
    wire::excerpt(text)
}

fn text(msg: tokio_tungstenite::tungstenite::Message) -> String {
    msg.into_text()
        .expect("the emulator builds text frames")
        .as_str()
        .to_owned()
}

/// Something wrong with what a connector sent: its kind (one of [`kinds`]) and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The kind, as in [`crate::Violation::kind`].
    pub kind: &'static str,
    /// What was wrong, with an excerpt of the frame.
    pub detail: String,
}

/// A query answer read without building a JSON tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The status.
    pub status: u64,
    /// `headers.X-Reply-Address`.
    pub addr: Cow<'a, str>,
    body: Shape,
}

impl Answer<'_> {
    /// Whether the answer ends its query (200, 204 or an error).
    pub fn is_final(&self) -> bool {
        answers::is_final(self.status)
    }

    /// The rows it carries (as [`crate::Sim::query`] would count them).
    pub fn rows(&self) -> usize {
        answers::row_count(self.status, self.body)
    }

    /// What is wrong with its status and body; empty when it is well-formed. `raw` is the
    /// whole frame, excerpted into the details.
    pub fn problems(&self, raw: &str) -> Vec<Problem> {
        answers::problems(self.status, self.body, raw)
            .into_iter()
            .map(|(kind, detail)| Problem { kind, detail })
            .collect()
    }
}

/// Reads `text` as a query answer, if it plainly is one (an object with an integer
/// `status`, a string reply address and no `op`).
pub fn read_answer(text: &str) -> Option<Answer<'_>> {
    let view = answers::read_answer(text)?;
    Some(Answer {
        status: view.status,
        addr: view.addr,
        body: view.body,
    })
}

/// Checks notifications for one source, as the emulator's session does (see
/// [`NotificationCheck::check`]).
#[derive(Debug, Clone)]
pub struct NotificationCheck {
    source: String,
    /// `{"op":"notification","resourceName":"sources","resourceId":<source>,"object":`: the
    /// beginning of a notification written in the protocol's order, for which only the
    /// object needs reading.
    prefix: String,
}

impl NotificationCheck {
    /// A check of notifications for `source`.
    pub fn new(source: &str) -> NotificationCheck {
        NotificationCheck {
            prefix: format!(
                r#"{{"op":"notification","resourceName":"sources","resourceId":{},"object":"#,
                Value::from(source)
            ),
            source: source.to_owned(),
        }
    }

    /// `None` when `text` is not a notification at all (no `op` `"notification"`), else
    /// whether it is a well-formed one for the source (`resourceName` `"sources"`,
    /// `resourceId` the source, an object).
    pub fn check(&self, text: &str) -> Option<Result<(), Problem>> {
        // The frame is the prefix, one JSON value and the closing brace: it is a
        // well-formed notification exactly when that value is an object.
        if let Some(object) = text
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_suffix('}'))
        {
            // One JSON value that begins with `{` is an object; skipping it checks it.
            if object.trim_start().starts_with('{')
                && serde_json::from_str::<IgnoredAny>(object).is_ok()
            {
                return Some(Ok(()));
            }
        }
        check_notification(text, &self.source)
    }
}

/// Checks `text` as a notification for `source`, as the emulator's session does: `None`
/// when it is not a notification at all (no `op` `"notification"`), else whether it is a
/// well-formed one (`resourceName` `"sources"`, `resourceId` the source, an object).
pub fn check_notification(text: &str, source: &str) -> Option<Result<(), Problem>> {
    let fields = match serde_json::from_str::<Fields<'_>>(text) {
        Ok(fields) => fields,
        // Not plainly readable (bad JSON, a repeated key...): judged on the parsed tree.
        Err(_) => return check_tree(text, source),
    };
    if fields.op.as_deref() != Some("notification") {
        return None;
    }
    Some(judge(
        fields.resource_name.as_deref(),
        fields.resource_id.as_deref(),
        fields.object,
        source,
        text,
    ))
}

fn check_tree(text: &str, source: &str) -> Option<Result<(), Problem>> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Some(Err(Problem {
                kind: kinds::INVALID_JSON,
                detail: format!("not JSON ({e}): {}", wire::excerpt(text)),
            }))
        }
    };
    if value.get("op").and_then(Value::as_str) != Some("notification") {
        return None;
    }
    let object = value.get("object").map(|o| Shape::of(Some(o)));
    Some(judge(
        value.get("resourceName").and_then(Value::as_str),
        value.get("resourceId").and_then(Value::as_str),
        object,
        source,
        text,
    ))
}

/// The session's rules for a notification (see `session/data.rs`).
fn judge(
    resource_name: Option<&str>,
    resource_id: Option<&str>,
    object: Option<Shape>,
    source: &str,
    text: &str,
) -> Result<(), Problem> {
    let (kind, detail) = match (resource_name, resource_id, object) {
        (Some("sources"), Some(id), Some(Shape::Object)) if id == source => return Ok(()),
        (Some("sources"), Some(id), _) if id != source => (
            kinds::NOTIFICATION_WRONG_SOURCE,
            format!(
                "notification for source {id:?} on the socket of {source:?}: {}",
                wire::excerpt(text)
            ),
        ),
        (Some("sources"), Some(_), Some(_)) => (
            kinds::NOTIFICATION_NOT_OBJECT,
            format!(
                "a notification's object must be a JSON object: {}",
                wire::excerpt(text)
            ),
        ),
        _ => (
            kinds::BAD_SHAPE,
            format!(
                "a notification needs resourceName \"sources\", resourceId and object: {}",
                wire::excerpt(text)
            ),
        ),
    };
    Err(Problem { kind, detail })
}

/// The fields of a request a notification check needs; the object is only measured.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "resourceName")]
    resource_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "resourceId")]
    resource_id: Option<Cow<'a, str>>,
    #[serde(default)]
    object: Option<Shape>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(text: &str) -> Option<Result<(), &'static str>> {
        let plain = check_notification(text, "src").map(|r| r.map_err(|p| p.kind));
        let checked = NotificationCheck::new("src")
            .check(text)
            .map(|r| r.map_err(|p| p.kind));
        assert_eq!(plain, checked, "both checks judge {text} alike");
        plain
    }

    #[test]
    fn notifications_are_judged_as_the_session_judges_them() {
        let n = |v: Value| v.to_string();
        assert_eq!(
            kind(&n(
                json!({"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":[1,{"b":2}]}})
            )),
            Some(Ok(()))
        );
        assert_eq!(
            kind(&n(
                json!({"op":"notification","resourceName":"sources","resourceId":"other","object":{}})
            )),
            Some(Err(kinds::NOTIFICATION_WRONG_SOURCE))
        );
        for object in [json!([1]), json!(1.5), json!("x"), Value::Null] {
            let text = n(
                json!({"op":"notification","resourceName":"sources","resourceId":"src","object":object}),
            );
            let expected = if object.is_null() {
                kinds::BAD_SHAPE
            } else {
                kinds::NOTIFICATION_NOT_OBJECT
            };
            assert_eq!(kind(&text), Some(Err(expected)), "{text}");
        }
        assert_eq!(
            kind(r#"{"op":"notification","resourceId":"src","object":{}}"#),
            Some(Err(kinds::BAD_SHAPE))
        );
        // A repeated key is read from the tree (the last one wins, as in the session).
        assert_eq!(
            kind(
                r#"{"op":"notification","resourceName":"sources","resourceId":"x","resourceId":"src","object":{}}"#
            ),
            Some(Ok(()))
        );
        assert_eq!(
            kind("{not json"),
            Some(Err(kinds::INVALID_JSON)),
            "bad JSON is reported, not skipped"
        );
        // In the protocol's order (the check's quick path), with what could fool a prefix.
        for (text, expected) in [
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":1}}"#,
                Some(Ok(())),
            ),
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":1},"x":2}"#,
                Some(Ok(())),
            ),
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":1}}}"#,
                Some(Err(kinds::INVALID_JSON)),
            ),
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":[{}]}"#,
                Some(Err(kinds::NOTIFICATION_NOT_OBJECT)),
            ),
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":1} }"#,
                Some(Ok(())),
            ),
            (
                r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"a":}}"#,
                Some(Err(kinds::INVALID_JSON)),
            ),
        ] {
            assert_eq!(kind(text), expected, "{text}");
        }
        assert_eq!(kind(r#"{"status":200}"#), None);
        assert_eq!(kind(r#"{"op":"query"}"#), None);
    }

    #[test]
    fn answers_are_read_with_their_rows_and_problems() {
        let a = read_answer(r#"{"status":200,"headers":{"X-Reply-Address":"sim-reply-7"},"body":[{"i":0},{"i":1}]}"#)
            .expect("an answer");
        assert!(a.is_final());
        assert_eq!((a.rows(), parse_reply_address(&a.addr)), (2, Some(7)));
        assert!(a.problems("").is_empty());
        let bad = read_answer(r#"{"status":200,"headers":{"X-Reply-Address":"a"},"body":[1]}"#)
            .expect("an answer");
        assert_eq!(bad.problems("raw")[0].kind, kinds::BAD_BODY);
    }

    #[test]
    fn frames_are_the_emulators() {
        let q = query("src", &json!({"op":"rows"}), &reply_address(3));
        let v: Value = serde_json::from_str(&q).unwrap();
        assert_eq!(v["messageHeaders"]["REPLY_ADDR_HEADER"], "sim-reply-3");
        let p: Value =
            serde_json::from_str(&format!("{}{}}}", publish_prefix("src"), r#"{"i":1}"#)).unwrap();
        assert_eq!(
            p,
            json!({"op":"publish","resourceName":"sources","resourceId":"src","object":{"i":1}})
        );
        let c: Value = serde_json::from_str(&configure_extension("src", &json!({"k":1}))).unwrap();
        assert_eq!(c["object"]["config"]["k"], 1);
        let auth: Value = serde_json::from_str(&auth_ok(1, "u")).unwrap();
        assert_eq!(auth["status"], 200);
        assert_eq!(ack(), wire::ack().to_text().unwrap());
    }
}
