//! A parser for Java `.properties` text, with the semantics of
//! `java.util.Properties.load(Reader)`.
//!
//! Vantiq writes `server.config` as a Java properties file, so this module reads it the
//! way the JVM does:
//!
//! * A *natural line* ends at `\n`, `\r` or `\r\n`. Leading blanks (space, tab, form
//!   feed) of every natural line are ignored.
//! * Blank lines are skipped. A line whose first non-blank character is `#` or `!` is a
//!   comment (a comment never continues onto the next line, even when it ends with a
//!   backslash).
//! * A natural line ending with an **odd** number of backslashes continues on the next
//!   natural line: the last backslash and the line end are removed, and the leading blanks
//!   of the continuation line are dropped. An empty continuation line ends the logical
//!   line. A backslash at the very end of the text is dropped.
//! * The key ends at the first unescaped `=`, `:` or blank. Blanks around the separator
//!   are skipped, and at most one `=`/`:` is taken as the separator (in `a = = b` the value
//!   is `= b`). A line with only a key gives it an empty value. Trailing blanks of a value
//!   are kept.
//! * Escapes, in keys and values: `\t`, `\n`, `\r`, `\f`, and `\uXXXX` (four hex digits;
//!   a UTF-16 surrogate pair written as two escapes gives one character). A backslash
//!   before any other character stands for that character, so `\\`, `\=`, `\:`, `\#`,
//!   `\!` and `\ ` (backslash space) give `\`, `=`, `:`, `#`, `!` and a space, and `\b`
//!   gives `b`.
//!
//! Differences from Java: the input is already a Rust string (the caller decides on the
//! encoding), and an unpaired surrogate escape such as `\uD800` cannot be represented in
//! a Rust string, so it is an error where Java would accept it.
//!
//! ```
//! use vantiq_connector_sdk::config::properties;
//!
//! let text = "# comment\ntargetServer = https://dev.vantiq.com\nsources: a, \\\n   b\n";
//! let props = properties::parse(text)?;
//! assert_eq!(
//!     props,
//!     vec![
//!         ("targetServer".to_string(), "https://dev.vantiq.com".to_string()),
//!         ("sources".to_string(), "a, b".to_string()),
//!     ]
//! );
//! # Ok::<(), properties::PropertiesError>(())
//! ```

use std::collections::HashMap;
use std::iter::Peekable;
use std::str::Chars;

/// An error found while parsing properties text.
///
/// Each variant carries the 1-based number of the natural line where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PropertiesError {
    /// A `\u` escape not followed by four hexadecimal digits.
    #[error("line {line}: malformed \\uXXXX escape `\\u{found}` (expected four hex digits)")]
    MalformedUnicodeEscape {
        /// The 1-based line number of the escape.
        line: usize,
        /// What followed `\u` (at most four characters).
        found: String,
    },
    /// A `\uXXXX` escape naming half of a UTF-16 surrogate pair without its other half.
    #[error("line {line}: \\u{code:04X} is an unpaired UTF-16 surrogate")]
    UnpairedSurrogate {
        /// The 1-based line number of the escape.
        line: usize,
        /// The surrogate code unit.
        code: u16,
    },
}

impl PropertiesError {
    /// The 1-based line number where the error is.
    pub fn line(&self) -> usize {
        match self {
            PropertiesError::MalformedUnicodeEscape { line, .. }
            | PropertiesError::UnpairedSurrogate { line, .. } => *line,
        }
    }
}

