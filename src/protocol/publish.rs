//! Publishes, the hot path of a connector that is sent events: the frame of
//! the documented shape read without a general parse, and the decoding of
//! [`Publishes::Raw`], where the object is kept as its text.

use serde_json::value::RawValue;
use serde_json::Value;

use super::message::{
    classify, decode_request, decode_status, DecodeError, Publishes, ServerMessage, Wire,
};
use super::raw::{raw_kind, RawObject};

/// The start of a publish frame as PROTOCOL.md documents it (and the
/// emulator writes it), up to the opening quote of the source's name.
const HEAD: &str = r#"{"op":"publish","resourceName":"sources","resourceId":""#;

/// A publish of the documented shape,
/// `{"op":"publish","resourceName":"sources","resourceId":"<name>","object":<object>}`,
/// with a name that needs no escapes: its object is parsed alone (into a
/// tree, or checked as text), as a bare client would, instead of the whole
/// frame through the general decoder. `None` for any other frame, and for a
/// frame of this shape whose object does not parse: the general decoder
/// then gives the same answer it always does. For the frames it takes, the
/// result is the general decoder's (such a frame has exactly these four
/// keys, and their values are valid JSON: the name by the scan, the object
/// by its parse).
pub(super) fn documented(
    text: &str,
    publishes: Publishes,
) -> Option<Result<ServerMessage, DecodeError>> {
    let rest = text.strip_prefix(HEAD)?;
    let end = rest
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest.as_bytes()[end] != b'"' {
        return None;
    }
    let object = rest[end + 1..]
        .strip_prefix(r#","object":"#)?
        .strip_suffix('}')?;
    let missing = DecodeError::MissingField {
        op: "publish",
        field: "object",
    };
    Some(match publishes {
        Publishes::Tree => match serde_json::from_str::<Value>(object).ok()? {
            Value::Null => Err(missing),
            object => Ok(ServerMessage::Publish { object }),
        },
        Publishes::Raw | Publishes::Text => {
            let raw: &RawValue = serde_json::from_str(object).ok()?;
            published(raw, publishes).unwrap_or(Err(missing))
        }
    })
}

/// A publish's object read as text, as `publishes` (`Raw` or `Text`) hands
/// it over; `None` for `null` (the object is missing).
fn published(raw: &RawValue, publishes: Publishes) -> Option<Result<ServerMessage, DecodeError>> {
    let kind = raw_kind(raw.get());
    Some(match (kind, publishes) {
        ("null", _) => return None,
        (_, Publishes::Text) => Ok(ServerMessage::PublishText {
            object: raw.get().into(),
        }),
        ("object", _) => Ok(ServerMessage::PublishRaw {
            object: RawObject::from_raw(raw).expect("checked to be an object"),
        }),
        (kind, _) => Err(DecodeError::PublishNotAnObject(kind)),
    })
}

/// [`decode_text`] with [`Publishes::Raw`] or [`Publishes::Text`]: the
/// object is read as text (no tree); only a message other than a publish
/// makes it a tree afterwards.
pub(super) fn decode_raw(text: &str, publishes: Publishes) -> Result<ServerMessage, DecodeError> {
    let wire: Wire<&RawValue> = match serde_json::from_str(text) {
        Ok(wire) => wire,
        Err(e) => return Err(classify(text, e)),
    };
    let Some(op) = wire.op else {
        return decode_status(wire.status, wire.body);
    };
    match (op.as_ref(), wire.object) {
        ("publish", Some(object)) if object.get() != "null" => {
            published(object, publishes).expect("not null")
        }
        (op, object) => {
            let object = match object {
                Some(raw) => Some(
                    serde_json::from_str(raw.get())
                        .map_err(|e| DecodeError::NotJson(e.to_string()))?,
                ),
                None => None,
            };
            let reply_address = wire.message_headers.and_then(|h| h.reply_address);
            decode_request(op, object, reply_address)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::decode_text;

    /// The general decoder alone, for comparison.
    fn general(text: &str, publishes: Publishes) -> Result<ServerMessage, DecodeError> {
        match publishes {
            Publishes::Raw | Publishes::Text => decode_raw(text, publishes),
            Publishes::Tree => {
                let wire: Wire<Value> =
                    serde_json::from_str(text).map_err(|e| classify(text, e))?;
                match wire.op {
                    Some(op) => decode_request(
                        &op,
                        wire.object,
                        wire.message_headers.and_then(|h| h.reply_address),
                    ),
                    None => decode_status(wire.status, wire.body),
                }
            }
        }
    }

    #[test]
    fn the_documented_shape_decodes_as_the_general_decoder_does() {
        let objects = [
            r#"{"i":1,"payload":"0123456789"}"#,
            r#"{"z":1.10, "a" : [1e400,123456789012345678901234567890]}"#,
            r#" {"a":{}} "#,
            "[1,2]",
            "7",
            "\"s\"",
            "true",
            "null",
            "{}",
            // Not one value: the general decoder's error (or answer).
            r#"{"a":1},"x":2"#,
            r#"{"a":1}}"#,
            r#"{"a":1"#,
            "",
            r#"{"a":1},"object":{"b":2}"#,
        ];
        let names = ["echo", r#"we\"ird"#, r"t\u00e9", "a b"];
        let mut taken = 0;
        for name in names {
            for object in objects {
                let frame = format!("{HEAD}{name}\",\"object\":{object}}}");
                for publishes in [Publishes::Tree, Publishes::Raw, Publishes::Text] {
                    let fast = documented(&frame, publishes);
                    taken += usize::from(fast.is_some());
                    assert_eq!(
                        decode_text(&frame, publishes),
                        general(&frame, publishes),
                        "{frame} {publishes:?}"
                    );
                    if let Some(fast) = fast {
                        assert_eq!(fast, general(&frame, publishes), "{frame}");
                    }
                }
                // The text, read later, is the tree the tree mode makes.
                match (
                    decode_text(&frame, Publishes::Tree),
                    decode_text(&frame, Publishes::Text),
                ) {
                    (
                        Ok(ServerMessage::Publish { object }),
                        Ok(ServerMessage::PublishText { object: text }),
                    ) => {
                        let later: Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(later, object, "{frame}");
                        assert_eq!(later.to_string(), object.to_string(), "{frame}");
                    }
                    (Err(tree), Err(text)) => assert_eq!(tree, text, "{frame}"),
                    (tree, text) => panic!("{frame}: {tree:?} against {text:?}"),
                }
            }
        }
        assert!(
            taken >= 3 * 9,
            "the documented frames take the short way ({taken})"
        );
        // Other shapes go the general way.
        for frame in [
            r#"{"op":"publish","resourceId":"s","resourceName":"sources","object":{}}"#,
            r#"{"op":"publish","resourceName":"sources","resourceId":"s","object":{},"x":1}"#,
            r#"{"op":"publish", "resourceName":"sources","resourceId":"s","object":{}}"#,
        ] {
            assert_eq!(documented(frame, Publishes::Tree), None, "{frame}");
        }
    }
}
