//! Reading the SDK's properties files (`server.config`, `logging.properties`): the
//! pieces both readers share, so that the two files are decoded and reported alike.

use std::path::{Path, PathBuf};

/// Decodes a properties file: UTF-8 (a leading byte-order mark is skipped), else
/// ISO-8859-1, the encoding Java uses for properties files, so no byte is lost.
pub(crate) fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            s
        }
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// Reads and decodes a properties file (see [`decode`]).
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    std::fs::read(path).map(decode)
}

/// A boolean as the SDK's files write it: `true` or `false`, in any case; anything
/// else is `None`, so that the caller reports it instead of guessing.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Names where settings came from in messages: the file, or "in code".
pub(crate) fn origin_display(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "in code".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode(b"abc".to_vec()), "abc");
        assert_eq!(decode("\u{feff}x".as_bytes().to_vec()), "x");
        assert_eq!(decode(vec![0xFF, b'a']), "\u{ff}a");
        // A BOM only counts at the start.
        assert_eq!(decode("a\u{feff}".as_bytes().to_vec()), "a\u{feff}");
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn origins() {
        assert_eq!(origin_display(&None), "in code");
        assert_eq!(origin_display(&Some(PathBuf::from("a/b"))), "a/b");
    }
}
