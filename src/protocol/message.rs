//! The messages of the connector protocol: decoding what the server sends and
//! encoding what the connector sends.
//!
//! Decoding is strict about the fields this SDK relies on and lenient about
//! everything else: Vantiq servers send many more fields than a connector uses
//! (see `PROTOCOL.md`), and those are skipped without being materialised.
//! Encoding writes the frames as strings directly, because notifications are
//! the hot path of a busy connector and their envelope never changes.

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::publish;
use super::raw::RawObject;
use crate::error::NotifyError;

/// The resource name of sources on the wire.
pub const RESOURCE_SOURCES: &str = "sources";
/// The header of a query message that carries its reply address.
pub const REPLY_ADDR_HEADER: &str = "REPLY_ADDR_HEADER";
/// The header of a query response that carries the reply address back.
pub const REPLY_ADDRESS_RESPONSE_HEADER: &str = "X-Reply-Address";

/// A message from the server, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// A response (`{"status": N, ...}`): the answer to `validate` or
    /// `connectExtension`, or the acknowledgement of a notification.
    Status {
        /// The HTTP-like status code.
        status: u16,
        /// The body, if any (an error list for failures).
        body: Option<Value>,
    },
    /// `configureExtension`: the source's configuration document has arrived.
    ConfigureExtension {
        /// The `object.config` document.
        config: Value,
    },
    /// `publish`: the server sends an event to the source.
    Publish {
        /// The published object.
        object: Value,
    },
    /// `publish`, decoded with [`Publishes::Text`]: the published object's
    /// JSON text, checked to be valid JSON and not `null` (any other kind:
    /// the tree is built from it later, by whoever reads it).
    PublishText {
        /// The published object's text.
        object: Box<str>,
    },
    /// `publish`, decoded with [`Publishes::Raw`]: the published object as
    /// its text.
    PublishRaw {
        /// The published object.
        object: RawObject,
    },
    /// `query`: a VAIL `SELECT ... FROM SOURCE`, to be answered.
    Query {
        /// The `WITH` parameters (an object; `{}` when the server sent none).
        params: Value,
        /// Where the answers go (`messageHeaders.REPLY_ADDR_HEADER`), shared
        /// (the session's open-query table and every answer hold it).
        reply_address: Arc<str>,
    },
    /// `reconnectRequired`: connect again from `connectExtension`.
    ReconnectRequired,
    /// `testRequestsClientClose`: the op the test servers of Vantiq's
    /// repository send to end a run; the official SDKs close the connection
    /// for good, and so does this one.
    TestClose,
}

/// Why a server frame could not be decoded. The connection carries on: the
/// frame is logged and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is not UTF-8.
    #[error("frame is not UTF-8")]
    NotUtf8,
    /// The frame is not JSON at all.
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    /// The frame is JSON, but not an object.
    #[error("frame is a JSON {0}, not an object")]
    NotAnObject(&'static str),
    /// The object has neither `op` nor `status`.
    #[error("message has neither `op` nor `status`")]
    NoOpOrStatus,
    /// `status` is not a status code.
    #[error("`status` is not a status code: {0}")]
    BadStatus(String),
    /// An `op` this SDK does not know.
    #[error("unknown op `{0}`")]
    UnknownOp(String),
    /// A publish decoded with [`Publishes::Raw`] whose object is another
    /// JSON value (a list, say).
    #[error("`publish` object is a JSON {0}, not an object")]
    PublishNotAnObject(&'static str),
    /// A known `op` without a field it needs.
    #[error("`{op}` message without `{field}`")]
    MissingField {
        /// The operation.
        op: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

/// How [`decode_text`] hands over a published object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publishes {
    /// As a tree: [`ServerMessage::Publish`].
    #[default]
    Tree,
    /// As its text, checked to be an object: [`ServerMessage::PublishRaw`].
    Raw,
    /// As its text, checked to be JSON and not `null`:
    /// [`ServerMessage::PublishText`]. What the connection task uses for a
    /// handler that takes trees: the tree is built on the handler's side,
    /// just before the handler runs, so that it is made and dropped in one
    /// turn instead of living across the hand-over between the two tasks
    /// (dozens of trees of one read burst in flight at once made the
    /// allocator's slow paths the largest cost of a publish: 1.5x the
    /// publish echo rate, BENCHMARKS.md).
    Text,
}

/// The fields of a server message that this SDK reads; the rest are skipped.
/// Borrowed where it can be, so a query costs as few allocations as possible.
/// `O` is how `object` is read: a `Value`, or its text (`&RawValue`).
#[derive(Deserialize)]
pub(super) struct Wire<'a, O> {
    #[serde(default, borrow)]
    pub(super) op: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) status: Option<Value>,
    // Absent reads as `None` (serde's rule for an `Option`).
    pub(super) object: Option<O>,
    #[serde(default)]
    pub(super) body: Option<Value>,
    #[serde(default, rename = "messageHeaders")]
    pub(super) message_headers: Option<Headers>,
}