/// Parses properties text into its `(key, value)` pairs, in the order they appear.
///
/// Duplicate keys are all returned; as with `java.util.Properties`, the last one is the
/// one that counts (see [`parse_map`]).
///
/// # Errors
///
/// [`PropertiesError`] for a malformed `\uXXXX` escape or an unpaired surrogate escape,
/// naming the line.
///
/// # Examples
///
/// ```
/// use vantiq_connector_sdk::config::properties::parse;
///
/// let props = parse("a=1\nb : two words  \nc\n")?;
/// assert_eq!(props[0], ("a".to_string(), "1".to_string()));
/// assert_eq!(props[1], ("b".to_string(), "two words  ".to_string()));
/// assert_eq!(props[2], ("c".to_string(), String::new()));
/// assert!(parse("bad=\\u12G4").is_err());
/// # Ok::<(), vantiq_connector_sdk::config::properties::PropertiesError>(())
/// ```
pub fn parse(text: &str) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut reader = LineReader {
        chars: text.chars().peekable(),
        line: 1,
    };
    let mut out = Vec::new();
    while let Some(line) = reader.next_logical_line() {
        let (key_end, value_start) = split_key_value(&line.chars);
        let key = line.convert(0, key_end)?;
        let value = line.convert(value_start, line.chars.len())?;
        out.push((key, value));
    }
    Ok(out)
}

/// Parses properties text into a map; a key given more than once keeps its last value.
///
/// # Errors
///
/// The same as [`parse`].
///
/// # Examples
///
/// ```
/// use vantiq_connector_sdk::config::properties::parse_map;
///
/// let map = parse_map("a=1\na=2\n")?;
/// assert_eq!(map["a"], "2");
/// # Ok::<(), vantiq_connector_sdk::config::properties::PropertiesError>(())
/// ```
pub fn parse_map(text: &str) -> Result<HashMap<String, String>, PropertiesError> {
    Ok(parse(text)?.into_iter().collect())
}

/// Blank characters as Java's `Properties` sees them.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// One logical line, with the natural line numbers of its pieces (for error messages).
struct LogicalLine {
    chars: Vec<char>,
    /// `(offset in chars, natural line number)` for each natural line that contributed.
    segments: Vec<(usize, usize)>,
}

impl LogicalLine {
    fn line_at(&self, offset: usize) -> usize {
        self.segments
            .iter()
            .rev()
            .find(|(start, _)| *start <= offset)
            .or(self.segments.first())
            .map_or(1, |(_, line)| *line)
    }

    /// Reads four hex digits at `pos`, as a `\u` escape starting at `escape_at`.
    fn hex4(&self, pos: usize, escape_at: usize) -> Result<u16, PropertiesError> {
        let end = (pos + 4).min(self.chars.len());
        let digits = &self.chars[pos..end];
        let mut code: u16 = 0;
        let malformed = || PropertiesError::MalformedUnicodeEscape {
            line: self.line_at(escape_at),
            found: digits.iter().collect(),
        };
        if digits.len() < 4 {
            return Err(malformed());
        }
        for d in digits {
            let v = d.to_digit(16).ok_or_else(malformed)?;
            // Four hex digits always fit in u16.
            code = (code << 4) | v as u16;
        }
        Ok(code)
    }

