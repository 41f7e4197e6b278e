//! One WebSocket session: the server's side of the protocol for one connector socket.
//!
//! Each session is two tasks. The reader (the task that ran the upgrade) parses and checks
//! everything the connector sends, drives the handshake and records notifications and
//! query answers. The writer owns the sending half and drains a queue, writing as many
//! queued frames as are ready before flushing once, so a burst of publishes costs one
//! system call per batch rather than per frame. Acknowledgements are counted, not queued,
//! so the reader never waits for the writer.
//!
//! Frame types: every message the emulator builds is a text frame; the writer sends it as
//! a binary frame instead when the session's frame type is binary (see
//! [`crate::FrameMode`]). The reader notes the type of each data frame the connector
//! sends before handling it, so in the default mode every answer goes out in the type of
//! the frame it answers. After a successful authentication a timer runs until
//! `connectExtension`: a connector that never sends it gets a [`kinds::NO_CONNECT`] note.

mod data;
mod handshake;
mod writer;

use crate::io::SilenceableIo;
use crate::state::{Core, Reading, SessionLink, SourceEntry};
use crate::types::{kinds, FrameType};
use crate::wire;
use futures_util::stream::SplitStream;
use futures_util::{FutureExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Messages handled per wake-up of the reader before waiters are told.
const MAX_READ_BATCH: usize = 256;

type Ws<S> = WebSocketStream<SilenceableIo<S>>;

/// Small buffers: ten thousand idle connections must stay cheap; they grow when needed.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(32 * 1024)
}

