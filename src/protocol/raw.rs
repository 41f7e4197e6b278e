//! [`RawObject`]: a JSON object kept as its text, for connectors that only
//! forward JSON (issue 17's opt-in path). No tree is built: publishes reach
//! the handler as the text the server sent, and a notification is framed
//! from text serialised elsewhere. Numbers pass through untouched because
//! they are never read.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON object as its text, checked once to be valid JSON and an object.
///
/// What [`crate::Handlers::on_publish_raw`] (or
/// [`crate::Handler::on_publish_raw`]) receives, and what
/// [`crate::SourceConnection::send_raw_notification`] sends: a connector
/// that forwards JSON (to a queue, a file, another service) never builds a
/// `serde_json::Value` for it. Parse it when you need to look inside
/// ([`RawObject::parse`]); it serialises as its text, verbatim, so it can
/// also sit inside a larger value given to
/// [`crate::SourceConnection::send_notification`].
///
/// ```
/// use vantiq_connector_sdk::RawObject;
///
/// let raw = RawObject::from_string(r#"{"id":7,"price":0.10000000000000000001}"#.to_owned())?;
/// assert_eq!(raw.as_str(), r#"{"id":7,"price":0.10000000000000000001}"#);
/// assert!(RawObject::from_string("[1,2]".to_owned()).is_err()); // a list, not an object
/// assert!(RawObject::from_string("{\"a\":".to_owned()).is_err()); // not JSON
/// # Ok::<(), vantiq_connector_sdk::RawObjectError>(())
/// ```
#[derive(Clone)]
pub struct RawObject(String);

/// Why text was refused as a [`RawObject`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawObjectError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The text is JSON, but not an object.
    #[error("a JSON {0}, not an object")]
    NotAnObject(&'static str),
}

impl RawObject {
    /// Checks `json` (valid JSON, an object; whitespace around it is
    /// trimmed) and keeps it, without copying when there is no such
    /// whitespace.
    ///
    /// # Errors
    ///
    /// [`RawObjectError::NotJson`] or [`RawObjectError::NotAnObject`].
    pub fn from_string(json: String) -> Result<RawObject, RawObjectError> {
        let raw: &RawValue = serde_json::from_str(&json).map_err(RawObjectError::NotJson)?;
        let trimmed = raw.get();
        match raw_kind(trimmed) {
            "object" if trimmed.len() == json.len() => Ok(RawObject(json)),
            "object" => Ok(RawObject(trimmed.to_owned())),
            kind => Err(RawObjectError::NotAnObject(kind)),
        }
    }

    /// An already validated JSON value (a publish's, read from its frame):
    /// kept if it is an object.
    pub(crate) fn from_raw(raw: &RawValue) -> Result<RawObject, RawObjectError> {
        match raw_kind(raw.get()) {
            "object" => Ok(RawObject(raw.get().to_owned())),
            kind => Err(RawObjectError::NotAnObject(kind)),
        }
    }

    /// The object's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Reads the object as a `T` (a `serde_json::Value`, or a type of your
    /// own).
    ///
    /// # Errors
    ///
    /// serde's error when the object does not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The object as a tree.
    pub fn to_value(&self) -> Value {
        self.parse()
            .expect("a RawObject is valid JSON, and every JSON text reads as a Value")
    }
}

/// The JSON kind of valid JSON text (no leading whitespace), in the words of
/// `message::json_kind`, from its first character.
pub(crate) fn raw_kind(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "list",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Verbatim, through serde_json's raw value (read again here: the
        // rare case of a raw object inside another value).
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl fmt::Display for RawObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RawObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawObject").field(&self.as_str()).finish()
    }
}

impl PartialEq for RawObject {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RawObject {}

impl TryFrom<String> for RawObject {
    type Error = RawObjectError;

    fn try_from(json: String) -> Result<Self, Self::Error> {
        RawObject::from_string(json)
    }
}

impl std::str::FromStr for RawObject {
    type Err = RawObjectError;

    fn from_str(json: &str) -> Result<Self, Self::Err> {
        RawObject::from_string(json.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_objects_are_taken_and_kept_verbatim() {
        for text in [
            "{}",
            r#"{"n":1e400,"m":-0.0,"big":123456789012345678901234567890}"#,
            r#"{"s":"é\u00e9\n","a":[{"b":null}]}"#,
        ] {
            let raw: RawObject = text.parse().unwrap();
            assert_eq!(raw.as_str(), text);
            assert_eq!(serde_json::to_string(&raw).unwrap(), text);
            assert_eq!(raw.clone().into_string(), text);
        }
        let padded = RawObject::from_string(" {\"a\":1}\n".to_owned()).unwrap();
        assert_eq!(padded.as_str(), "{\"a\":1}");
        for (text, kind) in [
            ("[1]", "list"),
            ("\"x\"", "string"),
            ("12", "number"),
            ("-1", "number"),
            ("true", "boolean"),
            ("null", "null"),
        ] {
            match RawObject::from_string(text.to_owned()) {
                Err(RawObjectError::NotAnObject(k)) => assert_eq!(k, kind, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in ["", "{", "{\"a\":1}x", "{'a':1}", "{\"a\":01}"] {
            assert!(
                matches!(
                    RawObject::from_string(text.to_owned()),
                    Err(RawObjectError::NotJson(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn parses_into_trees_and_types_exactly() {
        // Keys in order: a Value sorts them.
        let raw: RawObject = r#"{"n":3,"x":0.1000000000000000000001}"#.parse().unwrap();
        assert_eq!(raw.to_value().to_string(), raw.as_str());
        #[derive(serde::Deserialize)]
        struct N {
            n: u8,
        }
        assert_eq!(raw.parse::<N>().unwrap().n, 3);
    }
}
