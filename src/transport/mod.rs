//! The transport: a WebSocket over TCP, or over TLS with rustls, in the
//! transport's own terms.
//!
//! Everything that knows about the WebSocket library lives in this module:
//! the connection logic above it sees only [`Frame`]s and a [`Socket`] to
//! hand-shake on and then serve with ([`Socket::poll_io`]). So
//! the library, TLS and the way out of the network (proxies) change here
//! without touching the connection logic.
//!
//! - `tls`: the rustls client configuration.
//! - `proxy`: the `CONNECT` tunnel through an HTTP proxy.

mod proxy;
mod socket;
mod stream;
pub(crate) mod tls;

use std::sync::Arc;

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, Utf8Bytes};

pub(crate) use socket::{Outgoing, Socket};
use stream::Stream;

use crate::config::{ProxyError, ProxyUrl, ServerConfig};
use crate::error::{ConnectError, ConnectErrorKind};
use crate::settings::Settings;
pub use tls::TlsError;

/// The initial read buffer of each WebSocket.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// The text of a frame: UTF-8, shared (cloning it copies no bytes).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Text(Utf8Bytes);

impl Text {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// The text of a frame the SDK wrote itself, from `str`s only (the
/// notification frames of `connection::frames`): UTF-8 by construction, so
/// not checked again on the way out (a check of every notification's frame
/// was 2 % of sending one), and shared (cloning it copies no bytes, so a
/// notification can be both written and kept until acknowledged). Four
/// words, like [`Text`]: the outbox's items stay 40 bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct OwnText(tungstenite::Bytes);

impl OwnText {
    /// Bytes that the caller wrote from `str`s and nothing else. Debug
    /// builds check it.
    pub(crate) fn from_strs(bytes: tungstenite::Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        OwnText(bytes)
    }

    /// The text (checked again: for tests).
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("written from strs")
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The frame to hand to the WebSocket library: a text frame.
    fn into_message(self) -> Message {
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        Message::Frame(tungstenite::protocol::frame::Frame::message(
            self.0,
            OpCode::Data(Data::Text),
            true,
        ))
    }
}

impl From<String> for OwnText {
    fn from(s: String) -> Self {
        OwnText(s.into())
    }
}

impl From<&'static str> for OwnText {
    fn from(s: &'static str) -> Self {
        OwnText(tungstenite::Bytes::from_static(s.as_bytes()))
    }
}

impl std::fmt::Debug for OwnText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnText(<{} bytes>)", self.len())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(s.into())
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Self {
        Text(Utf8Bytes::from_static(s))
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Frames may carry secrets (`connectExtension`): never their contents.
        write!(f, "Text(<{} bytes>)", self.len())
    }
}

/// One WebSocket message.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A text frame.
    Text(Text),
    /// A text frame the SDK wrote itself (a notification, to write).
    Own(OwnText),
    /// A binary frame (the Java SDK's way; read like text).
    Binary(tungstenite::Bytes),
    /// A ping (to write; pings read are answered by the library).
    Ping,
    /// A pong.
    Pong,
    /// A close frame, with the peer's reason when there was one.
    Close(Option<String>),
}

impl Frame {
    /// The payload of a data frame.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        match self {
            Frame::Text(text) => Some(text.as_str().as_bytes()),
            Frame::Own(text) => Some(&text.0),
            Frame::Binary(bytes) => Some(bytes),
            _ => None,
        }
    }

    pub(super) fn into_message(self) -> Message {
        match self {
            Frame::Text(text) => Message::Text(text.0),
            Frame::Own(text) => text.into_message(),
            Frame::Binary(bytes) => Message::Binary(bytes),
            Frame::Ping => Message::Ping(Default::default()),
            Frame::Pong => Message::Pong(Default::default()),
            Frame::Close(_) => Message::Close(None),
        }
    }

    /// `None` for the library's raw frames, which are never read.
    pub(super) fn from_message(message: Message) -> Option<Frame> {
        Some(match message {
            Message::Text(text) => Frame::Text(Text(text)),
            Message::Binary(bytes) => Frame::Binary(bytes),
            Message::Ping(_) => return None,
            Message::Pong(_) => Frame::Pong,
            Message::Close(reason) => {
                Frame::Close(reason.map(|r| format!("{} {}", r.code, r.reason)))
            }
            Message::Frame(_) => return None,
        })
    }
}

