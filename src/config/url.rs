//! Rewriting `targetServer` into the WebSocket URL a connector dials.

use std::net::Ipv6Addr;

use super::{ConfigError, ServerConfig};

/// Rewrites a Vantiq server URL into the WebSocket URL a connector connects to.
///
/// * The scheme `http` becomes `ws` and `https` becomes `wss`; `ws` and `wss` are kept
///   (schemes are case-insensitive and written in lower case).
/// * The host and port are kept as written.
/// * Unless the path already ends with `/api/v<N>/wsock/websocket` (`<N>` digits, any
///   prefix allowed, as with the Python SDK), the path becomes `/api/v1/wsock/websocket`.
/// * A query string is kept; a fragment is dropped (WebSocket URLs cannot have one).
///
/// # Errors
///
/// [`ConfigError::InvalidUrl`] (with `path: None`) when the URL is not absolute, its
/// scheme is not one of `http`, `https`, `ws`, `wss`, it has no host, an invalid port,
/// user information (`user:pass@`), or whitespace.
///
/// # Examples
///
/// ```
/// use vantiq_connector_sdk::config::websocket_url;
///
/// assert_eq!(websocket_url("https://dev.vantiq.com/")?, "wss://dev.vantiq.com/api/v1/wsock/websocket");
/// assert_eq!(websocket_url("http://localhost:8080")?, "ws://localhost:8080/api/v1/wsock/websocket");
/// assert_eq!(
///     websocket_url("wss://h/proxy/api/v2/wsock/websocket")?,
///     "wss://h/proxy/api/v2/wsock/websocket"
/// );
/// assert!(websocket_url("ftp://dev.vantiq.com").is_err());
/// # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
/// ```
pub fn websocket_url(target_server: &str) -> Result<String, ConfigError> {
    rewrite_url(target_server).map_err(|reason| ConfigError::InvalidUrl {
        path: None,
        url: target_server.to_owned(),
        reason,
    })
}

pub(super) fn rewrite_url(input: &str) -> Result<String, String> {
    if input.is_empty() {
        return Err("the URL is empty".to_owned());
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains whitespace or control characters".to_owned());
    }
    let (scheme, rest) = input.split_once("://").ok_or_else(|| {
        "not an absolute URL (expected for example `https://dev.vantiq.com`)".to_owned()
    })?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => {
            return Err(format!(
                "the scheme `{scheme}` is not http, https, ws or wss"
            ))
        }
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    check_authority(authority)?;
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query).filter(|q| !q.is_empty())),
        None => (tail, None),
    };
    let path = if is_websocket_path(path) {
        path
    } else {
        ServerConfig::DEFAULT_WEBSOCKET_PATH
    };
    let mut url = format!("{ws_scheme}://{authority}{path}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

fn check_authority(authority: &str) -> Result<(), String> {
    if authority.contains('@') {
        return Err(
            "user information (`user@`) in the URL is not supported; use `authToken`, or `username` and `password`"
                .to_owned(),
        );
    }
    let port = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the host".to_owned())?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("`{host}` is not a valid IPv6 address"))?;
        if after.is_empty() {
            None
        } else {
            Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{after}` after the host"))?,
            )
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%')))
        {
            return Err(format!("invalid character `{c}` in the host `{host}`"));
        }
        port
    };
    if let Some(port) = port {
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err(format!("invalid port `{port}`"));
        }
    }
    Ok(())
}

fn is_websocket_path(path: &str) -> bool {
    path.strip_suffix("/wsock/websocket")
        .and_then(|prefix| prefix.rsplit_once("/api/v"))
        .is_some_and(|(_, version)| {
            !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
        })
}
