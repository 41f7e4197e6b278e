//! The transport: a WebSocket over TCP, or over TLS with rustls, in the
//! transport's own terms.
//!
//! Everything that knows about the WebSocket library lives in this module:
//! the connection logic above it sees only [`Frame`]s, a [`Socket`] to
//! hand-shake on, and the [`Reader`] and [`Writer`] halves it serves with. So
//! the library, TLS and the way out of the network (proxies) change here
//! without touching the connection logic.
//!
//! - `tls`: the rustls client configuration.

pub(crate) mod tls;

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::ServerConfig;
use crate::settings::Settings;
pub use tls::TlsError;

/// The initial read buffer of each WebSocket.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// A connected WebSocket.
type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The text of a frame: UTF-8, shared (cloning it copies no bytes, so a
/// notification can be both written and kept until acknowledged).
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
    /// A text frame (what the connector writes).
    Text(Text),
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
            Frame::Binary(bytes) => Some(bytes),
            _ => None,
        }
    }

    fn into_message(self) -> Message {
        match self {
            Frame::Text(text) => Message::Text(text.0),
            Frame::Binary(bytes) => Message::Binary(bytes),
            Frame::Ping => Message::Ping(Default::default()),
            Frame::Pong => Message::Pong(Default::default()),
            Frame::Close(_) => Message::Close(None),
        }
    }

    /// `None` for the library's raw frames, which are never read.
    fn from_message(message: Message) -> Option<Frame> {
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

/// A connected socket, before it is split to be served.
pub(crate) struct Socket {
    ws: WsStream,
}

impl Socket {
    /// Writes one frame and flushes it (the handshake's pace).
    pub(crate) async fn send(&mut self, frame: Frame) -> Result<(), TransportError> {
        Ok(self.ws.send(frame.into_message()).await?)
    }

    /// The next frame; `None` when the peer has closed the stream.
    pub(crate) async fn recv(&mut self) -> Option<Result<Frame, TransportError>> {
        loop {
            match self.ws.next().await? {
                Ok(message) => match Frame::from_message(message) {
                    Some(frame) => return Some(Ok(frame)),
                    None => continue,
                },
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// Sends a close frame and ends the socket (best effort).
    pub(crate) async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The two halves, to read and write at the same time.
    pub(crate) fn split(self) -> (Reader, Writer) {
        let (sink, stream) = self.ws.split();
        (
            Reader { stream },
            Writer {
                sink,
                unflushed: false,
            },
        )
    }
}

/// The read half of a served socket.
pub(crate) struct Reader {
    stream: SplitStream<WsStream>,
}

impl Reader {
    /// The next frame; `None` when the peer has closed the stream.
    pub(crate) async fn next(&mut self) -> Option<Result<Frame, TransportError>> {
        loop {
            match self.stream.next().await? {
                Ok(message) => match Frame::from_message(message) {
                    Some(frame) => return Some(Ok(frame)),
                    None => continue,
                },
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The next frame if one is already read, without waiting.
    pub(crate) fn next_now(&mut self) -> Option<Option<Result<Frame, TransportError>>> {
        self.next().now_or_never()
    }
}

/// The write half of a served socket, polled by the connection task itself.
pub(crate) struct Writer {
    sink: SplitSink<WsStream, Message>,
    /// Whether frames were handed to the sink since the last flush.
    unflushed: bool,
}

impl Writer {
    /// Whether there is anything to write or flush.
    pub(crate) fn has_work(&self, queue: &VecDeque<Frame>) -> bool {
        self.unflushed || !queue.is_empty()
    }

    /// Writes every queued frame, then flushes once. Cancel-safe: a frame
    /// leaves `queue` only in the same poll in which the sink accepts it, so
    /// dropping this future between polls loses nothing.
    pub(crate) fn poll_write(
        &mut self,
        queue: &mut VecDeque<Frame>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        while !queue.is_empty() {
            ready!(self.sink.poll_ready_unpin(cx))?;
            let frame = queue.pop_front().expect("not empty");
            self.sink.start_send_unpin(frame.into_message())?;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(self.sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

/// How to open a source's WebSocket; built once per connector set.
pub(crate) struct Transport {
    url: String,
    tls: Option<Arc<ClientConfig>>,
    insecure: bool,
    ws_config: WebSocketConfig,
    /// Bounds the handshakes in progress across the set.
    handshakes: tokio::sync::Semaphore,
}

impl Transport {
    /// Prepares connections to `config`'s server.
    pub(crate) fn new(config: &ServerConfig, settings: &Settings) -> Result<Self, TlsError> {
        let url = config.websocket_url().to_owned();
        let insecure = config.tls().disable_verification;
        let tls = if url.starts_with("wss:") {
            Some(Arc::new(tls::client_config(config)?))
        } else {
            None
        };
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
            tls,
            insecure,
            ws_config,
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

    /// The WebSocket URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Opens one WebSocket (no timeout here: the caller bounds the whole
    /// handshake).
    pub(crate) async fn connect(&self) -> Result<Socket, TransportError> {
        if self.insecure && self.tls.is_some() {
            tracing::warn!(url = %self.url, "TLS certificate verification is turned off for this connection");
        }
        let connector = match &self.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
            self.url.as_str(),
            Some(self.ws_config),
            true,
            Some(connector),
        )
        .await?;
        Ok(Socket { ws })
    }
}