/// The one message header this SDK reads: a query's reply address. Any other
/// header is skipped unparsed; headers that are not an object (or an address
/// that is not a string) read as no address, and the query is refused for
/// lack of one.
#[derive(Default)]
pub(super) struct Headers {
    pub(super) reply_address: Option<Arc<str>>,
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeadersVisitor)
    }
}

/// The reply address header: a string (read from the frame without an
/// intermediate copy), or anything else, skipped, as no address.
struct Address(Option<Arc<str>>);

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AddressVisitor)
    }
}

struct AddressVisitor;

impl<'de> Visitor<'de> for AddressVisitor {
    type Value = Address;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reply address")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Address, E> {
        Ok(Address(Some(Arc::from(s))))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Address, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Address(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Address, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Address(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Address, E> {
        Ok(Address(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Address, E> {
        Ok(Address(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Address, E> {
        Ok(Address(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Address, E> {
        Ok(Address(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Address, E> {
        Ok(Address(None))
    }
}

struct HeadersVisitor;

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = Headers;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("message headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
        let mut headers = Headers::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == REPLY_ADDR_HEADER {
                // Borrowed from the frame unless it has escapes: the address
                // is copied once, into the shared string.
                headers.reply_address = map.next_value::<Address>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(headers)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Headers, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Headers::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Headers, E> {
        Ok(Headers::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Headers, E> {
        Ok(Headers::default())
    }
}

/// Decodes one server frame (text, or binary carrying UTF-8 JSON as the Java
/// SDK sends it).
///
/// # Errors
///
/// A [`DecodeError`] saying what is wrong with the frame.
pub fn decode(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    // serde_json does not check the UTF-8 of the fields it skips: check it first.
    let text = std::str::from_utf8(frame).map_err(|_| DecodeError::NotUtf8)?;
    decode_text(text, Publishes::Tree)
}

/// Decodes one server frame that is known to be UTF-8 (a WebSocket text
/// frame, which the transport has checked already): [`decode`] without a
/// second check, a publish's object handed over as `publishes` says.
///
/// # Errors
///
/// A [`DecodeError`] saying what is wrong with the frame.
pub fn decode_text(text: &str, publishes: Publishes) -> Result<ServerMessage, DecodeError> {
    // The acknowledgement of a notification, by far the most frequent
    // message of a busy connector, without a parse.
    if text == r#"{"status":200}"# {
        return Ok(ServerMessage::Status {
            status: 200,
            body: None,
        });
    }
    if let Some(publish) = publish::documented(text, publishes) {
        return publish;
    }
    if publishes != Publishes::Tree {
        return publish::decode_raw(text, publishes);
    }
    let wire: Wire<Value> = match serde_json::from_str(text) {
        Ok(wire) => wire,
        Err(e) => return Err(classify(text, e)),
    };
    if let Some(op) = wire.op {
        let reply_address = wire.message_headers.and_then(|h| h.reply_address);
        return decode_request(&op, wire.object, reply_address);
    }
    decode_status(wire.status, wire.body)
}

/// A message without `op`: a status.
pub(super) fn decode_status(
    status: Option<Value>,
    body: Option<Value>,
) -> Result<ServerMessage, DecodeError> {
    match status {
        Some(Value::Number(n)) => match n.as_u64().and_then(|s| u16::try_from(s).ok()) {
            Some(status) => Ok(ServerMessage::Status {
                status,
                body: body.filter(|b| !b.is_null()),
            }),
            None => Err(DecodeError::BadStatus(n.to_string())),
        },
        Some(other) => Err(DecodeError::BadStatus(other.to_string())),
        None => Err(DecodeError::NoOpOrStatus),
    }
}

pub(super) fn decode_request(
    op: &str,
    object: Option<Value>,
    reply_address: Option<Arc<str>>,
) -> Result<ServerMessage, DecodeError> {
    match op {
        "publish" => match object {
            Some(object) if !object.is_null() => Ok(ServerMessage::Publish { object }),
            _ => Err(DecodeError::MissingField {
                op: "publish",
                field: "object",
            }),
        },
        "query" => {
            let reply_address = reply_address.ok_or(DecodeError::MissingField {
                op: "query",
                field: "messageHeaders.REPLY_ADDR_HEADER",
            })?;
            let params = match object {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(params) => params,
            };
            Ok(ServerMessage::Query {
                params,
                reply_address,
            })
        }
        "configureExtension" => match object {
            Some(Value::Object(mut object)) => match object.remove("config") {
                Some(config) if !config.is_null() => {
                    Ok(ServerMessage::ConfigureExtension { config })
                }
                _ => Err(DecodeError::MissingField {
                    op: "configureExtension",
                    field: "object.config",
                }),
            },
            _ => Err(DecodeError::MissingField {
                op: "configureExtension",
                field: "object.config",
            }),
        },
        "reconnectRequired" => Ok(ServerMessage::ReconnectRequired),
        "testRequestsClientClose" => Ok(ServerMessage::TestClose),
        _ => Err(DecodeError::UnknownOp(op.to_owned())),
    }
}

/// The JSON type of `value`, in words: `null`, `boolean`, `number`,
/// `string`, `list` or `object` (the one helper the SDK uses in its
/// messages).
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Tells a frame that is not JSON from JSON that is not an object.
pub(super) fn classify(frame: &str, error: serde_json::Error) -> DecodeError {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Object(_)) | Err(_) => DecodeError::NotJson(error.to_string()),
        Ok(other) => DecodeError::NotAnObject(json_kind(&other)),
    }
}

/// Writes `value` as a JSON string literal.
fn json_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string always serialises")
}

/// The `validate` request that authenticates with an access token.
pub fn validate(token: &str) -> String {
    format!(
        r#"{{"op":"validate","resourceName":"system.credentials","object":{}}}"#,
        json_string(token)
    )
}

/// The `authenticate` request that authenticates with a username and password.
pub fn authenticate(username: &str, password: &str) -> String {
    format!(
        r#"{{"op":"authenticate","resourceName":"system.credentials","object":{{"username":{},"password":{}}}}}"#,
        json_string(username),
        json_string(password)
    )
}

/// The `connectExtension` request that registers the connector for `source`.
pub fn connect_extension(source: &str, reconnect_secret: &str) -> String {
    format!(
        r#"{{"op":"connectExtension","resourceName":"sources","resourceId":{},"parameters":{{"reconnectSecret":{}}}}}"#,
        json_string(source),
        json_string(reconnect_secret)
    )
}

/// The fixed start of every notification frame of one source, computed once.
#[derive(Debug, Clone)]
pub struct NotificationEnvelope {
    prefix: String,
}

impl NotificationEnvelope {
    /// The envelope for `source`.
    pub fn new(source: &str) -> Self {
        NotificationEnvelope {
            prefix: format!(
                r#"{{"op":"notification","resourceName":"sources","resourceId":{},"object":"#,
                json_string(source)
            ),
        }
    }

    /// Serialises `object` straight into a notification frame: one buffer,
    /// no copy of the serialised object.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotAnObject`] when `object` is not a JSON object,
    /// [`NotifyError::Serialize`] when serde fails.
    pub fn encode<T: Serialize + ?Sized>(&self, object: &T) -> Result<String, NotifyError> {
        // Serialised in the thread's scratch buffer, then the frame made at
        // its exact length: one allocation (growing a buffer as serde
        // writes, then moving the object behind the envelope, took three).
        super::scratch::with_json(object, |json| {
            Self::check_object(json)?;
            Ok(self.wrap(json))
        })
    }

    /// Checks that serialised JSON is an object, as a notification's must
    /// be.
    pub(crate) fn check_object(json: &str) -> Result<(), NotifyError> {
        if json.starts_with('{') {
            return Ok(());
        }
        let value: Value = serde_json::from_str(json)?;
        Err(NotifyError::NotAnObject(json_kind(&value)))
    }

    /// Serialises `object` into a notification frame appended to `out`,
    /// with no copy in between; on an error `out` is left as it was.
    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        &self,
        object: &T,
        out: &mut bytes::BytesMut,
    ) -> Result<(), NotifyError> {
        use bytes::BufMut;
        let start = out.len();
        out.extend_from_slice(self.prefix.as_bytes());
        let at = out.len();
        let written = serde_json::to_writer((&mut *out).writer(), object)
            .map_err(NotifyError::from)
            .and_then(|()| match out.get(at) {
                Some(b'{') => Ok(()),
                // Not an object: say what it is (serde_json wrote UTF-8).
                _ => Self::check_object(std::str::from_utf8(&out[at..]).unwrap_or_default()),
            });
        match written {
            Ok(()) => {
                out.put_u8(b'}');
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// The length of the frame of `object_json`.
    pub(crate) fn frame_len(&self, object_json: &str) -> usize {
        self.prefix.len() + object_json.len() + 1
    }

    /// Appends the frame of `object_json` to `out`.
    pub(crate) fn write_frame(&self, object_json: &str, out: &mut bytes::BytesMut) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(object_json.as_bytes());
        out.extend_from_slice(b"}");
    }

    /// Wraps an already serialised JSON object into a notification frame.
    pub fn wrap(&self, object_json: &str) -> String {
        let mut frame = String::with_capacity(self.frame_len(object_json));
        frame.push_str(&self.prefix);
        frame.push_str(object_json);
        frame.push('}');
        frame
    }
}

/// A query response frame: `body_json` is already serialised JSON (`None` for
/// a 204).
pub fn query_response(reply_address: &str, status: u16, body_json: Option<&str>) -> String {
    // Written piece by piece into a string of the exact length (one
    // allocation, and none more when it becomes the frame's bytes): every
    // query answer passes here.
    const FIXED: usize = r#"{"status":,"headers":{"X-Reply-Address":""}}"#.len();
    const BODY: usize = r#","body":"#.len();
    let mut status_text = itoa::Buffer::new();
    let status_text = status_text.format(status);
    let mut frame = String::with_capacity(
        FIXED + status_text.len() + reply_address.len() + body_json.map_or(0, |b| BODY + b.len()),
    );
    frame.push_str(r#"{"status":"#);
    frame.push_str(status_text);
    frame.push_str(r#","headers":{"X-Reply-Address":"#);
    push_json_string(&mut frame, reply_address);
    frame.push('}');
    if let Some(body) = body_json {
        frame.push_str(r#","body":"#);
        frame.push_str(body);
    }
    frame.push('}');
    frame
}

/// Appends `value` as a JSON string: as it is between quotes when nothing in it
/// needs escaping (reply addresses never do), else through serde_json.
fn push_json_string(out: &mut String, value: &str) {
    if value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(value);
        out.push('"');
    } else {
        out.push_str(&json_string(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(s: &str) -> Result<ServerMessage, DecodeError> {
        decode(s.as_bytes())
    }

    #[test]
    fn query_responses_escape_what_needs_it() {
        for addr in [
            "sim-reply-1",
            "a\"b",
            "back\\slash",
            "tab\tnew\nline",
            "é✓",
            "\u{7f}",
        ] {
            for (status, body) in [
                (100, Some("[{}]")),
                (200, Some("{}")),
                (204, None),
                (400, Some("[]")),
            ] {
                let frame = query_response(addr, status, body);
                let v: Value = serde_json::from_str(&frame).expect(&frame);
                assert_eq!(v["status"], status, "{frame}");
                assert_eq!(v["headers"]["X-Reply-Address"], addr, "{frame}");
                assert_eq!(v.get("body").is_some(), body.is_some(), "{frame}");
            }
        }
    }

    #[test]
    fn query_headers_are_read_leniently() {
        let reply = |headers: &str| match dec(&format!(
            r#"{{"op":"qu\u0065ry","object":{{}},"messageHeaders":{headers}}}"#
        )) {
            Ok(ServerMessage::Query { reply_address, .. }) => Ok(reply_address.to_string()),
            Err(e) => Err(e),
            Ok(other) => panic!("not a query: {other:?}"),
        };
        assert_eq!(
            reply(r#"{"x":{"deep":[1,{"a":null}]},"REPLY_ADDR_HEADER":"r\"1","y":2}"#),
            Ok("r\"1".to_owned()),
            "other headers are skipped, escapes are kept"
        );
        let missing = Err(DecodeError::MissingField {
            op: "query",
            field: "messageHeaders.REPLY_ADDR_HEADER",
        });
        for headers in [
            "null",
            "[1,[2],{}]",
            "\"text\"",
            "7",
            "-7",
            "7.5",
            "true",
            "{}",
            r#"{"REPLY_ADDR_HEADER":5}"#,
            r#"{"REPLY_ADDR_HEADER":null}"#,
        ] {
            assert_eq!(reply(headers), missing, "{headers}");
        }
    }

    #[test]
    fn decodes_every_server_message() {
        assert_eq!(
            dec(r#"{"status":200,"body":{"x":1},"contentType":"application/json"}"#),
            Ok(ServerMessage::Status {
                status: 200,
                body: Some(json!({"x":1}))
            })
        );
        assert_eq!(
            dec(
                r#"{"op":"configureExtension","resourceName":"sources","resourceId":"s","object":{"config":{"a":1}}}"#
            ),
            Ok(ServerMessage::ConfigureExtension {
                config: json!({"a":1})
            })
        );
        assert_eq!(
            dec(r#"{"op":"publish","resourceId":"s","object":{"k":"v"},"locale":"en"}"#),
            Ok(ServerMessage::Publish {
                object: json!({"k":"v"})
            })
        );
        assert_eq!(
            dec(r#"{"op":"query","object":{"a":1},"messageHeaders":{"REPLY_ADDR_HEADER":"r1"}}"#),
            Ok(ServerMessage::Query {
                params: json!({"a":1}),
                reply_address: "r1".into()
            })
        );
        assert_eq!(
            dec(r#"{"op":"query","messageHeaders":{"REPLY_ADDR_HEADER":"r1"}}"#),
            Ok(ServerMessage::Query {
                params: json!({}),
                reply_address: "r1".into()
            })
        );
        assert_eq!(
            dec(r#"{"op":"reconnectRequired","resourceName":"sources","resourceId":"s"}"#),
            Ok(ServerMessage::ReconnectRequired)
        );
        assert_eq!(
            dec(r#"{"op":"testRequestsClientClose"}"#),
            Ok(ServerMessage::TestClose)
        );
    }

    #[test]
    fn rejects_malformed_frames_with_a_reason() {
        assert!(matches!(dec("not json"), Err(DecodeError::NotJson(_))));
        assert_eq!(dec("[1,2]"), Err(DecodeError::NotAnObject("list")));
        assert_eq!(dec("3"), Err(DecodeError::NotAnObject("number")));
        assert_eq!(dec(r#"{"x":1}"#), Err(DecodeError::NoOpOrStatus));
        assert_eq!(
            dec(r#"{"op":"dance"}"#),
            Err(DecodeError::UnknownOp("dance".into()))
        );
        assert!(matches!(
            dec(r#"{"op":"publish"}"#),
            Err(DecodeError::MissingField { op: "publish", .. })
        ));
        assert!(matches!(
            dec(r#"{"op":"query","object":{}}"#),
            Err(DecodeError::MissingField { op: "query", .. })
        ));
        assert!(matches!(
            dec(r#"{"op":"configureExtension","object":{}}"#),
            Err(DecodeError::MissingField {
                op: "configureExtension",
                ..
            })
        ));
        assert!(matches!(
            dec(r#"{"status":"ok"}"#),
            Err(DecodeError::BadStatus(_))
        ));
        assert!(matches!(
            dec(r#"{"status":70000}"#),
            Err(DecodeError::BadStatus(_))
        ));
        assert_eq!(decode(&[0xff, 0xfe]), Err(DecodeError::NotUtf8));
        // Found by fuzzing: invalid UTF-8 in a field that decoding skips.
        assert_eq!(
            decode(b"{\"status\":4,\"x\":\"\xff\"}"),
            Err(DecodeError::NotUtf8)
        );
    }

    #[test]
    fn raw_publishes_keep_their_text_and_nothing_else_changes() {
        let raw = |s: &str| decode_text(s, Publishes::Raw);
        let object = r#"{"b":1.000000000000000000001, "a" :[1e400,"\u00e9"]}"#;
        match raw(&format!(
            r#"{{"op":"publish","object":{object},"x":[{{}}]}}"#
        )) {
            Ok(ServerMessage::PublishRaw { object: got }) => assert_eq!(got.as_str(), object),
            other => panic!("{other:?}"),
        }
        for (frame, expected) in [
            (
                r#"{"op":"publish","object":[1,2]}"#,
                Err(DecodeError::PublishNotAnObject("list")),
            ),
            (
                r#"{"op":"publish","object":7}"#,
                Err(DecodeError::PublishNotAnObject("number")),
            ),
            (
                r#"{"op":"publish","object":null}"#,
                Err(DecodeError::MissingField {
                    op: "publish",
                    field: "object",
                }),
            ),
            (
                r#"{"op":"publish"}"#,
                Err(DecodeError::MissingField {
                    op: "publish",
                    field: "object",
                }),
            ),
        ] {
            assert_eq!(raw(frame), expected, "{frame}");
        }
        // Every other message decodes as in the tree mode.
        for frame in [
            r#"{"op":"query","object":{"a":1},"messageHeaders":{"REPLY_ADDR_HEADER":"r1"}}"#,
            r#"{"op":"query","messageHeaders":{"REPLY_ADDR_HEADER":"r1"}}"#,
            r#"{"op":"configureExtension","object":{"config":{"a":1.50}}}"#,
            r#"{"op":"configureExtension","object":[]}"#,
            r#"{"op":"reconnectRequired"}"#,
            r#"{"status":400,"body":[{"code":"x"}]}"#,
            r#"{"status":200}"#,
            r#"{"op":"dance","object":{}}"#,
            r#"{"op":"publish","op":"publish","object":{}}"#,
            "[1]",
            "{",
        ] {
            assert_eq!(raw(frame), dec(frame), "{frame}");
        }
    }

    #[test]
    fn notifications_are_encoded_in_one_buffer_as_wrapped() {
        let envelope = NotificationEnvelope::new("s\"1");
        for object in [
            json!({}),
            json!({"a": [1, 2.5e300, "é\"x"], "b": {"c": null}}),
            serde_json::from_str(r#"{"n":1.000000000000000000001}"#).unwrap(),
        ] {
            let frame = envelope.encode(&object).unwrap();
            assert_eq!(frame, envelope.wrap(&object.to_string()));
        }
        for (value, kind) in [
            (json!([1]), "list"),
            (json!("x"), "string"),
            (json!(3), "number"),
            (json!(null), "null"),
        ] {
            assert!(
                matches!(envelope.encode(&value), Err(NotifyError::NotAnObject(k)) if k == kind),
                "{value}"
            );
        }
    }

    #[test]
    fn encodes_frames_as_valid_json() {
        let v: Value = serde_json::from_str(&validate("t\"k")).unwrap();
        assert_eq!(
            v,
            json!({"op":"validate","resourceName":"system.credentials","object":"t\"k"})
        );
        let v: Value = serde_json::from_str(&authenticate("u", "p")).unwrap();
        assert_eq!(v["object"], json!({"username":"u","password":"p"}));
        let v: Value = serde_json::from_str(&connect_extension("src", "sec")).unwrap();
        assert_eq!(
            v,
            json!({"op":"connectExtension","resourceName":"sources","resourceId":"src","parameters":{"reconnectSecret":"sec"}})
        );
        let v: Value =
            serde_json::from_str(&NotificationEnvelope::new("s\\1").wrap(r#"{"a":[1]}"#)).unwrap();
        assert_eq!(
            v,
            json!({"op":"notification","resourceName":"sources","resourceId":"s\\1","object":{"a":[1]}})
        );
        let v: Value = serde_json::from_str(&query_response("r", 100, Some("[{}]"))).unwrap();
        assert_eq!(
            v,
            json!({"status":100,"headers":{"X-Reply-Address":"r"},"body":[{}]})
        );
        let v: Value = serde_json::from_str(&query_response("r", 204, None)).unwrap();
        assert_eq!(v, json!({"status":204,"headers":{"X-Reply-Address":"r"}}));
    }
}
