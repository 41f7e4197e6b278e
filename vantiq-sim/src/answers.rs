//! Checking a connector's query answers: which statuses end a query, which rows an answer
//! carries, and what is wrong with its body. Pure functions, shared by the ordinary query
//! path (`state.rs`) and the query load generator (`load.rs`), so both judge answers alike.

use crate::types::kinds;
use crate::wire;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

/// Whether an answer with `status` is a query's last: 200, 204 and errors end it; 100 (a
/// partial answer with more to come) does not.
pub(crate) fn is_final(status: u64) -> bool {
    status == 200 || status == 204 || status >= 300
}

/// What an answer's body is, as far as the checks care: enough to judge it and
/// count its rows without keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// No body, or `null`.
    Missing,
    /// A JSON object (one row, or one error).
    Object,
    /// A list of `len` elements; `all_objects` when every one is an object.
    List { len: usize, all_objects: bool },
    /// A string, number or boolean.
    Scalar,
}

impl Shape {
    /// The shape of a parsed body.
    pub(crate) fn of(body: Option<&Value>) -> Shape {
        match body {
            None | Some(Value::Null) => Shape::Missing,
            Some(Value::Object(_)) => Shape::Object,
            Some(Value::Array(items)) => Shape::List {
                len: items.len(),
                all_objects: items.iter().all(Value::is_object),
            },
            Some(_) => Shape::Scalar,
        }
    }
}

/// The problems with an answer's status and body; empty when it is well-formed. `raw` is
/// the whole message, excerpted into the details.
pub(crate) fn problems(status: u64, body: Shape, raw: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match status {
        100 | 200 => match body {
            Shape::Object
            | Shape::List {
                all_objects: true, ..
            } => {}
            Shape::List { .. } => out.push((
                kinds::BAD_BODY,
                format!("rows must be objects: {}", wire::excerpt(raw)),
            )),
            Shape::Missing => out.push((
                kinds::BAD_BODY,
                format!(
                    "status {status} needs a body (use 204 for no data): {}",
                    wire::excerpt(raw)
                ),
            )),
            Shape::Scalar => out.push((
                kinds::BAD_BODY,
                format!(
                    "a body must be an object or a list of objects: {}",
                    wire::excerpt(raw)
                ),
            )),
        },
        204 => {}
        s if s >= 300 => {
            if !matches!(
                body,
                Shape::Object
                    | Shape::List {
                        all_objects: true,
                        ..
                    }
            ) {
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

/// How many rows [`push_rows`] would append, from the body's shape.
pub(crate) fn row_count(status: u64, body: Shape) -> usize {
    if status != 100 && status != 200 {
        return 0;
    }
    match body {
        Shape::List { len, .. } => len,
        Shape::Missing => 0,
        Shape::Object | Shape::Scalar => 1,
    }
}

/// An answer frame read without building a JSON tree: what the query load generator needs
/// from each of its answers.
pub(crate) struct AnswerView<'a> {
    /// The status.
    pub(crate) status: u64,
    /// `headers.X-Reply-Address`.
    pub(crate) addr: Cow<'a, str>,
    /// The body's shape.
    pub(crate) body: Shape,
}

/// Reads `text` as a query answer, if it plainly is one (an object with an integer
/// `status`, a string reply address and no `op`); `None` sends it down the general path,
/// which parses it fully and reports whatever is wrong with it.
pub(crate) fn read_answer(text: &str) -> Option<AnswerView<'_>> {
    let raw: RawAnswer<'_> = serde_json::from_str(text).ok()?;
    if raw.op.is_some() {
        return None;
    }
    Some(AnswerView {
        status: raw.status?,
        addr: raw.headers?.addr?,
        body: raw.body.unwrap_or(Shape::Missing),
    })
}

#[derive(Deserialize)]
struct RawAnswer<'a> {
    #[serde(default)]
    op: Option<IgnoredAny>,
    #[serde(default)]
    status: Option<u64>,
    #[serde(default, borrow)]
    headers: Option<RawHeaders<'a>>,
    #[serde(default)]
    body: Option<Shape>,
}

#[derive(Deserialize)]
struct RawHeaders<'a> {
    #[serde(default, borrow, rename = "X-Reply-Address")]
    addr: Option<Cow<'a, str>>,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

/// Reads a body's shape, skipping its contents.
struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an answer body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        // With serde_json's `arbitrary_precision` a number comes as a one-entry map.
        let number = match number_key() {
            Some(key) => map.next_key_seed(KeyIs(key))?,
            None => map.next_key::<IgnoredAny>()?.map(|_| false),
        };
        match number {
            None => return Ok(Shape::Object),
            Some(is_number) => {
                map.next_value::<IgnoredAny>()?;
                if is_number {
                    return Ok(Shape::Scalar);
                }
            }
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let (mut len, mut all_objects) = (0, true);
        while let Some(shape) = seq.next_element::<Shape>()? {
            len += 1;
            all_objects &= shape == Shape::Object;
        }
        Ok(Shape::List { len, all_objects })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Missing)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Scalar)
    }
}

