//! Which HTTP proxy a connection goes through: the `proxy` key, the environment
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as curl and Python read them),
//! and the proxy URL with its credentials.
//!
//! Everything here is pure: the environment is passed in as a lookup function, so the
//! rules are tested without touching the process's environment. The transport calls
//! [`ProxySetting::resolve`] with the real environment when a connector set starts.
//!
//! Credentials in a proxy URL are percent-decoded and kept as [`Secret`]s: neither
//! `Debug` nor `Display` of a [`ProxyUrl`], nor any error of this module, shows them.

use std::fmt;

use super::no_proxy::{split_host_port, NoProxy};
use super::Secret;

/// Where a connector's proxy comes from (key `proxy`, or `Settings::proxy`, which wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySetting {
    /// Read the proxy from the environment (`HTTPS_PROXY` for `wss`, `HTTP_PROXY` for
    /// `ws`, `ALL_PROXY` as the fallback, each also in lower case; `NO_PROXY` lists the
    /// hosts reached directly). The default.
    #[default]
    FromEnvironment,
    /// Connect directly, whatever the environment says (`proxy=none`).
    Direct,
    /// Always go through this proxy (`proxy=http://host:3128`); `NO_PROXY` is not read.
    Url(ProxyUrl),
}

impl ProxySetting {
    /// Parses the value of the `proxy` key: `none` (any case) or a proxy URL.
    ///
    /// # Errors
    ///
    /// Why the URL is not usable (see [`ProxyUrl::parse`]); the message never shows
    /// the credentials.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::ProxySetting;
    ///
    /// assert_eq!(ProxySetting::parse("none")?, ProxySetting::Direct);
    /// let ProxySetting::Url(url) = ProxySetting::parse("http://u:p%40ss@proxy:3128")? else { panic!() };
    /// assert_eq!(url.to_string(), "http://***@proxy:3128");
    /// # Ok::<(), vantiq_connector_sdk::config::ProxyError>(())
    /// ```
    pub fn parse(value: &str) -> Result<ProxySetting, ProxyError> {
        if value.trim().eq_ignore_ascii_case("none") {
            Ok(ProxySetting::Direct)
        } else {
            ProxyUrl::parse(value).map(ProxySetting::Url)
        }
    }

    /// The proxy to use for the WebSocket `ws_url` (`ws://` or `wss://`), or `None` to
    /// connect directly. `env` looks a variable up (`|name| std::env::var(name).ok()`).
    ///
    /// The upper-case name wins over the lower-case one, as with curl; an empty variable
    /// counts as unset. `NO_PROXY` applies only to a proxy from the environment.
    ///
    /// # Errors
    ///
    /// A proxy variable that is set but not a usable proxy URL, naming the variable.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::ProxySetting;
    ///
    /// let env = |name: &str| match name {
    ///     "HTTPS_PROXY" => Some("http://proxy.corp:3128".to_string()),
    ///     "NO_PROXY" => Some(".internal, 10.0.0.0/8".to_string()),
    ///     _ => None,
    /// };
    /// let setting = ProxySetting::FromEnvironment;
    /// let proxy = setting.resolve("wss://dev.vantiq.com/api/v1/wsock/websocket", env)?;
    /// assert_eq!(proxy.unwrap().host(), "proxy.corp");
    /// assert!(setting.resolve("wss://vantiq.internal/x", env)?.is_none());
    /// assert!(setting.resolve("ws://10.1.2.3:8080/x", env)?.is_none());
    /// # Ok::<(), vantiq_connector_sdk::config::ProxyError>(())
    /// ```
    pub fn resolve(
        &self,
        ws_url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyUrl>, ProxyError> {
        match self {
            ProxySetting::Direct => Ok(None),
            ProxySetting::Url(url) => Ok(Some(url.clone())),
            ProxySetting::FromEnvironment => {
                let lookup = |upper: &'static str| {
                    [upper.to_owned(), upper.to_ascii_lowercase()]
                        .into_iter()
                        .find_map(|name| {
                            env(&name)
                                .filter(|v| !v.trim().is_empty())
                                .map(|v| (name, v))
                        })
                };
                let (host, port, secure) = target_of(ws_url);
                let specific = if secure { "HTTPS_PROXY" } else { "HTTP_PROXY" };
                let Some((name, value)) = lookup(specific).or_else(|| lookup("ALL_PROXY")) else {
                    return Ok(None);
                };
                if let Some((_, no_proxy)) = lookup("NO_PROXY") {
                    if NoProxy::parse(&no_proxy).matches(&host, port) {
                        return Ok(None);
                    }
                }
                ProxyUrl::parse(&value)
                    .map(Some)
                    .map_err(|e| e.in_variable(name))
            }
        }
    }
}