/// A failure of the socket (reading, writing or opening it).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct TransportError(#[from] tungstenite::Error);

/// What [`Socket::poll_io`] did.
#[derive(Debug)]
pub(crate) enum Io {
    /// Every queued frame was written and flushed, or the write failed.
    Written(Result<(), TransportError>),
    /// A frame was read; `None` when the peer has closed the stream.
    Read(Option<Result<Frame, TransportError>>),
}

/// How to open a source's WebSocket; built once per connector set.
pub(crate) struct Transport {
    url: String,
    /// The server's host (IPv6 without brackets) and port, as dialled.
    host: String,
    port: u16,
    /// The HTTP proxy to tunnel through, if any.
    proxy: Option<ProxyUrl>,
    tls: Option<Arc<ClientConfig>>,
    insecure: bool,
    ws_config: WebSocketConfig,
    /// Headers added to the upgrade request (`connectKWArgs`).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Bounds the handshakes in progress across the set.
    handshakes: tokio::sync::Semaphore,
}

/// Why the transport could not be prepared.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// The TLS configuration (trust store, CA file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A proxy variable of the environment is not usable.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

impl Transport {
    /// Prepares connections to `config`'s server: TLS, the proxy (the
    /// setting's, or the environment's, read now), the upgrade's headers.
    pub(crate) fn new(config: &ServerConfig, settings: &Settings) -> Result<Self, SetupError> {
        let url = config.websocket_url().to_owned();
        let insecure = config.tls().disable_verification;
        let tls = if url.starts_with("wss:") {
            Some(Arc::new(tls::client_config(config)?))
        } else {
            None
        };
        let (host, port) = host_and_port(&url);
        let proxy = settings
            .proxy
            .as_ref()
            .unwrap_or(config.proxy())
            .resolve(&url, |name| std::env::var(name).ok())?;
        match &proxy {
            Some(proxy) => tracing::info!(%proxy, "connecting through an HTTP proxy"),
            None => tracing::debug!("connecting directly (no proxy)"),
        }
        let options = config.connect_options();
        let mut headers = Vec::new();
        let extra = options
            .user_agent
            .iter()
            .map(|ua| ("User-Agent", ua.as_str()))
            .chain(
                options
                    .additional_headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            );
        for (name, value) in extra {
            // server.config's reader has checked both already.
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => tracing::warn!(header = name, "skipping a header that cannot be sent"),
            }
        }
        // Messages between the limit and twice the limit are read and then
        // skipped by the connection task; beyond that the WebSocket library
        // refuses them and the connection is re-made.
        let hard_limit = settings.max_message_size().saturating_mul(2);
        // A small read buffer keeps idle sources cheap (tungstenite's default
        // is 128 KiB each); it grows for large messages as needed.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .max_message_size(Some(hard_limit))
            .max_frame_size(Some(hard_limit));
        Ok(Transport {
            url,
            host,
            port,
            proxy,
            tls,
            insecure,
            ws_config,
            headers,
            handshakes: tokio::sync::Semaphore::new(settings.max_concurrent_handshakes().max(1)),
        })
    }

    /// Waits for a turn to hand-shake (see
    /// [`Settings::max_concurrent_handshakes`]); the turn ends when the
    /// permit is dropped.
    pub(crate) async fn handshake_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.handshakes
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The server as `host:port` (IPv6 in brackets): what a proxy tunnels to.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Opens one WebSocket, through the proxy when there is one (no timeout
    /// here: the caller bounds the whole handshake).
    ///
    /// # Errors
    ///
    /// A [`ConnectError`] whose kind says what failed (DNS, refused, TLS,
    /// HTTP status, the proxy) and whose message says it to the operator.
    pub(crate) async fn connect(&self) -> Result<Socket, ConnectError> {
        if self.insecure && self.tls.is_some() {
            tracing::warn!(url = %self.url, "TLS certificate verification is turned off for this connection");
        }
        let server = self.authority();
        let tcp = match &self.proxy {
            None => dial(&self.host, self.port).await.map_err(|(kind, e)| {
                ConnectError::new(kind, format!("cannot open {}: {e}", self.url))
            })?,
            Some(proxy) => {
                let mut tcp = dial(proxy.host(), proxy.port()).await.map_err(|(_, e)| {
                    ConnectError::new(
                        ConnectErrorKind::ProxyUnreachable,
                        format!("cannot reach the proxy {proxy} (for {}): {e}", self.url),
                    )
                })?;
                proxy::tunnel(&mut tcp, proxy, &server).await?;
                tcp
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            ConnectError::new(ConnectErrorKind::Network, format!("{}: {e}", self.url))
        })?;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let stream = match &self.tls {
            Some(tls) => {
                let name =
                    rustls_pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                        ConnectError::new(
                            ConnectErrorKind::Tls,
                            format!(
                                "{}: `{}` is not a TLS server name: {e}",
                                self.url, self.host
                            ),
                        )
                    })?;
                let tls = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| classify(e.into(), &self.url, &server))?;
                Stream::Tls(Box::new(tls))
            }
            None => Stream::Plain(tcp),
        };
        let ws = stream::handshake(request, stream, self.ws_config)
            .await
            .map_err(|e| classify(e, &self.url, &server))?;
        Ok(Socket::new(ws))
    }
}

