//! The floor: a bare tokio-tungstenite client that does the connector handshake and the
//! echo behaviour with no SDK logic at all — no outbox, no acknowledgement tracking, no
//! handler dispatch, no reconnect backoff (a fixed short retry). It parses only what it
//! must: a publish is echoed by slicing its `object` out of the frame text (the emulator
//! always writes `object` last), a query is parsed with `serde_json` to read its `op`,
//! `count`, `chunk` and reply address. Acknowledgements are read and ignored.
//!
//! What it answers: publish (echo), `rows` (count, chunk), `notify` (count), `config`;
//! any other op gets a query error. That is the part of the echo contract the benchmark
//! drives.
//!
//! With `parse` on (`floor --parse`, the *parsing floor* of issue 17), a publish's `object`
//! is parsed into a `serde_json::Value` and serialised again instead of being sliced: the
//! least an SDK that hands its handlers a JSON tree must do.
//!
//! With `check` on (`floor --check`, a diagnostic run by hand like the window below), a
//! publish's `object` is checked to be a JSON object (serde_json's raw value, as the SDK's
//! raw path checks it) and then sliced: the splicing floor plus the one check the SDK's
//! raw path must make, so that the raw path's gap to the splicing floor can be split into
//! that check and the rest.
//!
//! With a hand-off (`floor --handoff`, a diagnostic run by hand like the others), the
//! floor takes the shape the SDK's guarantees give a connector, and nothing else of the
//! SDK: each publish's object is checked as with `--check`, copied (as the SDK's raw
//! object is), and handed to a second task over a channel (the SDK's event port: the
//! handler never runs on the socket's task); that task makes the notification and hands
//! it back over another channel (the SDK's outbox); the socket's task writes it and keeps
//! it until the server acknowledges it, at most [`HANDOFF_WINDOW`] unacknowledged (the
//! SDK's flow-control window, needed to send again what was not acknowledged). It tells
//! how much of the raw path's gap to the splicing floor those guarantees cost a client
//! without the SDK. Only publishes take that way; queries are answered as by the floor.
//!
//! With a window (`floor --window N`, a diagnostic run by hand, not a column of the
//! benchmark: BENCHMARKS.md), the `notify` query's burst keeps at most `N` notifications
//! unacknowledged, reading the server's acknowledgements as it goes, as the SDK's
//! flow-control window does; without it the floor reads them only after its burst.
//!
//! The same code serves the driver's ceiling with many sources ([`FloorThread`]), and
//! [`Session::count_frames`] and [`Session::blast_notifications`] drive the emulator one
//! way only (the "emulator alone" figures). The ceiling of the single-source figures is
//! the trivial client instead (`crate::trivial`).

use futures_util::stream::StreamExt;
use futures_util::{FutureExt, SinkExt};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vantiq_connector_sdk::config::ServerConfig;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Frames handled per wake-up before the answers are flushed.
const MAX_BATCH: usize = 256;

/// Notifications unacknowledged at most with `--handoff` (the SDK's window).
pub const HANDOFF_WINDOW: usize = 1024;

/// Why a session ended.
#[derive(Debug)]
pub enum FloorError {
    /// The WebSocket failed or closed.
    Ws(tungstenite::Error),
    /// The server refused the handshake or said something unexpected.
    Handshake(String),
}

impl std::fmt::Display for FloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FloorError::Ws(e) => write!(f, "websocket: {e}"),
            FloorError::Handshake(s) => write!(f, "handshake: {s}"),
        }
    }
}

impl std::error::Error for FloorError {}

impl From<tungstenite::Error> for FloorError {
    fn from(e: tungstenite::Error) -> Self {
        FloorError::Ws(e)
    }
}

/// Small buffers: ten thousand idle sockets must stay cheap; they grow when needed.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
}

