//! A client of the control API, used by the CLI subcommands and by tests that drive an
//! emulator running in another process.
//!
//! It speaks just enough HTTP/1.1 for this one server (one request per connection,
//! `Connection: close`, fixed-length or chunked answers), which keeps the crate free of a
//! general-purpose HTTP client.

use crate::types::{Notification, QueryOutcome, SourceStatus, Violation};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server address is not of the form `http://host:port`.
    #[error("invalid server URL {0:?} (expected http://host:port)")]
    InvalidUrl(String),
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach the emulator at {server}: {source}")]
    Io {
        /// The server address.
        server: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server answered with an error status; `message` is its `error` text.
    #[error("{message} (HTTP {status})")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The answer was not the HTTP or JSON expected.
    #[error("unexpected answer from the emulator: {0}")]
    Protocol(String),
}

/// A control API client for the emulator at one address.
#[derive(Clone)]
pub struct Client {
    authority: String,
    prefix: String,
    token: Option<String>,
}

/// Shows the address, never the token.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("authority", &self.authority)
            .field("prefix", &self.prefix)
            .field("token", &self.token.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

impl Client {
    /// A client for the emulator at `server` (e.g. `http://127.0.0.1:8088`).
    pub fn new(server: &str) -> Result<Self, ClientError> {
        let rest = server
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::InvalidUrl(server.to_owned()))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(ClientError::InvalidUrl(server.to_owned()));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let prefix = path.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        Ok(Self {
            authority,
            prefix,
            token: None,
        })
    }

    /// The same client, presenting `token` as the emulator's control token
    /// (`Authorization: Bearer`), for an emulator started with one.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Every source's status.
    pub async fn sources(&self) -> Result<Vec<SourceStatus>, ClientError> {
        self.call("GET", "/sim/sources", None).await
    }

    /// One source's status.
    pub async fn source(&self, name: &str) -> Result<SourceStatus, ClientError> {
        self.call("GET", &format!("/sim/sources/{}", encode(name)), None)
            .await
    }

    /// One source's status with its reconnect secrets (the control API leaves them out
    /// unless asked for them).
    pub async fn source_with_secrets(&self, name: &str) -> Result<SourceStatus, ClientError> {
        let path = format!("/sim/sources/{}?secrets=true", encode(name));
        self.call("GET", &path, None).await
    }

    /// Sets a source's configuration (a connected source gets `reconnectRequired`).
    pub async fn set_config(
        &self,
        name: &str,
        config: &Value,
    ) -> Result<SourceStatus, ClientError> {
        let path = format!("/sim/sources/{}/config", encode(name));
        self.call("PUT", &path, Some(config)).await
    }

    /// Publishes `object` to a source.
    pub async fn publish(&self, name: &str, object: &Value) -> Result<(), ClientError> {
        let path = format!("/sim/sources/{}/publish", encode(name));
        self.expect_empty("POST", &path, Some(object)).await
    }

    /// Queries a source and waits for the final answer (server default timeout: 10 s).
    pub async fn query(
        &self,
        name: &str,
        params: &Value,
        timeout_ms: Option<u64>,
    ) -> Result<QueryOutcome, ClientError> {
        let mut path = format!("/sim/sources/{}/query", encode(name));
        if let Some(ms) = timeout_ms {
            path.push_str(&format!("?timeout_ms={ms}"));
        }
        self.call("POST", &path, Some(params)).await
    }

    /// Runs a query load on a source (see [`crate::Sim::query_load`]): `queries` queries
    /// with `params`, `in_flight` at a time (default 1,000 and 1); returns its figures.
    pub async fn query_load(
        &self,
        name: &str,
        params: &Value,
        queries: u64,
        in_flight: u64,
        timeout_ms: Option<u64>,
    ) -> Result<crate::QueryLoadSummary, ClientError> {
        let mut path = format!(
            "/sim/sources/{}/query-load?queries={queries}&in_flight={in_flight}",
            encode(name)
        );
        if let Some(ms) = timeout_ms {
            path.push_str(&format!("&timeout_ms={ms}"));
        }
        self.call("POST", &path, Some(params)).await
    }

    /// The source's notifications with `seq >= since`; with `wait_ms`, waits up to that
    /// long for the first one (a long poll).
    pub async fn notifications(
        &self,
        name: &str,
        since: u64,
        wait_ms: Option<u64>,
    ) -> Result<Vec<Notification>, ClientError> {
        let mut path = format!("/sim/sources/{}/notifications?since={since}", encode(name));
        if let Some(ms) = wait_ms {
            path.push_str(&format!("&wait_ms={ms}"));
        }
        self.call("GET", &path, None).await
    }

    /// Sends `reconnectRequired` to the source's connector.
    pub async fn reconnect(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/sim/sources/{}/reconnect", encode(name));
        self.expect_empty("POST", &path, None).await
    }

    /// Cuts the source's connection abruptly.
    pub async fn drop_connection(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/sim/sources/{}/drop", encode(name));
        self.expect_empty("POST", &path, None).await
    }

    /// Stops reading the source's connection (kept open); see [`crate::Sim::stop_reading`].
    pub async fn stop_reading(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/sim/sources/{}/stop-reading", encode(name));
        self.expect_empty("POST", &path, None).await
    }

    /// Reads the source's connection again.
    pub async fn resume_reading(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/sim/sources/{}/resume-reading", encode(name));
        self.expect_empty("POST", &path, None).await
    }

    /// The protocol violations recorded so far.
    pub async fn violations(&self) -> Result<Vec<Violation>, ClientError> {
        self.call("GET", "/sim/violations", None).await
    }

    /// Sends any request; returns the status and the body (JSON, or null when empty).
    /// For checking error answers; the typed methods turn them into [`ClientError::Http`].
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let (status, bytes) = self
            .roundtrip(method, path, body_bytes(body).as_deref())
            .await?;
        Ok((status, json_or_null(&bytes)?))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        // Read from the bytes, not through a `Value`: `from_value` hands a number to a
        // struct's `Value` field as an f64 (`0.000001` came out as `1e-6`); from the text
        // every number stays as it was written.
        let (status, bytes) = self
            .roundtrip(method, path, body_bytes(body).as_deref())
            .await?;
        if !(200..300).contains(&status) {
            return Err(http_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn expect_empty(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), ClientError> {
        self.checked(method, path, body).await.map(|_| ())
    }

    async fn checked(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let (status, bytes) = self
            .roundtrip(method, path, body_bytes(body).as_deref())
            .await?;
        if !(200..300).contains(&status) {
            return Err(http_error(status, &bytes));
        }
        Ok((status, json_or_null(&bytes)?))
    }

    async fn roundtrip(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut tcp = self.open(method, path, body).await?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.map_err(|e| self.io(e))?;
        parse_response(&answer)
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            server: self.authority.clone(),
            source,
        }
    }

    /// Connects and sends a request.
    async fn open(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<TcpStream, ClientError> {
        let mut tcp = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| self.io(e))?;
        let body = body.unwrap_or_default();
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Accept: application/json\r\nContent-Type: application/json\r\n{auth}\
             Content-Length: {}\r\n\r\n",
            self.prefix,
            self.authority,
            body.len()
        );
        tcp.write_all(head.as_bytes())
            .await
            .map_err(|e| self.io(e))?;
        tcp.write_all(body).await.map_err(|e| self.io(e))?;
        Ok(tcp)
    }

    /// Queries a source with its answer streamed (the control API's `stream=1`):
    /// `on_frame` gets each answer frame as it arrives, numbers as they were written;
    /// returns after the final one. Nothing is kept, here or in the emulator, so an
    /// answer of any size passes through.
    pub async fn query_stream(
        &self,
        name: &str,
        params: &Value,
        timeout_ms: Option<u64>,
        mut on_frame: impl FnMut(Value) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        let mut path = format!("/sim/sources/{}/query?stream=1", encode(name));
        if let Some(ms) = timeout_ms {
            path.push_str(&format!("&timeout_ms={ms}"));
        }
        let body = params.to_string().into_bytes();
        let mut tcp = self.open("POST", &path, Some(&body)).await?;
        let mut raw = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let head_end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let n = tcp.read(&mut chunk).await.map_err(|e| self.io(e))?;
            if n == 0 {
                return Err(ClientError::Protocol("incomplete HTTP header".into()));
            }
            raw.extend_from_slice(&chunk[..n]);
        };
        let head = parse_head(&raw[..head_end])?;
        if !(200..300).contains(&head.status) {
            tcp.read_to_end(&mut raw).await.map_err(|e| self.io(e))?;
            let (status, bytes) = parse_response(&raw)?;
            return Err(http_error(status, &bytes));
        }
        raw.drain(..head_end + 4);
        let mut body = BodyReader::new(head.chunked);
        loop {
            body.feed(&mut raw)?;
            while let Some(line) = body.next_line() {
                let frame: Value = serde_json::from_slice(&line)
                    .map_err(|e| ClientError::Protocol(format!("a line is not JSON: {e}")))?;
                if let Some(e) = frame.get("streamError") {
                    return Err(ClientError::Http {
                        status: e["status"].as_u64().map_or(500, |s| s as u16),
                        message: e["error"].as_str().unwrap_or_default().to_owned(),
                    });
                }
                on_frame(frame).map_err(|e| self.io(e))?;
            }
            if body.done {
                return Ok(());
            }
            let n = tcp.read(&mut chunk).await.map_err(|e| self.io(e))?;
            if n == 0 {
                return if body.chunked {
                    Err(ClientError::Protocol("the stream ended early".into()))
                } else {
                    Ok(())
                };
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A response body read as it arrives, chunked or not, cut into lines.
struct BodyReader {
    chunked: bool,
    text: Vec<u8>,
    done: bool,
}

impl BodyReader {
    fn new(chunked: bool) -> Self {
        BodyReader {
            chunked,
            text: Vec::new(),
            done: false,
        }
    }

    /// Takes what `raw` holds of the body (whole chunks only, when chunked).
    fn feed(&mut self, raw: &mut Vec<u8>) -> Result<(), ClientError> {
        if !self.chunked {
            self.text.append(raw);
            return Ok(());
        }
        let bad = || ClientError::Protocol("bad chunked body".into());
        while let Some(eol) = find(raw, b"\r\n") {
            let size_text = std::str::from_utf8(&raw[..eol]).map_err(|_| bad())?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
            if size == 0 {
                self.done = true;
                raw.clear();
                return Ok(());
            }
            if raw.len() < eol + 2 + size + 2 {
                break;
            }
            self.text.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
            raw.drain(..eol + 2 + size + 2);
        }
        Ok(())
    }

    fn next_line(&mut self) -> Option<Vec<u8>> {
        let nl = self.text.iter().position(|&b| b == b'\n')?;
        let mut line: Vec<u8> = self.text.drain(..=nl).collect();
        line.pop();
        Some(line)
    }
}

fn body_bytes(body: Option<&Value>) -> Option<Vec<u8>> {
    body.map(|b| b.to_string().into_bytes())
}

/// A response body as JSON, or null when it is empty.
fn json_or_null(bytes: &[u8]) -> Result<Value, ClientError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ClientError::Protocol(format!("body is not JSON: {e}")))
}

/// The error of a response that is not a success: its `error` text, or its body.
fn http_error(status: u16, bytes: &[u8]) -> ClientError {
    let value = json_or_null(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()));
    let message = value
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    ClientError::Http { status, message }
}