/// The host, port and security of a `ws://` or `wss://` URL (already validated).
fn target_of(ws_url: &str) -> (String, u16, bool) {
    let (scheme, rest) = ws_url.split_once("://").unwrap_or(("ws", ws_url));
    let secure = scheme.eq_ignore_ascii_case("wss");
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let default_port = if secure { 443 } else { 80 };
    let (host, port) = split_host_port(authority);
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default_port);
    (host.to_ascii_lowercase(), port, secure)
}

/// A proxy's user name and password (from the URL's user information,
/// percent-decoded). Never shown: `Debug` prints `***` for both.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    username: Secret,
    password: Secret,
}

impl ProxyCredentials {
    /// Credentials for Basic authentication to the proxy.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        ProxyCredentials {
            username: Secret::new(username),
            password: Secret::new(password),
        }
    }

    /// The user name (only where it is sent).
    pub fn username(&self) -> &Secret {
        &self.username
    }

    /// The password (only where it is sent).
    pub fn password(&self) -> &Secret {
        &self.password
    }
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProxyCredentials(***)")
    }
}

/// An HTTP proxy: host, port, and optional Basic credentials.
///
/// `Display` writes it as a URL with `***` in place of the credentials, fit for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    credentials: Option<ProxyCredentials>,
}

impl ProxyUrl {
    /// The port used when a proxy URL names none (that of `http://`).
    pub const DEFAULT_PORT: u16 = 80;

    /// Parses `http://[user[:password]@]host[:port][/]`; a URL without a scheme is taken
    /// as `http://`, as curl does. User and password are percent-decoded (`%40` for `@`).
    ///
    /// Only `http://` proxies are supported: an `https://`, `socks5://` or `socks5h://`
    /// proxy is refused with [`ProxyError::UnsupportedScheme`] rather than ignored.
    ///
    /// # Errors
    ///
    /// [`ProxyError::UnsupportedScheme`], or [`ProxyError::Invalid`] saying what is
    /// wrong; neither shows the credentials.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::{ProxyError, ProxyUrl};
    ///
    /// let url = ProxyUrl::parse("http://alice:s%3Acret@10.0.0.1:8080")?;
    /// assert_eq!((url.host(), url.port()), ("10.0.0.1", 8080));
    /// assert_eq!(url.credentials().unwrap().password().expose(), "s:cret");
    /// assert!(!format!("{url:?} {url}").contains("cret"));
    /// assert!(matches!(ProxyUrl::parse("socks5://p:1080"), Err(ProxyError::UnsupportedScheme { .. })));
    /// # Ok::<(), ProxyError>(())
    /// ```
    pub fn parse(text: &str) -> Result<ProxyUrl, ProxyError> {
        let text = text.trim();
        let invalid = |reason: String| ProxyError::Invalid {
            variable: None,
            url: redact(text),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("the proxy URL is empty".into()));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "the proxy URL contains whitespace or control characters".into(),
            ));
        }
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(ProxyError::UnsupportedScheme {
                    variable: None,
                    scheme: scheme.to_ascii_lowercase(),
                })
            }
            None => text,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !matches!(tail, "" | "/") {
            return Err(invalid(
                "a proxy URL has no path, query or fragment (expected http://host:port)".into(),
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| {
                    invalid("the user name is not validly percent-encoded UTF-8".into())
                })?;
                let password = percent_decode(password).ok_or_else(|| {
                    invalid("the password is not validly percent-encoded UTF-8".into())
                })?;
                Some(ProxyCredentials::new(user, password))
            }
        };
        let (host, port) = split_host_port(hostport);
        if host.is_empty() {
            return Err(invalid("the proxy URL has no host".into()));
        }
        if hostport.starts_with('[') && host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!("`{host}` is not a valid IPv6 address")));
        }
        if !hostport.starts_with('[') {
            if let Some(c) = host
                .chars()
                .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_')))
            {
                return Err(invalid(format!(
                    "invalid character `{c}` in the proxy host"
                )));
            }
        }
        let port = match port {
            None | Some("") => Self::DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid(format!("invalid port `{p}`")))?,
        };
        Ok(ProxyUrl {
            host: host.to_ascii_lowercase(),
            port,
            credentials,
        })
    }

    /// The proxy's host name or IP address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Basic credentials, if the URL had user information.
    pub fn credentials(&self) -> Option<&ProxyCredentials> {
        self.credentials.as_ref()
    }

    /// The `host:port` to dial (IPv6 addresses in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = if self.credentials.is_some() {
            "***@"
        } else {
            ""
        };
        write!(f, "http://{auth}{}", self.authority())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A proxy URL as written, with any user information replaced by `***`.