/// A connected, handshaken socket serving one source.
pub struct Session {
    ws: Ws,
    /// `{"op":"notification","resourceName":"sources","resourceId":"<src>","object":`
    prefix: String,
    /// The `config` object of `configureExtension`, as JSON text.
    config: String,
    /// How it echoes: plain, through a JSON tree, checked, with a window.
    opts: Opts,
    /// Notifications written and not yet acknowledged (counted with a window only).
    in_flight: usize,
    /// With `--handoff`: the way to the second task, and the notifications kept.
    handoff: Option<Handoff>,
}

/// The socket task's end of `--handoff` (see the module docs).
struct Handoff {
    /// Checked objects, copied, to the task that makes their notifications.
    to_worker: tokio::sync::mpsc::UnboundedSender<String>,
    /// Notifications written, kept until acknowledged (oldest first).
    kept: std::collections::VecDeque<tungstenite::Utf8Bytes>,
}

async fn next_text(ws: &mut Ws) -> Result<String, FloorError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Binary(b))) => {
                return String::from_utf8(b.to_vec())
                    .map_err(|_| FloorError::Handshake("binary frame not UTF-8".into()))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(tungstenite::Error::ConnectionClosed.into()),
        }
    }
}

/// Connects to `url`, authenticates with `token` and connects `source`.
pub async fn connect(url: &str, token: &str, source: &str) -> Result<Session, FloorError> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    let validate = json!({"op":"validate","resourceName":"system.credentials","object":token});
    ws.send(Message::text(validate.to_string())).await?;
    let answer = next_text(&mut ws).await?;
    let status = serde_json::from_str::<Value>(&answer)
        .ok()
        .and_then(|v| v.get("status").and_then(Value::as_u64));
    if status != Some(200) {
        return Err(FloorError::Handshake(format!("validate refused: {answer}")));
    }
    let secret = format!("floor-{}", std::process::id());
    let connect = json!({"op":"connectExtension","resourceName":"sources","resourceId":source,
                         "parameters":{"reconnectSecret":secret}});
    ws.send(Message::text(connect.to_string())).await?;
    let config = loop {
        let text = next_text(&mut ws).await?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| FloorError::Handshake(format!("not JSON: {e}")))?;
        if v.get("op").and_then(Value::as_str) == Some("configureExtension") {
            let config = v.pointer("/object/config").cloned().unwrap_or(Value::Null);
            break config.to_string();
        }
        match v.get("status").and_then(Value::as_u64) {
            Some(s) if s < 300 => continue,
            _ => return Err(FloorError::Handshake(format!("connect refused: {text}"))),
        }
    };
    let prefix = format!(
        r#"{{"op":"notification","resourceName":"sources","resourceId":{},"object":"#,
        Value::from(source)
    );
    Ok(Session {
        ws,
        prefix,
        config,
        opts: Opts::default(),
        in_flight: 0,
        handoff: None,
    })
}

/// What a session does after handling a frame.
enum Next {
    Go,
    Reconnect,
}

impl Session {
    /// Echoes as `opts` says: through a JSON tree, checked, with a window (see the module
    /// docs).
    pub fn with(mut self, opts: Opts) -> Session {
        self.opts = opts;
        self
    }

    /// Serves the echo behaviour until the connection ends (`Ok` on `reconnectRequired`).
    pub async fn serve(mut self) -> Result<(), FloorError> {
        if self.opts.handoff {
            return self.serve_handoff().await;
        }
        loop {
            let first = self.ws.next().await;
            if let Next::Reconnect = self.take_batch(first).await? {
                return Ok(());
            }
            self.ws.flush().await?;
        }
    }