    /// Applies escape processing to `chars[start..end]`.
    fn convert(&self, start: usize, end: usize) -> Result<String, PropertiesError> {
        let chars = &self.chars;
        let mut out = String::with_capacity(end.saturating_sub(start));
        let mut i = start;
        while i < end {
            let c = chars[i];
            i += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(&e) = chars.get(i).filter(|_| i < end) else {
                // A lone trailing backslash cannot survive line reading; keep it literally.
                out.push('\\');
                break;
            };
            i += 1;
            match e {
                't' => out.push('\t'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                'f' => out.push('\x0c'),
                'u' => {
                    let escape_at = i - 2;
                    let code = self.hex4(i, escape_at)?;
                    i += 4;
                    match code {
                        0xD800..=0xDBFF => {
                            // Needs a low surrogate escape right after.
                            let low =
                                if chars.get(i) == Some(&'\\') && chars.get(i + 1) == Some(&'u') {
                                    let low = self.hex4(i + 2, i)?;
                                    (0xDC00..=0xDFFF).contains(&low).then_some(low)
                                } else {
                                    None
                                };
                            let Some(low) = low else {
                                return Err(PropertiesError::UnpairedSurrogate {
                                    line: self.line_at(escape_at),
                                    code,
                                });
                            };
                            i += 6;
                            let scalar = 0x10000
                                + ((u32::from(code) - 0xD800) << 10)
                                + (u32::from(low) - 0xDC00);
                            // Always a valid scalar value (U+10000..=U+10FFFF).
                            out.push(char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER));
                        }
                        0xDC00..=0xDFFF => {
                            return Err(PropertiesError::UnpairedSurrogate {
                                line: self.line_at(escape_at),
                                code,
                            })
                        }
                        _ => out.push(
                            char::from_u32(u32::from(code)).unwrap_or(char::REPLACEMENT_CHARACTER),
                        ),
                    }
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Finds where the key ends and the value starts, as `Properties.load0` does.
fn split_key_value(chars: &[char]) -> (usize, usize) {
    let limit = chars.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = chars[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = chars[value_start];
        if !is_blank(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (key_len, value_start)
}

/// Splits text into logical lines, as Java's `Properties.LineReader` does.
struct LineReader<'a> {
    chars: Peekable<Chars<'a>>,
    /// The natural line number of the next character.
    line: usize,
}

impl LineReader<'_> {
    /// The next character and its natural line number.
    fn bump(&mut self) -> Option<(char, usize)> {
        let c = self.chars.next()?;
        let line = self.line;
        if c == '\n' || (c == '\r' && self.chars.peek() != Some(&'\n')) {
            self.line += 1;
        }
        Some((c, line))
    }

    fn next_logical_line(&mut self) -> Option<LogicalLine> {
        let mut chars = Vec::new();
        let mut segments = Vec::new();
        let mut new_segment = true;
        let mut skip_blanks = true;
        let mut appended_line_begin = false;
        let mut is_new_line = true;
        let mut is_comment = false;
        let mut preceding_backslash = false;
        let mut skip_lf = false;
        loop {
            let Some((c, line)) = self.bump() else {
                if is_comment || chars.is_empty() {
                    return None;
                }
                if preceding_backslash {
                    chars.pop();
                }
                return Some(LogicalLine { chars, segments });
            };
            if skip_lf {
                skip_lf = false;
                if c == '\n' {
                    continue;
                }
            }
            if skip_blanks {
                if is_blank(c) {
                    continue;
                }
                if !appended_line_begin && (c == '\r' || c == '\n') {
                    continue;
                }
                skip_blanks = false;
                appended_line_begin = false;
            }
            if is_new_line {
                is_new_line = false;
                if c == '#' || c == '!' {
                    is_comment = true;
                    continue;
                }
            }
            if c != '\n' && c != '\r' {
                if is_comment {
                    continue;
                }
                if new_segment {
                    segments.push((chars.len(), line));
                    new_segment = false;
                }
                chars.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            // End of a natural line.
            if is_comment || chars.is_empty() {
                is_comment = false;
                is_new_line = true;
                skip_blanks = true;
                appended_line_begin = false;
                preceding_backslash = false;
                continue;
            }
            if preceding_backslash {
                chars.pop();
                preceding_backslash = false;
                skip_blanks = true;
                appended_line_begin = true;
                new_segment = true;
                if c == '\r' {
                    skip_lf = true;
                }
                continue;
            }
            return Some(LogicalLine { chars, segments });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_and_blank_input() {
        assert!(p("").is_empty());
        assert!(p("\n\n\r\n  \t\x0c \n").is_empty());
        assert!(p("   ").is_empty());
    }

    #[test]
    fn separators() {
        assert_eq!(p("a=1"), kv(&[("a", "1")]));
        assert_eq!(p("a:1"), kv(&[("a", "1")]));
        assert_eq!(p("a 1"), kv(&[("a", "1")]));
        assert_eq!(p("a\t1"), kv(&[("a", "1")]));
        assert_eq!(p("a\x0c1"), kv(&[("a", "1")]));
        assert_eq!(p("a = 1"), kv(&[("a", "1")]));
        assert_eq!(p("a  :  1"), kv(&[("a", "1")]));
        assert_eq!(p("   a=1"), kv(&[("a", "1")]));
    }

    #[test]
    fn only_first_separator_counts() {
        assert_eq!(p("a = = 1"), kv(&[("a", "= 1")]));
        assert_eq!(p("a==1"), kv(&[("a", "=1")]));
        assert_eq!(p("a:=1"), kv(&[("a", "=1")]));
        assert_eq!(p("a=:1"), kv(&[("a", ":1")]));
        assert_eq!(p("a b=c"), kv(&[("a", "b=c")]));
        assert_eq!(p("a=b=c:d"), kv(&[("a", "b=c:d")]));
        assert_eq!(
            p("url=https://host:443/x"),
            kv(&[("url", "https://host:443/x")])
        );
    }

    #[test]
    fn key_without_value() {
        assert_eq!(p("a"), kv(&[("a", "")]));
        assert_eq!(p("a="), kv(&[("a", "")]));
        assert_eq!(p("a:"), kv(&[("a", "")]));
        assert_eq!(p("a   "), kv(&[("a", "")]));
        assert_eq!(p("a =  "), kv(&[("a", "")]));
        assert_eq!(p("a\nb"), kv(&[("a", ""), ("b", "")]));
    }

    #[test]
    fn empty_key() {
        assert_eq!(p("=v"), kv(&[("", "v")]));
        assert_eq!(p(":v"), kv(&[("", "v")]));
        assert_eq!(p("  = v"), kv(&[("", "v")]));
    }

    #[test]
    fn trailing_whitespace_of_value_is_kept() {
        assert_eq!(p("a=1  \t"), kv(&[("a", "1  \t")]));
        assert_eq!(p("a=1 \nb=2"), kv(&[("a", "1 "), ("b", "2")]));
    }

    #[test]
    fn comments() {
        assert_eq!(p("# c\n! c\na=1"), kv(&[("a", "1")]));
        assert_eq!(p("   # indented comment\na=1"), kv(&[("a", "1")]));
        assert_eq!(p("\t! c"), kv(&[]));
        // Not a comment when not first: part of the value.
        assert_eq!(p("a=1 # not a comment"), kv(&[("a", "1 # not a comment")]));
        assert_eq!(p("a#b=c"), kv(&[("a#b", "c")]));
        // A comment at the end without newline.
        assert_eq!(p("a=1\n# end"), kv(&[("a", "1")]));
    }

    #[test]
    fn comment_lines_do_not_continue() {
        assert_eq!(p("# comment \\\na=1"), kv(&[("a", "1")]));
        assert_eq!(p("! comment \\\r\na=1"), kv(&[("a", "1")]));
    }

    #[test]
    fn line_endings() {
        let expected = kv(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(p("a=1\nb=2\nc=3"), expected);
        assert_eq!(p("a=1\r\nb=2\r\nc=3\r\n"), expected);
        assert_eq!(p("a=1\rb=2\rc=3\r"), expected);
        assert_eq!(p("a=1\r\n\r\nb=2\r\rc=3\n\n"), expected);
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(p("a=1\\\n2"), kv(&[("a", "12")]));
        assert_eq!(p("a=1, \\\n    2, \\\n\t 3"), kv(&[("a", "1, 2, 3")]));
        assert_eq!(p("a=1\\\r\n   2"), kv(&[("a", "12")]));
        assert_eq!(p("a=1\\\r   2"), kv(&[("a", "12")]));
        // Continuation in the key.
        assert_eq!(p("ke\\\n  y=v"), kv(&[("key", "v")]));
        // A continuation line starting with # is not a comment.
        assert_eq!(p("a=1\\\n  #2"), kv(&[("a", "1#2")]));
        // A continuation line may itself continue.
        assert_eq!(p("a=\\\n\\\n  x"), kv(&[("a", "x")]));
    }

    #[test]
    fn empty_continuation_line_ends_logical_line() {
        assert_eq!(p("a=1\\\n\nb=2"), kv(&[("a", "1"), ("b", "2")]));
        assert_eq!(p("a=1\\\n   \nb=2"), kv(&[("a", "1"), ("b", "2")]));
        assert_eq!(p("a=1\\\r\n\r\nb=2"), kv(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        assert_eq!(p("a=1\\\\\nb=2"), kv(&[("a", "1\\"), ("b", "2")]));
        assert_eq!(p("a=1\\\\\\\nb=2"), kv(&[("a", "1\\b=2")]));
        assert_eq!(p("a=\\\\\\\\\nb"), kv(&[("a", "\\\\"), ("b", "")]));
    }

    #[test]
    fn backslash_at_end_of_text() {
        assert_eq!(p("a=1\\"), kv(&[("a", "1")]));
        assert_eq!(p("a=1\\\n"), kv(&[("a", "1")]));
        assert_eq!(p("a=1\\\n   "), kv(&[("a", "1")]));
        // As in Java: a lone backslash at the very end gives an empty key, but once
        // continued onto an empty last line it gives nothing.
        assert_eq!(p("\\"), kv(&[("", "")]));
        assert!(p("\\\n").is_empty());
    }

    #[test]
    fn escapes() {
        assert_eq!(p("a=\\t\\n\\r\\f"), kv(&[("a", "\t\n\r\x0c")]));
        assert_eq!(
            p("a=\\\\ \\= \\: \\# \\! \\ x"),
            kv(&[("a", "\\ = : # !  x")])
        );
        // Unknown escapes stand for the character itself.
        assert_eq!(p("a=\\b\\q\\\"\\'"), kv(&[("a", "bq\"'")]));
        // Escaped leading space in a value is kept.
        assert_eq!(p("a=\\  x"), kv(&[("a", "  x")]));
    }

    #[test]
    fn escaped_separators_in_keys() {
        assert_eq!(p("a\\=b=c"), kv(&[("a=b", "c")]));
        assert_eq!(p("a\\:b:c"), kv(&[("a:b", "c")]));
        assert_eq!(p("a\\ b c"), kv(&[("a b", "c")]));
        assert_eq!(p("a\\\\=b"), kv(&[("a\\", "b")]));
        assert_eq!(p("\\#notcomment=1"), kv(&[("#notcomment", "1")]));
        assert_eq!(p("\\!x=1"), kv(&[("!x", "1")]));
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(p("a=\\u0041\\u00e9\\u00E9"), kv(&[("a", "Aéé")]));
        assert_eq!(p("\\u0041=1"), kv(&[("A", "1")]));
        assert_eq!(p("a=\\u20AC1"), kv(&[("a", "€1")]));
        // Surrogate pair.
        assert_eq!(p("a=\\uD83D\\uDE00"), kv(&[("a", "😀")]));
        assert_eq!(p("a=\\ud83d\\ude00!"), kv(&[("a", "😀!")]));
        // Escaped separator char does not split.
        assert_eq!(p("a\\u003Db=c"), kv(&[("a=b", "c")]));
        // Literal non-ASCII text passes through.
        assert_eq!(p("clé=été 😀"), kv(&[("clé", "été 😀")]));
    }

    #[test]
    fn malformed_unicode_escape() {
        let e = parse("a=1\nb=\\u12G4").unwrap_err();
        assert_eq!(
            e,
            PropertiesError::MalformedUnicodeEscape {
                line: 2,
                found: "12G4".into()
            }
        );
        assert_eq!(e.line(), 2);
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(e.to_string().contains("\\u12G4"), "{e}");
        // Too short at end of text.
        assert_eq!(parse("a=\\u00").unwrap_err().line(), 1);
        assert_eq!(parse("a=\\u").unwrap_err().line(), 1);
        // In a key.
        assert_eq!(parse("\n\n\\uXYZW=1").unwrap_err().line(), 3);
    }

    #[test]
    fn error_line_numbers_follow_continuations_and_line_ends() {
        // The escape is on natural line 4.
        let e = parse("# c\r\na=1 \\\r\n   2 \\\r\n  \\u00Z0").unwrap_err();
        assert_eq!(e.line(), 4);
        let e = parse("a=1\r\r\rb=\\u").unwrap_err();
        assert_eq!(e.line(), 4);
    }

    #[test]
    fn unpaired_surrogates() {
        assert_eq!(
            parse("a=\\uD800").unwrap_err(),
            PropertiesError::UnpairedSurrogate {
                line: 1,
                code: 0xD800
            }
        );
        assert!(matches!(
            parse("a=\\uDC00").unwrap_err(),
            PropertiesError::UnpairedSurrogate { code: 0xDC00, .. }
        ));
        assert!(matches!(
            parse("a=\\uD800\\u0041").unwrap_err(),
            PropertiesError::UnpairedSurrogate { code: 0xD800, .. }
        ));
        assert!(matches!(
            parse("a=\\uD800x").unwrap_err(),
            PropertiesError::UnpairedSurrogate { .. }
        ));
        // High surrogate followed by a malformed escape: the malformed one is reported.
        assert!(matches!(
            parse("a=\\uD800\\uZZZZ").unwrap_err(),
            PropertiesError::MalformedUnicodeEscape { .. }
        ));
    }

    #[test]
    fn duplicates_kept_in_order_and_map_keeps_last() {
        assert_eq!(
            p("a=1\nb=2\na=3"),
            kv(&[("a", "1"), ("b", "2"), ("a", "3")])
        );
        let m = parse_map("a=1\nb=2\na=3").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["a"], "3");
    }

    #[test]
    fn realistic_server_config() {
        let text = "# Vantiq server.config\r\n\
               targetServer=https://dev.vantiq.com/\r\n\
               authToken=abc123==\r\n\
               sources = one, two,\\\r\n          three\r\n\
               connectKWArgs={\"disableSslVerification\": true}\r\n";
        let props = p(text);
        assert_eq!(
            props[0],
            ("targetServer".into(), "https://dev.vantiq.com/".into())
        );
        assert_eq!(props[1], ("authToken".into(), "abc123==".into()));
        assert_eq!(props[2], ("sources".into(), "one, two,three".into()));
        assert_eq!(
            props[3],
            (
                "connectKWArgs".into(),
                "{\"disableSslVerification\": true}".into()
            )
        );
        // A byte-order mark is not blank: Java makes it part of the first key (callers
        // reading files strip it).
        assert_eq!(p("\u{feff}# c\na=1")[0].0, "\u{feff}#");
    }

    /// Writes a key or value the way `Properties.store` does (saveConvert).
    fn escape(s: &str, is_key: bool) -> String {
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            match c {
                ' ' if i == 0 || is_key => out.push_str("\\ "),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\x0c' => out.push_str("\\f"),
                '=' | ':' | '#' | '!' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn store_then_load_round_trips(
            pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..6),
            sep in prop_oneof![Just("="), Just(":"), Just(" = "), Just(" ")],
            eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        ) {
            let mut text = String::from("# generated");
            text.push_str(eol);
            for (k, v) in &pairs {
                text.push_str(&escape(k, true));
                // Java's store always writes `=`; an empty key needs a real separator.
                text.push_str(if k.is_empty() { "=" } else { sep });
                text.push_str(&escape(v, false));
                text.push_str(eol);
            }
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(parsed, pairs);
        }

        #[test]
        fn never_panics(text in "[ a=:#!\\\\u0-9A-Fx\t\r\n\u{c}é]{0,40}") {
            let _ = parse(&text);
        }

        #[test]
        fn continuation_anywhere_in_value_is_transparent(
            value in "[a-z0-9,]{0,20}",
            cut in 0usize..20,
            indent in "[ \t]{0,4}",
        ) {
            let cut = cut.min(value.len());
            let text = format!("k={}\\\n{}{}", &value[..cut], indent, &value[cut..]);
            prop_assert_eq!(parse(&text).unwrap(), vec![("k".to_string(), value.clone())]);
        }
    }
}
