//! `connectKWArgs`: the Python SDK's keyword arguments for its WebSocket library
//! (`websockets.connect`), mapped onto what they mean here.
//!
//! | keyword | applied as |
//! |---|---|
//! | `disableSslVerification` | [`TlsSettings::disable_verification`](super::TlsSettings) |
//! | `open_timeout` (seconds) | `Settings::connect_timeout` |
//! | `ping_interval` (seconds, `null` for none) | `Settings::ping_interval` (pings are sent when `sendPings=true`); `null` turns pings off |
//! | `ping_timeout` (seconds, `null` for none) | `Settings::pong_timeout` (default half the ping interval); `null` waits for ever |
//! | `close_timeout` (seconds) | `Settings::close_timeout` |
//! | `max_size` (bytes, `null` for no limit) | `Settings::max_message_size` |
//! | `proxy` (a URL, `null` for none, `true` for the environment) | the `proxy` key, which wins when both are given |
//! | `user_agent_header` (a string) | the handshake's `User-Agent` header |
//! | `additional_headers` (an object of strings) | extra headers on the handshake request |
//!
//! `connectKWArgs` applies over the `Settings` given in code: it is the deployment's
//! word. Other keywords mean nothing to this SDK: each is named in one warning when
//! the configuration is read, and otherwise ignored.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{ProxySetting, ProxyUrl};

/// The keyword turning certificate checks off.
pub(crate) const DISABLE_SSL_VERIFICATION: &str = "disableSslVerification";

/// The keywords this SDK applies.
const KNOWN: [&str; 10] = [
    DISABLE_SSL_VERIFICATION,
    "open_timeout",
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "max_size",
    "proxy",
    "user_agent_header",
    "additional_headers",
    // Accepted by the Python SDK's websockets for TLS; carried by `caFile` here.
    "ssl",
];

/// What `connectKWArgs` asks of the connection, typed. Every field is `None` (or empty)
/// when the keyword is absent; the SDK's own settings then apply.
///
/// `Debug` shows the names of the additional headers, not their values (they may carry
/// credentials).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// `open_timeout`: time allowed for one connection attempt.
    pub open_timeout: Option<Duration>,
    /// `ping_interval`: `Some(None)` turns pings off (`null`).
    pub ping_interval: Option<Option<Duration>>,
    /// `ping_timeout`: `Some(None)` waits for a pong for ever (`null`).
    pub ping_timeout: Option<Option<Duration>>,
    /// `close_timeout`: how long closing waits.
    pub close_timeout: Option<Duration>,
    /// `max_size`: the largest message accepted; `Some(None)` for no limit (`null`).
    pub max_size: Option<Option<usize>>,
    /// `user_agent_header`: the `User-Agent` of the handshake request.
    pub user_agent: Option<String>,
    /// `additional_headers`: extra headers of the handshake request, in order.
    pub additional_headers: Vec<(String, String)>,
    /// `proxy`: where the proxy comes from, when given.
    pub proxy: Option<ProxySetting>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("open_timeout", &self.open_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_size", &self.max_size)
            .field("user_agent", &self.user_agent)
            .field(
                "additional_headers",
                &self
                    .additional_headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// The parsed `connectKWArgs`: the object as written, the typed options, and
/// `disableSslVerification`.
pub(super) struct Parsed {
    pub(super) map: Map<String, Value>,
    pub(super) options: ConnectOptions,
    pub(super) disable_verification: bool,
    /// Keywords this SDK does not apply, in the order written.
    pub(super) unknown: Vec<String>,
}

/// Parses the JSON text of `connectKWArgs`; the error says which keyword is wrong
/// (never showing a header value or proxy credentials).
pub(super) fn parse(json: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object, found {}",
            json_kind(&value)
        ));
    };
    let mut options = ConnectOptions::default();
    let mut disable_verification = false;
    let mut unknown = Vec::new();
    for (key, value) in &map {
        let wrong =
            |expected: &str| format!("`{key}` must be {expected}, found {}", json_kind(value));
        match key.as_str() {
            DISABLE_SSL_VERIFICATION => {
                disable_verification = match value {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    _ => return Err(wrong("true or false")),
                }
            }
            "open_timeout" => {
                options.open_timeout =
                    Some(seconds(value).ok_or_else(|| wrong("a number of seconds"))?)
            }
            "close_timeout" => {
                options.close_timeout =
                    Some(seconds(value).ok_or_else(|| wrong("a number of seconds"))?)
            }
            "ping_interval" | "ping_timeout" => {
                let v = match value {
                    Value::Null => None,
                    v => Some(seconds(v).ok_or_else(|| wrong("a number of seconds or null"))?),
                };
                if key == "ping_interval" {
                    options.ping_interval = Some(v);
                } else {
                    options.ping_timeout = Some(v);
                }
            }
            "max_size" => {
                options.max_size = Some(match value {
                    Value::Null => None,
                    Value::Number(n) => Some(
                        n.as_u64()
                            .filter(|n| *n > 0)
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| wrong("a positive number of bytes or null"))?,
                    ),
                    _ => return Err(wrong("a number of bytes or null")),
                })
            }
            "proxy" => {
                options.proxy = Some(match value {
                    Value::Null | Value::Bool(false) => ProxySetting::Direct,
                    Value::Bool(true) => ProxySetting::FromEnvironment,
                    Value::String(s) => ProxyUrl::parse(s)
                        .map(ProxySetting::Url)
                        .map_err(|e| format!("`proxy`: {e}"))?,
                    _ => return Err(wrong("a proxy URL, null or true")),
                })
            }
            "user_agent_header" => match value {
                Value::String(s) if header_value_ok(s) => options.user_agent = Some(s.clone()),
                Value::String(_) => {
                    return Err(
                        "`user_agent_header` contains a line break, a control character or non-ASCII text".into(),
                    )
                }
                _ => return Err(wrong("a string")),
            },
            "additional_headers" => {
                let Value::Object(headers) = value else {
                    return Err(wrong("an object of header names and string values"));
                };
                for (name, v) in headers {
                    if !header_name_ok(name) {
                        return Err(format!(
                            "`additional_headers`: `{name}` is not a valid header name"
                        ));
                    }
                    match v {
                        Value::String(s) if header_value_ok(s) => {
                            options.additional_headers.push((name.clone(), s.clone()))
                        }
                        Value::String(_) => {
                            return Err(format!(
                                "`additional_headers`: the value of `{name}` contains a line break, a control character or non-ASCII text"
                            ))
                        }
                        other => {
                            return Err(format!(
                                "`additional_headers`: the value of `{name}` must be a string, found {}",
                                json_kind(other)
                            ))
                        }
                    }
                }
            }
            "ssl" => {}
            _ => unknown.push(key.clone()),
        }
    }
    debug_assert!(KNOWN.iter().all(|k| !unknown.iter().any(|u| u == k)));
    Ok(Parsed {
        map,
        options,
        disable_verification,
        unknown,
    })
}