fn redact(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..end].rsplit_once('@') {
        Some((_, hostport)) => format!("***@{hostport}{}", &rest[end..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    }
}

/// Why a proxy setting cannot be used. The messages show proxy URLs with their
/// credentials replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL is malformed.
    #[error("{}invalid proxy URL `{url}`: {reason}", from_prefix(.variable))]
    Invalid {
        /// The environment variable it came from, if any.
        variable: Option<String>,
        /// The URL as written, credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The proxy's scheme is not `http`.
    #[error(
        "{}unsupported proxy scheme `{scheme}://` (only http:// proxies are supported; \
         set `proxy=none` in server.config to ignore the environment)",
        from_prefix(.variable)
    )]
    UnsupportedScheme {
        /// The environment variable it came from, if any.
        variable: Option<String>,
        /// The scheme, in lower case.
        scheme: String,
    },
}

impl ProxyError {
    fn in_variable(self, name: String) -> ProxyError {
        match self {
            ProxyError::Invalid { url, reason, .. } => ProxyError::Invalid {
                variable: Some(name),
                url,
                reason,
            },
            ProxyError::UnsupportedScheme { scheme, .. } => ProxyError::UnsupportedScheme {
                variable: Some(name),
                scheme,
            },
        }
    }
}

fn from_prefix(variable: &Option<String>) -> String {
    variable
        .as_ref()
        .map(|v| format!("environment variable {v}: "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const WSS: &str = "wss://dev.vantiq.com/api/v1/wsock/websocket";
    const WS: &str = "ws://localhost:8080/api/v1/wsock/websocket";

    fn resolved(url: &str, vars: &[(&str, &str)]) -> Option<String> {
        ProxySetting::FromEnvironment
            .resolve(url, env(vars))
            .unwrap()
            .map(|p| p.authority())
    }

    #[test]
    fn parses_proxy_urls() {
        let u = ProxyUrl::parse("http://proxy.corp:3128").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.credentials()),
            ("proxy.corp", 3128, None)
        );
        let u = ProxyUrl::parse("HTTP://Proxy.Corp/").unwrap();
        assert_eq!((u.host(), u.port()), ("proxy.corp", 80));
        let u = ProxyUrl::parse("proxy:8888").unwrap();
        assert_eq!((u.host(), u.port()), ("proxy", 8888));
        let u = ProxyUrl::parse("http://[::1]:3128").unwrap();
        assert_eq!((u.host(), u.authority()), ("::1", "[::1]:3128".to_string()));
        let u = ProxyUrl::parse("http://a%20b:p%40ss%3Aw@h:1").unwrap();
        let c = u.credentials().unwrap();
        assert_eq!(
            (c.username().expose(), c.password().expose()),
            ("a b", "p@ss:w")
        );
        // A password may hold an `@` written plainly: the last `@` ends the user info.
        let u = ProxyUrl::parse("http://u:p@ss@h:1").unwrap();
        assert_eq!(u.credentials().unwrap().password().expose(), "p@ss");
        assert_eq!(u.host(), "h");
        let u = ProxyUrl::parse("http://user@h:1").unwrap();
        assert_eq!(u.credentials().unwrap().password().expose(), "");
    }

    #[test]
    fn refuses_bad_proxy_urls_without_showing_credentials() {
        for (text, needle) in [
            ("", "empty"),
            ("http://", "no host"),
            ("http://u:secretpw@:3128", "no host"),
            ("http://u:secretpw@h:99999", "invalid port"),
            ("http://u:secretpw@h:0", "invalid port"),
            ("http://u:secretpw@h:x", "invalid port"),
            ("http://u:secret%zzpw@h:1", "percent-encoded"),
            ("http://u:secretpw@h:1/path", "no path"),
            ("http://u:secretpw@h!:1", "invalid character"),
            ("http://[zz]:1", "IPv6"),
            ("http://h :1", "whitespace"),
        ] {
            let e = ProxyUrl::parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(!msg.contains("secret"), "{text}: {msg}");
            assert!(!format!("{e:?}").contains("secret"), "{text}: {e:?}");
        }
    }

    #[test]
    fn unsupported_schemes_are_named() {
        for scheme in ["https", "socks5", "socks5h", "SOCKS4"] {
            let e = ProxyUrl::parse(&format!("{scheme}://u:secretpw@p:1080")).unwrap_err();
            assert_eq!(
                e,
                ProxyError::UnsupportedScheme {
                    variable: None,
                    scheme: scheme.to_ascii_lowercase()
                }
            );
            assert!(e.to_string().contains("unsupported proxy scheme"), "{e}");
        }
        let e = ProxySetting::FromEnvironment
            .resolve(WSS, env(&[("HTTPS_PROXY", "socks5h://p:1080")]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "environment variable HTTPS_PROXY: unsupported proxy scheme `socks5h://`"
            ),
            "{e}"
        );
    }

    #[test]
    fn display_and_debug_redact() {
        let u = ProxyUrl::parse("http://bob:hunter2@p:3128").unwrap();
        assert_eq!(u.to_string(), "http://***@p:3128");
        let all = format!(
            "{u:?} {u:#?} {:?} {:?}",
            u.credentials(),
            ProxySetting::Url(u.clone())
        );
        assert!(!all.contains("hunter2") && !all.contains("bob"), "{all}");
        assert_eq!(redact("http://a:b@h:1/x"), "http://***@h:1/x");
        assert_eq!(redact("a:b@h:1"), "***@h:1");
        assert_eq!(redact("http://h:1"), "http://h:1");
    }

    #[test]
    fn the_setting_values() {
        assert_eq!(ProxySetting::parse(" NONE ").unwrap(), ProxySetting::Direct);
        assert!(matches!(
            ProxySetting::parse("http://p:1").unwrap(),
            ProxySetting::Url(_)
        ));
        assert!(ProxySetting::parse("nonsense://x").is_err());
        let vars = [("HTTPS_PROXY", "http://envproxy:1")];
        assert_eq!(ProxySetting::Direct.resolve(WSS, env(&vars)).unwrap(), None);
        let fixed = ProxySetting::parse("http://fixed:2").unwrap();
        let with_no_proxy = [("NO_PROXY", "*"), ("HTTPS_PROXY", "http://envproxy:1")];
        assert_eq!(
            fixed
                .resolve(WSS, env(&with_no_proxy))
                .unwrap()
                .unwrap()
                .authority(),
            "fixed:2"
        );
    }

    #[test]
    fn environment_variables_by_scheme() {
        let vars = [
            ("HTTPS_PROXY", "http://s:1"),
            ("HTTP_PROXY", "http://p:2"),
            ("ALL_PROXY", "http://a:3"),
        ];
        assert_eq!(resolved(WSS, &vars).as_deref(), Some("s:1"));
        assert_eq!(resolved(WS, &vars).as_deref(), Some("p:2"));
        assert_eq!(resolved(WSS, &vars[2..]).as_deref(), Some("a:3"));
        assert_eq!(resolved(WS, &vars[..1]), None);
        // Lower case names, upper case first, empty values unset.
        assert_eq!(
            resolved(WSS, &[("https_proxy", "http://l:1")]).as_deref(),
            Some("l:1")
        );
        assert_eq!(
            resolved(
                WSS,
                &[("HTTPS_PROXY", "http://u:1"), ("https_proxy", "http://l:1")]
            )
            .as_deref(),
            Some("u:1")
        );
        assert_eq!(
            resolved(WSS, &[("HTTPS_PROXY", " "), ("all_proxy", "http://a:1")]).as_deref(),
            Some("a:1")
        );
        assert_eq!(resolved(WSS, &[]), None);
        // A bad variable names itself.
        let e = ProxySetting::FromEnvironment
            .resolve(WS, env(&[("http_proxy", "http://u:pw@h:bad")]))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "environment variable http_proxy: invalid proxy URL `http://***@h:bad`"
            ),
            "{e}"
        );
    }

    #[test]
    fn no_proxy_rules() {
        let p = [("HTTPS_PROXY", "http://s:1"), ("HTTP_PROXY", "http://s:1")];
        let with = |no: &'static str| [p[0], p[1], ("no_proxy", no)];
        assert_eq!(resolved(WSS, &with("*")), None);
        assert_eq!(resolved(WSS, &with("vantiq.com")), None);
        assert_eq!(resolved(WSS, &with(".vantiq.com")), None);
        assert_eq!(resolved(WSS, &with("*.vantiq.com")), None);
        assert_eq!(resolved(WSS, &with("DEV.VANTIQ.COM")), None);
        assert_eq!(resolved(WSS, &with("dev.vantiq.com:443")), None);
        assert!(resolved(WSS, &with("dev.vantiq.com:8443")).is_some());
        assert!(resolved(WSS, &with("antiq.com")).is_some());
        assert!(resolved(WSS, &with("other.com, x")).is_some());
        assert_eq!(resolved(WS, &with("localhost:8080")), None);
        assert!(resolved(WS, &with("localhost:80")).is_some());
        assert_eq!(resolved("ws://127.0.0.1:9/x", &with("127.0.0.0/8")), None);
        assert_eq!(resolved("ws://127.0.0.1:9/x", &with("127.0.0.1")), None);
        assert!(resolved("ws://127.0.0.1:9/x", &with("10.0.0.0/8")).is_some());
        assert_eq!(resolved("ws://[::1]:9/x", &with("::1")), None);
        assert_eq!(resolved("ws://[::1]:9/x", &with("[::1]:9")), None);
        assert_eq!(resolved("ws://[fd00::5]/x", &with("fd00::/8")), None);
        assert!(resolved("ws://[fe00::5]/x", &with("fd00::/8")).is_some());
        // Garbage entries are skipped, the others still count.
        assert_eq!(resolved(WSS, &with("10.0.0.0/99, :x, ., vantiq.com")), None);
    }

    proptest! {
        #[test]
        fn credentials_round_trip_through_percent_encoding(
            user in "[ -~]{0,12}", password in "\\PC{0,12}",
        ) {
            let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
            let url = ProxyUrl::parse(&format!("http://{}:{}@proxy:3128", enc(&user), enc(&password))).unwrap();
            let c = url.credentials().unwrap();
            prop_assert_eq!(c.username().expose(), user.as_str());
            prop_assert_eq!(c.password().expose(), password.as_str());
            prop_assert_eq!(url.to_string(), "http://***@proxy:3128");
        }

        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}", no in "[a-z0-9.:/*,\\[\\] ]{0,40}") {
            let _ = ProxyUrl::parse(&text);
            let _ = NoProxy::parse(&no).matches("a.b", 1);
            let _ = ProxySetting::FromEnvironment.resolve(&text, |_| Some(text.clone()));
        }
    }
}