    /// Takes `first` and the frames already arrived behind it, up to [`MAX_BATCH`].
    async fn take_batch(
        &mut self,
        first: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Next, FloorError> {
        if let Next::Reconnect = self.take(first).await? {
            return Ok(Next::Reconnect);
        }
        for _ in 0..MAX_BATCH {
            match self.ws.next().now_or_never() {
                None => break,
                Some(item) => {
                    if let Next::Reconnect = self.take(item).await? {
                        return Ok(Next::Reconnect);
                    }
                }
            }
        }
        Ok(Next::Go)
    }

    async fn take(
        &mut self,
        item: Option<Result<Message, tungstenite::Error>>,
    ) -> Result<Next, FloorError> {
        let msg = match item {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(tungstenite::Error::ConnectionClosed.into()),
        };
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            Message::Binary(b) => std::str::from_utf8(b).unwrap_or(""),
            _ => return Ok(Next::Go),
        };
        if text.starts_with(r#"{"status""#) {
            self.in_flight = self.in_flight.saturating_sub(1);
            if let Some(handoff) = &mut self.handoff {
                handoff.kept.pop_front();
            }
            return Ok(Next::Go); // an acknowledgement
        }
        if text.starts_with(r#"{"op":"publish""#) {
            if let Some(at) = text.find(r#""object":"#) {
                let object = &text[at + 9..text.len() - 1];
                if let Some(handoff) = &self.handoff {
                    if let Some(object) = checked_object(object) {
                        let _ = handoff.to_worker.send(object.to_owned());
                    }
                    return Ok(Next::Go);
                }
                let frame = if self.opts.parse {
                    match serde_json::from_str::<Value>(object) {
                        Ok(tree) => self.notification(&tree.to_string()),
                        Err(_) => return Ok(Next::Go),
                    }
                } else if self.opts.check {
                    match checked_object(object) {
                        Some(object) => self.notification(object),
                        None => return Ok(Next::Go),
                    }
                } else {
                    self.notification(object)
                };
                self.ws.feed(Message::text(frame)).await?;
            }
            return Ok(Next::Go);
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return Ok(Next::Go);
        };
        match v.get("op").and_then(Value::as_str) {
            Some("query") => {
                self.query(&v).await?;
                Ok(Next::Go)
            }
            Some("reconnectRequired") => Ok(Next::Reconnect),
            _ => Ok(Next::Go),
        }
    }

    fn notification(&self, object: &str) -> String {
        notification(&self.prefix, object)
    }

    /// `serve` with `--handoff` (see the module docs): the socket's task writes the
    /// notifications the second task hands back first, within the window, and reads
    /// frames whenever it has nothing to write.
    async fn serve_handoff(mut self) -> Result<(), FloorError> {
        let (to_worker, mut work) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (to_socket, mut back) = tokio::sync::mpsc::unbounded_channel::<String>();
        let prefix = self.prefix.clone();
        let worker = tokio::spawn(async move {
            while let Some(object) = work.recv().await {
                if to_socket.send(notification(&prefix, &object)).is_err() {
                    break;
                }
            }
        });
        // The worker ends with the session, however it ends.
        let _worker = AbortOnDrop(worker);
        self.handoff = Some(Handoff {
            to_worker,
            kept: std::collections::VecDeque::new(),
        });
        loop {
            let room = self
                .handoff
                .as_ref()
                .map_or(0, |h| HANDOFF_WINDOW - h.kept.len().min(HANDOFF_WINDOW));
            tokio::select! {
                biased;
                frame = back.recv(), if room > 0 => {
                    let Some(frame) = frame else { return Ok(()) };
                    self.write_kept(frame).await?;
                    for _ in 1..room.min(MAX_BATCH) {
                        match back.try_recv() {
                            Ok(frame) => self.write_kept(frame).await?,
                            Err(_) => break,
                        }
                    }
                    self.ws.flush().await?;
                }
                first = self.ws.next() => {
                    if let Next::Reconnect = self.take_batch(first).await? {
                        return Ok(());
                    }
                    // Answers to queries, if any.
                    self.ws.flush().await?;
                }
            }
        }
    }

    /// Writes a notification handed back and keeps it until acknowledged.
    async fn write_kept(&mut self, frame: String) -> Result<(), FloorError> {
        let frame = tungstenite::Utf8Bytes::from(frame);
        if let Some(handoff) = &mut self.handoff {
            handoff.kept.push_back(frame.clone());
        }
        self.ws.feed(Message::Text(frame)).await?;
        Ok(())
    }