/// Resolves `host` and connects to its first address that answers.
async fn dial(host: &str, port: u16) -> Result<TcpStream, (ConnectErrorKind, String)> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            (
                ConnectErrorKind::Dns,
                format!("cannot resolve `{host}`: {e}"),
            )
        })?
        .collect();
    let mut last = (ConnectErrorKind::Dns, format!("`{host}` has no address"));
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => {
                let kind = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => ConnectErrorKind::Refused,
                    std::io::ErrorKind::TimedOut => ConnectErrorKind::Timeout,
                    _ => ConnectErrorKind::Network,
                };
                last = (kind, format!("{addr}: {e}"));
            }
        }
    }
    Err(last)
}

/// The typed failure of the TLS or WebSocket handshake.
fn classify(error: tungstenite::Error, url: &str, server: &str) -> ConnectError {
    use tungstenite::Error as E;
    match error {
        E::Http(response) => {
            let status = response.status();
            ConnectError::new(
                ConnectErrorKind::HttpStatus(status.as_u16()),
                format!("{url}: the server answered the WebSocket upgrade with HTTP {status}"),
            )
        }
        E::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls_error) => ConnectError::new(
                ConnectErrorKind::Tls,
                tls::explain(tls_error, server)
                    .unwrap_or_else(|| format!("TLS handshake with {server} failed: {tls_error}")),
            ),
            None => ConnectError::new(
                ConnectErrorKind::Network,
                format!("{url}: the connection failed during the WebSocket handshake: {e}"),
            ),
        },
        E::Tls(e) => ConnectError::new(
            ConnectErrorKind::Tls,
            format!("TLS handshake with {server} failed: {e}"),
        ),
        other => ConnectError::new(
            ConnectErrorKind::Network,
            format!("{url}: the WebSocket handshake failed: {other}"),
        ),
    }
}

/// The host (IPv6 without brackets) and port of a validated `ws(s)://` URL.
fn host_and_port(url: &str) -> (String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("ws", url));
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let default = if scheme == "wss" { 443 } else { 80 };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = port.and_then(|p| p.parse().ok()).unwrap_or(default);
    (host.to_owned(), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(
            host_and_port("wss://dev.vantiq.com/api"),
            ("dev.vantiq.com".into(), 443)
        );
        assert_eq!(host_and_port("ws://h:8080/x?y"), ("h".into(), 8080));
        assert_eq!(host_and_port("ws://[::1]:9/x"), ("::1".into(), 9));
        assert_eq!(host_and_port("wss://[::1]/x"), ("::1".into(), 443));
    }

    #[tokio::test]
    async fn dialling_says_what_failed() {
        let (kind, message) = dial("no-such-host.invalid", 80).await.unwrap_err();
        assert_eq!(kind, ConnectErrorKind::Dns, "{message}");
        assert!(message.contains("no-such-host.invalid"), "{message}");
        // A port nobody listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (kind, message) = dial("127.0.0.1", port).await.unwrap_err();
        assert_eq!(kind, ConnectErrorKind::Refused, "{message}");
    }
}