/// A non-negative, finite number of seconds.
fn seconds(value: &Value) -> Option<Duration> {
    let secs = value.as_f64()?;
    Duration::try_from_secs_f64(secs).ok()
}

fn header_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Visible ASCII, spaces and tabs: what an HTTP header value can carry as text.
fn header_value_ok(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The JSON kind of a value, for messages ("a string", "an object").
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> Parsed {
        parse(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn every_keyword_is_applied() {
        let p = ok(
            r#"{"disableSslVerification": true, "open_timeout": 2.5, "ping_interval": 7,
            "ping_timeout": null, "close_timeout": 0.25, "max_size": 1048576,
            "proxy": "http://u:pw@p:3128", "user_agent_header": "my-connector/1.0",
            "additional_headers": {"X-Site": "north", "X-Trace": "1"}, "compression": null,
            "ssl": true, "max_queue": 4}"#,
        );
        assert!(p.disable_verification);
        let o = &p.options;
        assert_eq!(o.open_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(o.ping_interval, Some(Some(Duration::from_secs(7))));
        assert_eq!(o.ping_timeout, Some(None));
        assert_eq!(o.close_timeout, Some(Duration::from_millis(250)));
        assert_eq!(o.max_size, Some(Some(1 << 20)));
        assert_eq!(o.user_agent.as_deref(), Some("my-connector/1.0"));
        assert_eq!(
            o.additional_headers,
            [
                ("X-Site".to_string(), "north".to_string()),
                ("X-Trace".to_string(), "1".to_string())
            ]
        );
        assert!(matches!(&o.proxy, Some(ProxySetting::Url(u)) if u.port() == 3128));
        assert_eq!(p.unknown, ["compression", "max_queue"]);
        assert_eq!(p.map.len(), 12);
        let debug = format!("{o:?}");
        assert!(!debug.contains("north") && !debug.contains("pw"), "{debug}");
    }

    #[test]
    fn nulls_and_defaults() {
        let p = ok(r#"{"ping_interval": null, "max_size": null, "proxy": null}"#);
        assert_eq!(p.options.ping_interval, Some(None));
        assert_eq!(p.options.max_size, Some(None));
        assert_eq!(p.options.proxy, Some(ProxySetting::Direct));
        assert_eq!(
            ok(r#"{"proxy": true}"#).options.proxy,
            Some(ProxySetting::FromEnvironment)
        );
        let p = ok("{}");
        assert_eq!(p.options, ConnectOptions::default());
        assert!(!p.disable_verification && p.unknown.is_empty());
    }

    #[test]
    fn wrong_types_are_named() {
        for (json, needle) in [
            ("[]", "expected a JSON object, found an array"),
            ("{", "not valid JSON"),
            (
                r#"{"disableSslVerification": "yes"}"#,
                "`disableSslVerification` must be true or false, found a string",
            ),
            (
                r#"{"open_timeout": "10"}"#,
                "`open_timeout` must be a number of seconds",
            ),
            (
                r#"{"open_timeout": -1}"#,
                "`open_timeout` must be a number of seconds",
            ),
            (
                r#"{"ping_interval": true}"#,
                "`ping_interval` must be a number of seconds or null",
            ),
            (
                r#"{"max_size": 0}"#,
                "`max_size` must be a positive number of bytes",
            ),
            (
                r#"{"max_size": 1.5}"#,
                "`max_size` must be a positive number of bytes",
            ),
            (r#"{"proxy": 3}"#, "`proxy` must be a proxy URL"),
            (
                r#"{"proxy": "socks5://u:secretpw@p"}"#,
                "unsupported proxy scheme",
            ),
            (r#"{"user_agent_header": "a\nb"}"#, "line break"),
            (
                r#"{"additional_headers": []}"#,
                "`additional_headers` must be an object",
            ),
            (
                r#"{"additional_headers": {"Bad Name": "x"}}"#,
                "`Bad Name` is not a valid header name",
            ),
            (
                r#"{"additional_headers": {"X": 1}}"#,
                "the value of `X` must be a string, found a number",
            ),
            (
                r#"{"additional_headers": {"X": "secretpw\r\n"}}"#,
                "the value of `X` contains a line break",
            ),
        ] {
            let e = parse(json)
                .err()
                .unwrap_or_else(|| panic!("{json} was accepted"));
            assert!(e.contains(needle), "{json}: {e}");
            assert!(!e.contains("secretpw"), "{json}: {e}");
        }
    }
}
