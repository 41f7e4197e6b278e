//! The server's side of the wire format: building the messages the emulator sends, and the
//! reply addresses it gives queries. Frames are serialised once, into tungstenite messages
//! that are cheap to clone, so sending costs no further encoding.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The acknowledgement sent for each notification.
pub(crate) fn ack() -> Message {
    Message::Text(Utf8Bytes::from_static(r#"{"status":200}"#))
}

/// A plain status message (the first answer to `connectExtension`).
pub(crate) fn status_ok() -> Message {
    ack()
}

/// An error status with the body shape Vantiq uses: `[{"code":..,"message":..}]`.
pub(crate) fn error_status(status: u16, code: &str, message: &str) -> Message {
    text(&json!({"status": status, "body": [{"code": code, "message": message}]}))
}

/// The answer to a successful `validate`/`authenticate`: status 200 with session info.
pub(crate) fn auth_ok(session_id: u64, username: &str) -> Message {
    text(&json!({
        "status": 200,
        "body": {
            "sessionId": format!("sim-session-{session_id}"),
            "username": username,
            "namespace": "sim",
            "server": "vantiq-sim",
        }
    }))
}

/// `configureExtension` carrying a source's configuration document.
pub(crate) fn configure_extension(source: &str, config: &Value) -> Message {
    text(&json!({
        "op": "configureExtension",
        "resourceName": "sources",
        "resourceId": source,
        "object": {"config": config},
    }))
}

/// `reconnectRequired` for a source.
pub(crate) fn reconnect_required(source: &str) -> Message {
    text(&json!({"op": "reconnectRequired", "resourceName": "sources", "resourceId": source}))
}

/// A query request with its reply address.
pub(crate) fn query(source: &str, params: &Value, reply_addr: &str) -> Message {
    Message::Text(Utf8Bytes::from(query_text(source, params, reply_addr)))
}

/// The text of a query request (keys in sorted order: `messageHeaders` comes first).
pub(crate) fn query_text(source: &str, params: &Value, reply_addr: &str) -> String {
    json!({
        "op": "query",
        "resourceName": "sources",
        "resourceId": source,
        "object": params,
        "messageHeaders": {"REPLY_ADDR_HEADER": reply_addr},
    })
    .to_string()
}

/// The constant beginning of a source's publish messages, so each publish only serialises
/// its object: `{"op":"publish","resourceName":"sources","resourceId":"<src>","object":`.
pub(crate) fn publish_prefix(source: &str) -> String {
    let name = serde_json::to_string(source).expect("a string always serialises");
    format!(r#"{{"op":"publish","resourceName":"sources","resourceId":{name},"object":"#)
}

/// A publish message: the source's prefix, the object, and the closing brace.
pub(crate) fn publish(prefix: &str, object: &Value) -> Message {
    let mut buf = Vec::with_capacity(prefix.len() + 64);
    buf.extend_from_slice(prefix.as_bytes());
    serde_json::to_writer(&mut buf, object).expect("a Value always serialises");
    buf.push(b'}');
    let text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    Message::Text(Utf8Bytes::from(text))
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

const REPLY_PREFIX: &str = "sim-reply-";

/// The reply address of query number `id`; unique for the emulator's lifetime.
pub(crate) fn reply_address(id: u64) -> String {
    format!("{REPLY_PREFIX}{id}")
}

/// A reply address with `tail` in place of the query number (for frame templates).
pub(crate) fn reply_address_with(tail: &str) -> String {
    format!("{REPLY_PREFIX}{tail}")
}

/// The query number in a reply address, if the emulator could have issued it.
pub(crate) fn parse_reply_address(addr: &str) -> Option<u64> {
    addr.strip_prefix(REPLY_PREFIX)?.parse().ok()
}

/// A short excerpt of a message for violation reports (whole messages can be megabytes).
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(m: &Message) -> Value {
        serde_json::from_str(m.to_text().unwrap()).unwrap()
    }

    #[test]
    fn publish_frame_is_the_protocol_shape() {
        let prefix = publish_prefix("we\"ird");
        let m = publish(&prefix, &json!({"a": [1, 2]}));
        assert_eq!(
            parse(&m),
            json!({"op":"publish","resourceName":"sources","resourceId":"we\"ird","object":{"a":[1,2]}})
        );
    }

    #[test]
    fn reply_addresses_round_trip() {
        assert_eq!(parse_reply_address(&reply_address(42)), Some(42));
        assert_eq!(parse_reply_address("nope"), None);
        assert_eq!(parse_reply_address("sim-reply-x"), None);
    }

    #[test]
    fn excerpt_cuts_on_char_boundary() {
        let s = "é".repeat(300);
        let e = excerpt(&s);
        assert!(e.ends_with("(600 bytes)"));
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn error_status_has_code_and_message() {
        let v = parse(&error_status(401, "c", "m"));
        assert_eq!(v, json!({"status":401,"body":[{"code":"c","message":"m"}]}));
    }
}
