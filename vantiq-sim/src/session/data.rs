//! What a connected session receives: notifications (checked, recorded, acknowledged) and
//! query answers (handed to the state, which matches them to their queries).

use super::Session;
use crate::types::kinds;
use crate::wire;
use serde_json::{Map, Value};

impl Session {
    pub(super) fn on_notification(
        &mut self,
        map: &Map<String, Value>,
        object: Option<Value>,
        text: &str,
    ) {
        let Some(entry) = self.bound.clone() else {
            let kind = if self.user.is_none() {
                kinds::NOT_AUTHENTICATED
            } else {
                kinds::NOT_CONNECTED
            };
            self.violation(
                kind,
                format!(
                    "notification before the handshake finished: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_notification("The handshake has not finished.");
        };
        let problem = match (
            map.get("resourceName").and_then(Value::as_str),
            map.get("resourceId").and_then(Value::as_str),
            &object,
        ) {
            (Some("sources"), Some(id), Some(Value::Object(_))) if id == entry.name => None,
            (Some("sources"), Some(id), _) if id != entry.name => Some((
                kinds::NOTIFICATION_WRONG_SOURCE,
                format!(
                    "notification for source {id:?} on the socket of {:?}: {}",
                    entry.name,
                    wire::excerpt(text)
                ),
            )),
            (Some("sources"), Some(_), Some(other)) => Some((
                kinds::NOTIFICATION_NOT_OBJECT,
                format!(
                    "a notification's object must be a JSON object, not {}: {}",
                    json_type(other),
                    wire::excerpt(text)
                ),
            )),
            _ => Some((
                kinds::BAD_SHAPE,
                format!(
                    "a notification needs resourceName \"sources\", resourceId and object: {}",
                    wire::excerpt(text)
                ),
            )),
        };
        if let Some((kind, detail)) = problem {
            self.violation(kind, detail);
            return self.reject_notification("Malformed notification.");
        }
        let count = self
            .core
            .record_notification(&entry, object.unwrap_or_default());
        self.notified = Some(count);
        if self.core.acks() {
            self.acks += 1;
        }
    }

    fn reject_notification(&self, message: &str) {
        if self.core.acks() {
            self.reply(wire::error_status(
                400,
                "io.vantiq.sim.invalidNotification",
                message,
            ));
        }
    }

    pub(super) fn on_answer(&mut self, frame: Value, text: &str) {
        let Some(entry) = self.bound.clone() else {
            return self.violation(
                kinds::NOT_CONNECTED,
                format!(
                    "a status message before the handshake finished: {}",
                    wire::excerpt(text)
                ),
            );
        };
        self.core.answer_query(&entry, &self.link, frame, text);
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
