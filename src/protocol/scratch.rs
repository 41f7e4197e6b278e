//! A thread's scratch buffer for serialising a value before the frame around
//! it is made: the frame is then allocated once, at its exact length (no
//! growing, no second copy), which is what the allocator handles best when
//! frames live on (a notification waits for its acknowledgement).

use std::cell::RefCell;

use serde::Serialize;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer larger than this is not kept for the next value.
const KEPT: usize = 64 * 1024;

/// Serialises `value` as JSON and calls `then` with its text.
///
/// A `Serialize` that serialises something itself (and so finds the buffer
/// in use) gets a buffer of its own.
pub(crate) fn with_json<T, R, E>(value: &T, then: impl FnOnce(&str) -> Result<R, E>) -> Result<R, E>
where
    T: Serialize + ?Sized,
    E: From<serde_json::Error>,
{
    let serialise = |buf: &mut Vec<u8>| {
        buf.clear();
        serde_json::to_writer(&mut *buf, value)?;
        then(std::str::from_utf8(buf).expect("serde_json writes UTF-8"))
    };
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            let result = serialise(&mut buf);
            if buf.capacity() > KEPT {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => serialise(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nested;

    impl Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            // Serialises something else while the buffer is in use.
            let inner: Result<String, serde_json::Error> =
                with_json(&[1, 2], |json| Ok(json.to_owned()));
            s.serialize_str(&inner.map_err(serde::ser::Error::custom)?)
        }
    }

    #[test]
    fn a_value_that_serialises_another_gets_a_buffer_of_its_own() {
        let out: Result<String, serde_json::Error> =
            with_json(&vec![Nested, Nested], |json| Ok(json.to_owned()));
        assert_eq!(out.unwrap(), r#"["[1,2]","[1,2]"]"#);
    }

    #[test]
    fn a_large_buffer_is_not_kept() {
        let big = "x".repeat(KEPT * 2);
        let len: Result<usize, serde_json::Error> = with_json(&big, |json| Ok(json.len()));
        assert_eq!(len.unwrap(), KEPT * 2 + 2);
        SCRATCH.with(|s| assert!(s.borrow().capacity() <= KEPT));
    }
}