/// The key under which serde_json hands a number to a visitor as a one-entry map when its
/// `arbitrary_precision` feature is on (it is, in this workspace, so that numbers pass
/// through digit for digit); `None` without the feature. Learnt once, by reading a number,
/// rather than by spelling serde_json's private name here.
fn number_key() -> Option<&'static str> {
    static KEY: OnceLock<Option<String>> = OnceLock::new();
    KEY.get_or_init(|| {
        serde_json::from_str::<NumberKey>("0.5")
            .ok()
            .and_then(|k| k.0)
    })
    .as_deref()
}

/// The first map key a number is read as, if numbers are read as maps.
struct NumberKey(Option<String>);

impl<'de> Deserialize<'de> for NumberKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumberKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NumberKey, E> {
                Ok(NumberKey(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NumberKey, A::Error> {
                let key = map.next_key::<String>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NumberKey(key))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a map key and tells whether it is the given one, without allocating.
struct KeyIs(&'static str);

impl<'de> DeserializeSeed<'de> for KeyIs {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
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
        let ok = |status, body: Option<Value>| problems(status, Shape::of(body.as_ref()), "");
        assert!(ok(200, Some(json!([{"a": 1}]))).is_empty());
        assert!(ok(100, Some(json!({"a": 1}))).is_empty());
        assert!(ok(204, None).is_empty());
        assert!(ok(400, Some(json!([{"code": "x", "message": "y"}]))).is_empty());
    }

    #[test]
    fn malformed_answers_are_named() {
        let kind = |s, b: Option<Value>| problems(s, Shape::of(b.as_ref()), "raw")[0].0;
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
                row_count(status, Shape::of(body.as_ref())),
                "{status} {body:?}"
            );
        }
    }

    #[test]
    fn an_answer_read_without_a_tree_has_the_shape_of_the_parsed_one() {
        for body in [
            json!([{"i": 0}, {"i": 1, "deep": [1, {"x": null}]}]),
            json!([{"i": 0}, 7]),
            json!([]),
            json!({"a": [1, 2]}),
            json!("text"),
            json!(1.5),
            json!(-3),
            serde_json::from_str::<Value>("1e400").unwrap(),
            serde_json::from_str::<Value>("123456789012345678901234567890123456789").unwrap(),
            json!([{"n": 1}, 2.5]),
            json!(true),
            Value::Null,
        ] {
            let text = json!({
                "status": 200,
                "headers": {"X-Reply-Address": "r\"1", "other": [1]},
                "body": body,
                "extra": {"k": 1},
            })
            .to_string();
            let view = read_answer(&text).expect("an answer");
            assert_eq!(view.status, 200);
            assert_eq!(view.addr, "r\"1");
            assert_eq!(view.body, Shape::of(Some(&body)), "{text}");
        }
        let no_body = read_answer(r#"{"status":204,"headers":{"X-Reply-Address":"a"}}"#).unwrap();
        assert_eq!(no_body.body, Shape::Missing);
        // Not plainly an answer: left to the general path.
        for text in [
            r#"{"op":"notification","status":200,"headers":{"X-Reply-Address":"a"}}"#,
            r#"{"status":"200","headers":{"X-Reply-Address":"a"}}"#,
            r#"{"status":200,"headers":{"X-Reply-Address":5}}"#,
            r#"{"status":200,"headers":"a"}"#,
            r#"{"status":200}"#,
            r#"{"headers":{"X-Reply-Address":"a"}}"#,
            r#"[1]"#,
            "not json",
        ] {
            assert!(read_answer(text).is_none(), "{text}");
        }
    }
}