    async fn answer(
        &mut self,
        addr: &str,
        status: u16,
        body: Option<&str>,
    ) -> Result<(), FloorError> {
        let mut frame = format!(
            r#"{{"status":{status},"headers":{{"X-Reply-Address":{}}}"#,
            Value::from(addr)
        );
        if let Some(body) = body {
            frame.push_str(r#","body":"#);
            frame.push_str(body);
        }
        frame.push('}');
        self.ws.feed(Message::text(frame)).await?;
        Ok(())
    }

    async fn query(&mut self, q: &Value) -> Result<(), FloorError> {
        let Some(addr) = q
            .pointer("/messageHeaders/REPLY_ADDR_HEADER")
            .and_then(Value::as_str)
        else {
            return Ok(());
        };
        let params = q.get("object").cloned().unwrap_or(Value::Null);
        let count = params.get("count").and_then(Value::as_u64).unwrap_or(0);
        match params.get("op").and_then(Value::as_str) {
            Some("rows") => {
                if count == 0 {
                    return self.answer(addr, 204, None).await;
                }
                let chunk = params
                    .get("chunk")
                    .and_then(Value::as_u64)
                    .filter(|k| *k > 0)
                    .unwrap_or(count);
                let mut i = 0;
                while i < count {
                    let end = (i + chunk).min(count);
                    let mut body = String::from("[");
                    for r in i..end {
                        if r > i {
                            body.push(',');
                        }
                        let _ = write!(body, r#"{{"i":{r}}}"#);
                    }
                    body.push(']');
                    let status = if end == count { 200 } else { 100 };
                    self.answer(addr, status, Some(&body)).await?;
                    i = end;
                }
                Ok(())
            }
            Some("notify") => {
                for seq in 0..count {
                    let frame = self.notification(&format!(r#"{{"seq":{seq}}}"#));
                    self.ws.feed(Message::text(frame)).await?;
                    if let Some(window) = self.opts.window {
                        self.in_flight += 1;
                        if self.in_flight >= window {
                            self.ws.flush().await?;
                            self.read_acks(window).await?;
                        }
                    }
                }
                self.answer(addr, 200, Some(&format!(r#"{{"sent":{count}}}"#)))
                    .await
            }
            Some("config") => {
                let body = self.config.clone();
                self.answer(addr, 200, Some(&body)).await
            }
            op => {
                let body = json!({"messageCode":"echo.unknownOp","messageTemplate":"Unknown op {0}",
                                  "parameters":[op]});
                self.answer(addr, 400, Some(&body.to_string())).await
            }
        }
    }

    /// Reads frames until fewer than `window` notifications are unacknowledged, then
    /// every frame already arrived, so the window opens in bulk (frames other than
    /// acknowledgements are dropped: the diagnostic runs `notify` alone).
    async fn read_acks(&mut self, window: usize) -> Result<(), FloorError> {
        let mut waited = false;
        loop {
            let item = if self.in_flight >= window || !waited {
                waited = true;
                self.ws.next().await
            } else {
                match self.ws.next().now_or_never() {
                    Some(item) => item,
                    None => return Ok(()),
                }
            };
            match item {
                Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"status""#) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(tungstenite::Error::ConnectionClosed.into()),
            }
        }
    }

    /// Ceiling: reads `n` text frames (publishes) without answering; returns how many
    /// arrived before the connection ended.
    pub async fn count_frames(mut self, n: usize) -> usize {
        let mut got = 0;
        while got < n {
            match self.ws.next().await {
                Some(Ok(Message::Text(_))) => got += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        got
    }

    /// Ceiling: sends `n` ready-made notifications as fast as the socket takes them,
    /// reading (and discarding) the acknowledgements meanwhile, then keeps the socket
    /// open: it never returns `Ok`, the caller aborts the task once it has counted.
    pub async fn blast_notifications(self, n: usize) -> Result<(), FloorError> {
        let (mut write, mut read) = self.ws.split();
        let drain = tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
        let frame = {
            let mut f = self.prefix.clone();
            f.push_str(r#"{"i":0,"payload":"0123456789"}}"#);
            f
        };
        for i in 0..n {
            write.feed(Message::text(frame.clone())).await?;
            if i % MAX_BATCH == MAX_BATCH - 1 {
                write.flush().await?;
            }
        }
        write.flush().await?;
        // Keep the socket open until the caller is done counting (and aborts us).
        let _ = drain.await;
        std::future::pending().await
    }
}

/// A notification frame: `prefix` (the envelope up to `"object":`), `object`, `}`.
fn notification(prefix: &str, object: &str) -> String {
    let mut frame = String::with_capacity(prefix.len() + object.len() + 1);
    frame.push_str(prefix);
    frame.push_str(object);
    frame.push('}');
    frame
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How the floor echoes (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Opts {
    /// Echo publishes through a JSON tree: the parsing floor.
    pub parse: bool,
    /// Check each published object to be a JSON object before slicing it (`--check`).
    pub check: bool,
    /// Keep at most this many notifications of a `notify` burst unacknowledged.
    pub window: Option<usize>,
    /// Check publishes and hand them to a second task, keep notifications until
    /// acknowledged (`--handoff`).
    pub handoff: bool,
}

/// `object` (a publish's object text) if it is a JSON object, trimmed: the check of the
/// SDK's raw path, made with the same serde_json raw value.
pub fn checked_object(object: &str) -> Option<&str> {
    let raw: &serde_json::value::RawValue = serde_json::from_str(object).ok()?;
    raw.get().starts_with('{').then(|| raw.get())
}

/// Serves `source` forever: connect, serve, and on any failure retry after `retry`;
/// `opts`: see [`Session::with`].
pub async fn serve_forever(
    url: Arc<str>,
    token: Arc<str>,
    source: String,
    retry: Duration,
    opts: Opts,
) {
    loop {
        match connect(&url, &token, &source).await {
            Ok(session) => {
                if let Err(e) = session.with(opts).serve().await {
                    if std::env::var_os("FLOOR_DEBUG").is_some() {
                        eprintln!("floor: {source}: {e}");
                    }
                }
            }
            Err(e) => {
                if std::env::var_os("FLOOR_DEBUG").is_some() {
                    eprintln!("floor: {source}: {e}");
                }
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// Serves every source of `config` (one socket each) until the returned tasks are
/// aborted; `opts`: see [`Session::with`].
///
/// # Errors
///
/// When `config` authenticates with something other than a token.
pub fn spawn_all(
    config: &ServerConfig,
    retry: Duration,
    opts: Opts,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let url: Arc<str> = config.websocket_url().into();
    let token: Arc<str> = crate::config::token(config)?.into();
    Ok(config
        .sources()
        .iter()
        .map(|s| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(serve_forever(url, token, s.clone(), retry, opts))
        })
        .collect())
}

/// The floor's code serving every source of a configuration on a thread of its own, with
/// its own single-threaded runtime: the driver's ceiling with many sources, kept off the
/// emulator's thread as a connector process would be. Stops when dropped.
pub struct FloorThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FloorThread {
    /// Starts serving `config`'s sources, retrying a lost connection after `retry`.
    pub fn start(config: &ServerConfig, retry: Duration) -> std::io::Result<FloorThread> {
        crate::config::token(config).map_err(std::io::Error::other)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = config.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("floor-ceiling".into())
            .spawn(move || {
                rt.block_on(async move {
                    let tasks = spawn_all(&config, retry, Opts::default()).unwrap_or_default();
                    let _ = stopped.await;
                    for t in tasks {
                        t.abort();
                    }
                });
            })?;
        Ok(FloorThread {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for FloorThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
