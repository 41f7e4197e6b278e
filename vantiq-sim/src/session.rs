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

use crate::io::SilenceableIo;
use crate::state::{Core, Out, SessionGuard, SessionLink, SourceEntry};
use crate::types::{kinds, FrameMode, FrameType};
use crate::wire;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Map, Value};
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

/// Frames written per flush at most, so acknowledgements are not held back for long.
const MAX_BATCH: usize = 1024;
/// Messages handled per wake-up of the reader before waiters are told.
const MAX_READ_BATCH: usize = 256;

type Ws<S> = WebSocketStream<SilenceableIo<S>>;

/// Small buffers: ten thousand idle connections must stay cheap; they grow when needed.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(32 * 1024)
}

/// Runs one session on an upgraded connection until it ends.
pub(crate) async fn run<S>(
    core: Arc<Core>,
    io: S,
    peer: SocketAddr,
    mut stopped: watch::Receiver<u64>,
    guard: SessionGuard,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = core.next_session_id();
    let silent = Arc::new(AtomicBool::new(false));
    let io = SilenceableIo::new(io, silent.clone());
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let link = Arc::new(SessionLink::new(id, peer, tx, silent, core.frame_mode));
    let writer = tokio::spawn(write_loop(sink, rx, link.clone()));
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
        loop {
            let next = tokio::select! {
                biased;
                _ = self.link.kill.notified() => return "cut by the emulator",
                _ = stopped.changed() => return "server stopped",
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
            // Handle whatever else is already buffered before telling waiters and writer.
            for _ in 0..MAX_READ_BATCH {
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

    /// Records that the connector authenticated but sent no `connectExtension` in time,
    /// with the likely cause: it cannot read the frames it is sent.
    fn note_no_connect(&self) {
        let sent = self.link.frame_type();
        let received = self
            .link
            .frame_type_received()
            .map_or("no data frames".to_owned(), |t| format!("{t} frames"));
        let mode = match self.link.frame_mode() {
            FrameMode::Follow => "the emulator follows the connector's frame type".to_owned(),
            forced => format!("the emulator was started with frames forced to {forced}"),
        };
        let detail = format!(
            "session {} from {} authenticated but sent no connectExtension within {} ms. \
             The likely cause is a client that cannot read the frames it is sent: this \
             session sends {sent} frames and the connector sent {received} ({mode}). \
             Vantiq's Java SDK reads only binary frames; its Python SDK reads text frames.",
            self.link.id,
            self.link.peer,
            self.core.connect_grace.as_millis(),
        );
        self.violation(kinds::NO_CONNECT, detail);
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

    fn on_validate(&mut self, map: &Map<String, Value>, text: &str) {
        let Some(token) = map.get("object").and_then(Value::as_str) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "validate needs the token as object: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_credentials(
                "io.vantiq.authentication.malformed",
                "Malformed validate request.",
            );
        };
        if self.core.token_ok(token) {
            tracing::info!(session = self.link.id, "authenticated with a token");
            self.user = Some("token".into());
            self.reply(wire::auth_ok(self.link.id, "token"));
            self.start_connect_deadline();
        } else {
            self.reject_credentials(
                "io.vantiq.authentication.failed",
                "The access token is not valid (unknown, revoked or expired).",
            );
        }
    }

    fn on_authenticate(&mut self, map: &Map<String, Value>, text: &str) {
        let object = map.get("object");
        let user = object
            .and_then(|o| o.get("username"))
            .and_then(Value::as_str);
        let password = object
            .and_then(|o| o.get("password"))
            .and_then(Value::as_str);
        let (Some(user), Some(password)) = (user, password) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "authenticate needs object {{username, password}}: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_credentials(
                "io.vantiq.authentication.malformed",
                "Malformed authenticate request.",
            );
        };
        if self.core.user_ok(user, password) {
            tracing::info!(
                session = self.link.id,
                user,
                "authenticated with a password"
            );
            self.user = Some(user.to_owned());
            self.reply(wire::auth_ok(self.link.id, user));
            self.start_connect_deadline();
        } else {
            self.reject_credentials(
                "io.vantiq.authentication.failed",
                "Authentication failed: unknown user or wrong password.",
            );
        }
    }

    /// After a successful authentication: the connector should connect a source soon.
    fn start_connect_deadline(&mut self) {
        if self.bound.is_none() {
            let grace = self.core.connect_grace;
            self.connect_deadline = Some(Box::pin(tokio::time::sleep(grace)));
        }
    }

    fn reject_credentials(&self, code: &str, message: &str) {
        self.core.auth_failed();
        tracing::warn!(session = self.link.id, peer = %self.link.peer, "authentication rejected");
        self.reply(wire::error_status(401, code, message));
    }

    fn on_connect(&mut self, map: &Map<String, Value>, text: &str) {
        if self.user.is_none() {
            self.violation(
                kinds::NOT_AUTHENTICATED,
                format!(
                    "connectExtension before authentication: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reply(wire::error_status(
                401,
                "io.vantiq.authentication.required",
                "Authenticate (validate or authenticate) before connectExtension.",
            ));
        }
        let source = map.get("resourceId").and_then(Value::as_str);
        let resource = map.get("resourceName").and_then(Value::as_str);
        let (Some(source), Some("sources")) = (source, resource) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "connectExtension needs resourceName \"sources\" and a resourceId: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reply(wire::error_status(
                400,
                "io.vantiq.sim.malformed",
                "Malformed connectExtension request.",
            ));
        };
        if let Some(bound) = self.source().filter(|b| *b != source) {
            self.violation(
                kinds::SECOND_SOURCE,
                format!("connectExtension for {source:?} on a socket serving {bound:?}"),
            );
            return self.reply(wire::error_status(
                400,
                "io.vantiq.sim.secondSource",
                &format!(
                    "This connection already serves source {bound}; use one WebSocket per source."
                ),
            ));
        }
        self.connect_deadline = None;
        let secret = map
            .get("parameters")
            .and_then(|p| p.get("reconnectSecret"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.flush_batch();
        match self.core.connect_extension(&self.link, source, secret) {
            Ok(entry) => self.bound = Some(entry),
            Err((status, code, message)) => {
                tracing::info!(
                    session = self.link.id,
                    source,
                    status,
                    "connectExtension refused: {message}"
                );
                self.reply(wire::error_status(status, code, &message));
            }
        }
    }

    fn on_notification(&mut self, map: &Map<String, Value>, object: Option<Value>, text: &str) {
        let Some(entry) = self.bound.clone() else {
            let kind = if self.user.is_none() {
                kinds::NOT_AUTHENTICATED
            } else {
                kinds::NOT_CONNECTED
            };
            self.violation(
                kind,
                format!(
                    "notification before the handshake finished: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_notification("The handshake has not finished.");
        };
        let problem = match (
            map.get("resourceName").and_then(Value::as_str),
            map.get("resourceId").and_then(Value::as_str),
            &object,
        ) {
            (Some("sources"), Some(id), Some(Value::Object(_))) if id == entry.name => None,
            (Some("sources"), Some(id), _) if id != entry.name => Some((
                kinds::NOTIFICATION_WRONG_SOURCE,
                format!(
                    "notification for source {id:?} on the socket of {:?}: {}",
                    entry.name,
                    wire::excerpt(text)
                ),
            )),
            (Some("sources"), Some(_), Some(other)) => Some((
                kinds::NOTIFICATION_NOT_OBJECT,
                format!(
                    "a notification's object must be a JSON object, not {}: {}",
                    json_type(other),
                    wire::excerpt(text)
                ),
            )),
            _ => Some((
                kinds::BAD_SHAPE,
                format!(
                    "a notification needs resourceName \"sources\", resourceId and object: {}",
                    wire::excerpt(text)
                ),
            )),
        };
        if let Some((kind, detail)) = problem {
            self.violation(kind, detail);
            return self.reject_notification("Malformed notification.");
        }
        let count = self
            .core
            .record_notification(&entry, object.unwrap_or_default());
        self.notified = Some(count);
        if self.core.acks() {
            self.acks += 1;
        }
    }

    fn reject_notification(&self, message: &str) {
        if self.core.acks() {
            self.reply(wire::error_status(
                400,
                "io.vantiq.sim.invalidNotification",
                message,
            ));
        }
    }

    fn on_answer(&mut self, frame: Value, text: &str) {
        let Some(entry) = self.bound.clone() else {
            return self.violation(
                kinds::NOT_CONNECTED,
                format!(
                    "a status message before the handshake finished: {}",
                    wire::excerpt(text)
                ),
            );
        };
        self.core.answer_query(&entry, &self.link, frame, text);
    }
}

/// Resolves when the deadline (if any) passes; never without one.
async fn wait_deadline(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The writer task: drains the session's queue in batches, then flushes once.
async fn write_loop<S>(
    mut sink: SplitSink<Ws<S>, Message>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    link: Arc<SessionLink>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let result: Result<(), tungstenite::Error> = async {
        loop {
            let first = tokio::select! {
                biased;
                out = rx.recv() => match out {
                    Some(out) => Some(out),
                    None => return Ok(()),
                },
                _ = link.ack_wake.notified() => None,
            };
            let mut credit = 0;
            if let Some(out) = first {
                credit += feed(&mut sink, out, &link).await?;
                for _ in 0..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(out) => credit += feed(&mut sink, out, &link).await?,
                        Err(_) => break,
                    }
                }
            }
            let acks = link.acks_pending.swap(0, Ordering::AcqRel);
            for _ in 0..acks {
                sink.feed(framed(wire::ack(), &link)).await?;
            }
            sink.flush().await?;
            if credit > 0 {
                link.credit.add_permits(credit);
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(session = link.id, "write failed: {e}");
        link.kill();
    }
}

/// Feeds one queued item to the sink in the session's frame type (raw frames as they
/// are); returns the publish credit it held.
async fn feed<S>(
    sink: &mut SplitSink<Ws<S>, Message>,
    out: Out,
    link: &SessionLink,
) -> Result<usize, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match out {
        Out::Control(msg) => sink.feed(framed(msg, link)).await.map(|_| 0),
        Out::Data(msg) => sink.feed(framed(msg, link)).await.map(|_| 1),
        Out::Raw(msg) => sink.feed(msg).await.map(|_| 0),
    }
}

/// The emulator's messages are built as text frames; on a binary session the same bytes
/// go out as a binary frame (no copy). The type is read per frame: the reader notes a
/// connector's frame type before queuing anything in answer to that frame, so every
/// answer goes out in the type of the frame it answers.
fn framed(msg: Message, link: &SessionLink) -> Message {
    match msg {
        Message::Text(text) if link.frame_type() == FrameType::Binary => {
            Message::Binary(text.into())
        }
        other => other,
    }
}