/// Runs one session on an upgraded connection until it ends; `guard` (the server's count
/// of live sessions) is dropped once the socket is closed.
pub(crate) async fn run<S, G>(
    core: Arc<Core>,
    io: S,
    peer: SocketAddr,
    mut stopped: watch::Receiver<u64>,
    guard: G,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    G: Send,
{
    let id = core.next_session_id();
    let silent = Arc::new(AtomicBool::new(false));
    let io = SilenceableIo::new(io, silent.clone());
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let link = Arc::new(SessionLink::new(id, peer, tx, silent, core.frame_mode));
    let writer = tokio::spawn(writer::write_loop(sink, rx, link.clone()));
    tracing::info!(session = id, %peer, "connection opened");

    let mut session = Session {
        core: core.clone(),
        link: link.clone(),
        user: None,
        bound: None,
        notified: None,
        acks: 0,
        connect_deadline: None,
    };
    let reason = session.read_loop(&mut stream, &mut stopped).await;
    session.flush_batch();
    link.reading().send_replace(Reading::Ended);

    // Close the socket without a close frame: drop both halves. A query load still running
    // ends with it (its caller sees the connection lost).
    crate::state::lock(&link.load).take();
    link.credit.close();
    writer.abort();
    let _ = writer.await;
    drop(stream);
    if let Some(entry) = &session.bound {
        core.session_ended(entry, id, reason);
    }
    tracing::info!(session = id, %peer, reason, "connection closed");
    drop(guard);
}

/// The reader's view of the session.
struct Session {
    core: Arc<Core>,
    link: Arc<SessionLink>,
    /// Who authenticated (None until `validate`/`authenticate` succeeds).
    user: Option<String>,
    /// The source this socket serves, once `connectExtension` succeeded.
    bound: Option<Arc<SourceEntry>>,
    /// Notifications received so far on the bound source, not yet announced to waiters.
    notified: Option<u64>,
    /// Acknowledgements owed, not yet handed to the writer.
    acks: u64,
    /// When to note that the connector authenticated but never sent `connectExtension`;
    /// set on authentication, cleared by `connectExtension` or once noted.
    connect_deadline: Option<Pin<Box<Sleep>>>,
}

/// What an incoming message asks for.
enum Kind {
    Validate,
    Authenticate,
    Connect,
    Notification,
    Answer,
    UnknownOp(String),
    BadOp,
    Neither,
}

impl Session {
    async fn read_loop<S>(
        &mut self,
        stream: &mut SplitStream<Ws<S>>,
        stopped: &mut watch::Receiver<u64>,
    ) -> &'static str
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut reading = self.link.reading().subscribe();
        loop {
            if *reading.borrow_and_update() != Reading::On {
                // Reading stopped: the socket's read side is not polled until resumed.
                self.flush_batch();
                self.link.reading().send_replace(Reading::Stopped);
                tracing::info!(session = self.link.id, "reading stopped");
                tokio::select! {
                    biased;
                    _ = self.link.kill.notified() => return "cut by the emulator",
                    _ = stopped.changed() => return "server stopped",
                    _ = reading.wait_for(|r| *r == Reading::On) => {}
                }
                tracing::info!(session = self.link.id, "reading resumed");
                continue;
            }
            // A streamed query's frame that found its stream full: handed over (waiting
            // for its reader) before anything more is read from the connector.
            let backlog = crate::state::lock(&self.link.backlog).take();
            if let Some((stream, frame)) = backlog {
                self.flush_batch();
                tokio::select! {
                    biased;
                    _ = self.link.kill.notified() => return "cut by the emulator",
                    _ = stopped.changed() => return "server stopped",
                    // An error: the stream's reader left; the frame goes nowhere.
                    _ = stream.send(frame) => {}
                }
                continue;
            }
            let next = tokio::select! {
                biased;
                _ = self.link.kill.notified() => return "cut by the emulator",
                _ = stopped.changed() => return "server stopped",
                _ = reading.changed() => continue,
                _ = wait_deadline(&mut self.connect_deadline) => {
                    self.connect_deadline = None;
                    self.note_no_connect();
                    continue;
                }
                next = stream.next() => next,
            };
            if let Some(reason) = self.take(next) {
                return reason;
            }
            // Handle whatever else is already buffered before telling waiters and writer
            // (unless asked to stop reading).
            for _ in 0..MAX_READ_BATCH {
                if self.link.reading_stopped() || crate::state::lock(&self.link.backlog).is_some() {
                    break;
                }
                match stream.next().now_or_never() {
                    None => break,
                    Some(next) => {
                        if let Some(reason) = self.take(next) {
                            return reason;
                        }
                    }
                }
            }
            self.flush_batch();
        }
    }

    /// Handles one item of the stream; returns why the session ends, if it does.
    fn take(&mut self, next: Option<Result<Message, tungstenite::Error>>) -> Option<&'static str> {
        match next {
            None => Some("closed by the connector"),
            Some(Err(e)) => {
                tracing::debug!(session = self.link.id, "read error: {e}");
                Some(match e {
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                        "closed by the connector"
                    }
                    tungstenite::Error::Protocol(_) => "connection lost (protocol error)",
                    _ => "connection lost",
                })
            }
            Some(Ok(msg)) => {
                self.handle(msg);
                None
            }
        }
    }

    /// Hands pending acknowledgements to the writer and tells notification waiters.
    fn flush_batch(&mut self) {
        if let (Some(count), Some(entry)) = (self.notified.take(), &self.bound) {
            entry.announce(count);
            self.core.notifications_recorded();
        }
        if self.acks > 0 {
            self.link
                .acks_pending
                .fetch_add(std::mem::take(&mut self.acks), Ordering::AcqRel);
            self.link.ack_wake.notify_one();
        }
    }

    fn source(&self) -> Option<&str> {
        self.bound.as_deref().map(|e| e.name.as_str())
    }

    fn violation(&self, kind: &str, detail: String) {
        self.core.violation(self.source(), kind, detail);
    }

    fn handle(&mut self, msg: Message) {
        match &msg {
            Message::Text(_) => self.link.frame_received(FrameType::Text),
            Message::Binary(_) => self.link.frame_received(FrameType::Binary),
            _ => {}
        }
        match msg {
            Message::Text(text) => self.handle_text(text.as_str()),
            Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.handle_text(text),
                Err(e) => self.violation(
                    kinds::INVALID_UTF8,
                    format!("a binary frame must carry UTF-8 JSON: {e}"),
                ),
            },
            // Pings are answered by the WebSocket layer; a close ends the stream next.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
        }
    }

    fn handle_text(&mut self, text: &str) {
        // While a query load runs, its answers are read without building a JSON tree.
        if let Some(entry) = &self.bound {
            let load_active = crate::state::lock(&self.link.load)
                .as_ref()
                .is_some_and(crate::load::LoadRun::active);
            if load_active {
                if let Some(view) = crate::answers::read_answer(text) {
                    if self
                        .core
                        .answer_load_fast(&self.link, &entry.name, &view, text)
                    {
                        return;
                    }
                }
            }
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return self.violation(
                    kinds::INVALID_JSON,
                    format!("not JSON ({e}): {}", wire::excerpt(text)),
                )
            }
        };
        let Value::Object(mut map) = value else {
            return self.violation(
                kinds::BAD_SHAPE,
                format!("a message must be a JSON object: {}", wire::excerpt(text)),
            );
        };
        let kind = match map.get("op") {
            Some(Value::String(op)) => match op.as_str() {
                "validate" => Kind::Validate,
                "authenticate" => Kind::Authenticate,
                "connectExtension" => Kind::Connect,
                "notification" => Kind::Notification,
                other => Kind::UnknownOp(other.to_owned()),
            },
            Some(_) => Kind::BadOp,
            None if map.contains_key("status") => Kind::Answer,
            None => Kind::Neither,
        };
        match kind {
            Kind::Validate => self.on_validate(&map, text),
            Kind::Authenticate => self.on_authenticate(&map, text),
            Kind::Connect => self.on_connect(&map, text),
            Kind::Notification => {
                let object = map.remove("object");
                self.on_notification(&map, object, text)
            }
            Kind::Answer => self.on_answer(Value::Object(map), text),
            Kind::UnknownOp(op) => self.violation(
                kinds::UNKNOWN_OP,
                format!("a connector never sends op {op:?}: {}", wire::excerpt(text)),
            ),
            Kind::BadOp => self.violation(
                kinds::BAD_SHAPE,
                format!("op must be a string: {}", wire::excerpt(text)),
            ),
            Kind::Neither => self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "a message needs an op (request) or a status (answer): {}",
                    wire::excerpt(text)
                ),
            ),
        }
    }

    fn reply(&self, msg: Message) {
        self.link.send(msg);
    }
}

/// Resolves when the deadline (if any) passes; never without one.
async fn wait_deadline(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