/// Splits an HTTP/1.1 response into status and body.
fn parse_response(buf: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let bad = |what: &str| ClientError::Protocol(what.to_owned());
    let end = find(buf, b"\r\n\r\n").ok_or_else(|| bad("incomplete HTTP header"))?;
    let head = parse_head(&buf[..end])?;
    let rest = &buf[end + 4..];
    let body = if head.chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(n) = head.length {
        rest.get(..n).ok_or_else(|| bad("truncated body"))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok((head.status, body))
}

/// What an HTTP/1.1 response's head says.
struct Head {
    status: u16,
    chunked: bool,
    length: Option<usize>,
}

fn parse_head(head: &[u8]) -> Result<Head, ClientError> {
    let bad = |what: &str| ClientError::Protocol(what.to_owned());
    let head = std::str::from_utf8(head).map_err(|_| bad("non-UTF-8 HTTP header"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if let Some((key, value)) = line.split_once(':') {
            let (key, value) = (key.trim(), value.trim());
            if key.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if key.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
        }
    }
    Ok(Head {
        status,
        chunked,
        length,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_and_chunked_responses() {
        let fixed = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]";
        assert_eq!(parse_response(fixed).unwrap(), (200, b"[]".to_vec()));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (404, b"{\"a\":1}".to_vec())
        );
    }

    #[test]
    fn urls_and_segments() {
        let c = Client::new("http://127.0.0.1:8088/").unwrap();
        assert_eq!(c.authority, "127.0.0.1:8088");
        assert_eq!(c.prefix, "");
        let c = Client::new("http://localhost").unwrap();
        assert_eq!(c.authority, "localhost:80");
        assert!(Client::new("https://x").is_err());
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
