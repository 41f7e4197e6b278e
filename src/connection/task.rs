//! The connection task of one source: it owns the socket.
//!
//! `run` loops for the life of the source: connect and hand-shake (bounded by
//! the connect timeout), serve until the connection ends, then reconnect after
//! a backoff delay (none after `reconnectRequired`). Serving reads frames and
//! feeds them to the protocol [`Session`], drains the outbox within the
//! flow-control window, and writes through a cancel-safe writer polled in
//! the same `select!`, so that a slow write never stops the reading of
//! acknowledgements and pongs (and a stream of reads never starves writes).
//! Handlers run on the dispatch task, never here, and handing them an event
//! never waits (see `dispatch::EventQueue`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};

use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tracing::Instrument;

use super::dispatch::{self, Event, EventQueue};
use super::outbox::Outgoing;
use super::{ConnectionState, Inner, SourceConnection};
use crate::config::Credentials;
use crate::connection::backoff::Backoff;
use crate::error::Error;
use crate::protocol::{self, message, Action, Failure, ServerMessage, Session};
use crate::transport::WsStream;

/// Frames queued for writing at most, before the outbox is left alone.
const BATCH: usize = 256;

/// Why a connection attempt failed.
enum AttemptError {
    /// The credentials were rejected: do not retry.
    Auth { status: u16, message: String },
    /// Anything else: retry after a delay.
    Failed(String),
}

/// How a served connection ended.
enum End {
    /// The connector was closed.
    Shutdown,
    /// `reconnectRequired`: connect again at once.
    Reconnect,
    /// The connection was lost.
    Lost(String),
}

/// Runs the source connection until it is closed or fails for good.
pub(super) async fn run(conn: SourceConnection) -> Result<(), Error> {
    let span = tracing::info_span!("source", source = %conn.source());
    let inner = conn.inner().clone();
    let handler = inner
        .handler
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if handler.is_none() {
        tracing::warn!(source = %conn.source(), "no handlers set: publishes are ignored and queries answered with an error");
    }
    let (events, events_rx, backlog) = EventQueue::new();
    let dispatcher = dispatch::run(conn.clone(), handler, events_rx, backlog);
    let worker = tokio::spawn(dispatcher.instrument(span.clone()));
    let result = supervise(&inner, &events).instrument(span).await;
    drop(events);
    // The dispatch task ends after the close handler of the last connection.
    if let Err(e) = worker.await {
        tracing::error!(source = %conn.source(), error = %e, "the dispatch task failed");
    }
    inner.state.send_replace(ConnectionState::Closed);
    result
}

/// The reconnection loop.
async fn supervise(inner: &Inner, events: &EventQueue) -> Result<(), Error> {
    let settings = inner.settings.clone();
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff = Backoff::new(settings.initial_backoff, settings.max_backoff);
    loop {
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        inner.state.send_replace(ConnectionState::Connecting);
        // At most `max_concurrent_handshakes` of the set's sources hand-shake
        // at once: a server that restarts is not stormed, and the large,
        // short-lived handshake state of thousands of sources is never all
        // allocated together (which would stay in the process's memory).
        let permit = tokio::select! {
            permit = inner.transport.handshake_permit() => permit,
            _ = shutdown.changed() => return Ok(()),
        };
        // The handshake's future is large (the TLS and WebSocket handshakes):
        // boxed, it takes no room in an idle connection's task.
        let attempt = tokio::select! {
            attempt = timeout(settings.connect_timeout, Box::pin(connect(inner))) => match attempt {
                Ok(result) => result,
                Err(_) => Err(AttemptError::Failed(format!(
                    "no configuration within the connect timeout of {:?}", settings.connect_timeout
                ))),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        drop(permit);
        let failure = match attempt {
            Ok((ws, session, config)) => {
                backoff.reset();
                let epoch = inner.epoch.fetch_add(1, Ordering::AcqRel) + 1;
                let n = inner.stats.add_connection();
                inner.connected.store(true, Ordering::Release);
                inner.state.send_replace(ConnectionState::Connected);
                tracing::info!(connection = n, "connected");
                events.send(Event::Connected { config });
                let end = serve(inner, ws, session, epoch, events, &mut shutdown).await;
                inner.connected.store(false, Ordering::Release);
                inner.state.send_replace(ConnectionState::Disconnected);
                events.send(Event::Closed);
                match end {
                    End::Shutdown => return Ok(()),
                    End::Reconnect => {
                        tracing::info!("reconnecting at the server's request (reconnectRequired)");
                        continue;
                    }
                    End::Lost(reason) => {
                        tracing::warn!(%reason, "connection lost");
                        reason
                    }
                }
            }
            Err(AttemptError::Auth { status, message }) => {
                tracing::error!(status, %message, "authentication failed: not retrying");
                return Err(Error::AuthenticationFailed {
                    source_name: inner.name.to_string(),
                    status,
                    message,
                });
            }
            Err(AttemptError::Failed(reason)) => {
                inner.state.send_replace(ConnectionState::Disconnected);
                if inner.config.fail_on_connection_error() {
                    tracing::error!(%reason, "connection failed (failOnConnectionError=true: not retrying)");
                    return Err(Error::ConnectFailed {
                        source_name: inner.name.to_string(),
                        reason,
                    });
                }
                if let Some(max) = settings.max_reconnect_attempts {
                    if backoff.failures() + 1 >= max {
                        return Err(Error::ConnectFailed {
                            source_name: inner.name.to_string(),
                            reason: format!("{reason} (gave up after {max} attempts)"),
                        });
                    }
                }
                reason
            }
        };
        let delay = backoff.next_delay();
        tracing::info!(%failure, retry_in_ms = delay.as_millis() as u64, attempt = backoff.failures(), "will reconnect");
        tokio::select! {
            _ = sleep(delay) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Opens the socket and runs the handshake to the configuration.
async fn connect(inner: &Inner) -> Result<(WsStream, Session, serde_json::Value), AttemptError> {
    let mut ws =
        inner.transport.connect().await.map_err(|e| {
            AttemptError::Failed(format!("cannot open {}: {e}", inner.transport.url()))
        })?;
    let auth = match inner.config.credentials() {
        Credentials::Token(token) => message::validate(token.expose()),
        Credentials::UserPassword { username, password } => {
            message::authenticate(username, password.expose())
        }
    };
    let (mut session, first) = Session::start(
        &inner.name,
        &inner.reconnect_secret,
        auth,
        inner.settings.reconnect_style,
    );
    send(&mut ws, first).await?;
    loop {
        let frame = match ws.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                return Err(AttemptError::Failed(format!(
                    "connection failed during the handshake: {e}"
                )))
            }
            None => {
                return Err(AttemptError::Failed(
                    "the server closed the connection during the handshake".into(),
                ))
            }
        };
        let msg = match decode_frame(inner, &frame) {
            Some(Ok(msg)) => msg,
            Some(Err(())) => continue,
            None if matches!(frame, Message::Close(_)) => {
                return Err(AttemptError::Failed(
                    "the server closed the connection during the handshake".into(),
                ))
            }
            None => continue,
        };
        match session.on_message(msg) {
            Action::Send(frame) => send(&mut ws, frame).await?,
            Action::Connected { config } => return Ok((ws, session, config)),
            Action::Fail(Failure::AuthRejected { status, body }) => {
                let _ = ws.close(None).await;
                return Err(AttemptError::Auth {
                    status,
                    message: error_text(body.as_ref()),
                });
            }
            Action::Fail(Failure::ConnectRejected { status, body }) => {
                let _ = ws.close(None).await;
                return Err(AttemptError::Failed(format!(
                    "the server refused the source (status {status}): {}",
                    error_text(body.as_ref())
                )));
            }
            Action::Reconnect | Action::Reconfigure { .. } => {
                return Err(AttemptError::Failed(
                    "reconnectRequired during the handshake".into(),
                ))
            }
            Action::Ignore(why) => tracing::debug!(why, "ignored a message during the handshake"),
            other => tracing::debug!(?other, "unexpected action during the handshake"),
        }
    }
}

async fn send(ws: &mut WsStream, frame: String) -> Result<(), AttemptError> {
    ws.send(Message::text(frame))
        .await
        .map_err(|e| AttemptError::Failed(format!("connection failed during the handshake: {e}")))
}

/// The server's error list (`[{"code","message"}]`), as one line.
fn error_text(body: Option<&serde_json::Value>) -> String {
    let Some(body) = body else {
        return "no reason given".into();
    };
    let items = match body {
        serde_json::Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let text: Vec<String> = items
        .iter()
        .map(|item| {
            match (
                item.get("code").and_then(|c| c.as_str()),
                item.get("message").and_then(|m| m.as_str()),
            ) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (None, Some(message)) => message.to_owned(),
                _ => item.to_string(),
            }
        })
        .collect();
    text.join("; ")
}

/// Decodes a data frame: `None` for control frames, `Some(Err)` for a frame
/// that was logged and skipped.
fn decode_frame(inner: &Inner, frame: &Message) -> Option<Result<ServerMessage, ()>> {
    let bytes: &[u8] = match frame {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => return None,
    };
    if bytes.len() > inner.settings.max_message_size {
        inner.stats.add_malformed();
        tracing::warn!(
            size = bytes.len(),
            limit = inner.settings.max_message_size,
            "skipping a server message over the size limit"
        );
        return Some(Err(()));
    }
    Some(protocol::decode(bytes).map_err(|e| {
        inner.stats.add_malformed();
        tracing::warn!(error = %e, "skipping a malformed server message");
    }))
}

/// Frames read in one turn of the serving loop, at most, before the loop
/// looks at the outbox and the writer again.
const READ_BURST: usize = 64;

/// The state of one served connection: what the connection task keeps
/// between frames.
struct Link<'a> {
    inner: &'a Inner,
    session: Session,
    epoch: u64,
    events: &'a EventQueue,
    /// Whether the server acknowledges notifications (as far as we know).
    acks: bool,
    /// Notifications written and not yet acknowledged, oldest first.
    inflight: VecDeque<Utf8Bytes>,
    /// When the oldest unacknowledged notification last saw progress.
    last_ack: Instant,
    /// Frames to write, in order.
    pending: VecDeque<Message>,
    drained: Vec<Outgoing>,
    /// The deadline of the pong of the last ping, while it is outstanding.
    pong_deadline: Option<Instant>,
}

impl Link<'_> {
    /// Moves what may be written now from the outbox to `pending`. Past the
    /// window only while reading is paused (then no acknowledgement can be
    /// read, and waiting for one would deadlock a handler that waits for
    /// room in the outbox).
    fn fill_pending(&mut self, reading_paused: bool) {
        if self.pending.len() >= BATCH || !self.session.is_connected() {
            return;
        }
        let room = if self.acks && !reading_paused {
            self.inner
                .settings
                .window
                .saturating_sub(self.inflight.len())
        } else {
            usize::MAX
        };
        let mut drained = std::mem::take(&mut self.drained);
        self.inner
            .outbox
            .drain(room, BATCH - self.pending.len(), &mut drained);
        let (mut sent, mut resent) = (0, 0);
        for item in drained.drain(..) {
            match item {
                Outgoing::Notification { frame, resend } => {
                    if self.acks {
                        if self.inflight.is_empty() {
                            // The first notification in flight starts the ack clock.
                            self.last_ack = Instant::now();
                        }
                        self.inflight.push_back(frame.clone());
                    }
                    sent += 1;
                    resent += u64::from(resend);
                    self.pending.push_back(Message::Text(frame));
                }
                Outgoing::Answer {
                    epoch,
                    reply_address,
                    status,
                    body,
                } => {
                    if epoch != self.epoch {
                        tracing::debug!(%reply_address, "dropping an answer to a query of an earlier connection");
                        continue;
                    }
                    match self.session.answer(&reply_address, status, body.as_deref()) {
                        Ok(frame) => self.pending.push_back(Message::text(frame)),
                        Err(e) => tracing::error!(error = %e, "refused to send a query answer"),
                    }
                }
            }
        }
        self.drained = drained;
        if sent > 0 {
            if !self.acks {
                self.inner.stats.add_settled(sent);
            }
            self.inner.stats.add_sent(sent, resent);
        }
    }

    /// Takes one frame from the server; `Some` when the connection ends.
    fn on_frame(&mut self, frame: Message) -> Option<End> {
        match &frame {
            Message::Pong(_) => self.pong_deadline = None,
            Message::Close(reason) => {
                return Some(End::Lost(format!(
                    "the server closed the connection ({reason:?})"
                )))
            }
            _ => {}
        }
        let Some(Ok(msg)) = decode_frame(self.inner, &frame) else {
            return None;
        };
        let inner = self.inner;
        match self.session.on_message(msg) {
            Action::Send(frame) => self.pending.push_back(Message::text(frame)),
            Action::Publish { object } => {
                inner.stats.add_publish();
                self.events.send(Event::Publish { object })
            }
            Action::Query {
                params,
                reply_address,
            } => self.events.send(Event::Query {
                params,
                reply_address,
                epoch: self.epoch,
                received: inner.stats.query_latency.start(),
            }),
            Action::Ack { status, body } => {
                inner.acks_seen.store(true, Ordering::Release);
                self.last_ack = Instant::now();
                if status >= 300 {
                    tracing::warn!(status, body = %body.unwrap_or_default(), "the server reported an error for a message");
                }
                if self.inflight.pop_front().is_some() {
                    inner.stats.add_acknowledged(status >= 300);
                }
            }
            Action::Connected { config } => {
                // Same-socket reconnection completed.
                inner.stats.add_connection();
                inner.connected.store(true, Ordering::Release);
                inner.state.send_replace(ConnectionState::Connected);
                self.events.send(Event::Connected { config });
            }
            Action::Reconfigured { config } => {
                self.events.send(Event::Closed);
                inner.stats.add_connection();
                self.events.send(Event::Connected { config });
            }
            Action::Reconfigure { resend } => {
                tracing::info!("reconnecting on the same socket at the server's request");
                inner.state.send_replace(ConnectionState::Connecting);
                // Statuses now answer the handshake, not notifications:
                // whatever is unacknowledged goes out again afterwards.
                self.requeue_inflight();
                self.events.send(Event::Closed);
                self.pending.push_back(Message::text(resend));
            }
            Action::Reconnect => {
                self.pending.push_back(Message::Close(None));
                return Some(End::Reconnect);
            }
            Action::Fail(failure) => {
                return Some(End::Lost(format!(
                    "the server refused the reconnection: {failure:?}"
                )))
            }
            Action::Ignore(why) => tracing::debug!(why, "ignored a server message"),
        }
        None
    }

    /// No acknowledgement within the ack timeout.
    fn on_ack_timeout(&mut self) -> Option<End> {
        let settings = &self.inner.settings;
        if self.inner.acks_seen.load(Ordering::Acquire) {
            return Some(End::Lost(format!(
                "no acknowledgement for {:?} while {} notifications are in flight",
                settings.ack_timeout,
                self.inflight.len()
            )));
        }
        tracing::warn!(
            "the server has not acknowledged any notification: delivery is at-most-once from now on for this source"
        );
        self.inner.acks_unsupported.store(true, Ordering::Release);
        self.acks = false;
        self.inner.stats.add_settled(self.inflight.len() as u64);
        self.inflight.clear();
        None
    }

    /// Puts the unacknowledged notifications back at the front of the
    /// outbox, to be sent again.
    fn requeue_inflight(&mut self) {
        if !self.inflight.is_empty() {
            tracing::info!(
                count = self.inflight.len(),
                "re-queueing unacknowledged notifications to send again"
            );
            self.inner
                .outbox
                .requeue_front(std::mem::take(&mut self.inflight).into_iter());
        }
    }
}

/// Serves one connected session until it ends.
async fn serve(
    inner: &Inner,
    ws: WsStream,
    session: Session,
    epoch: u64,
    events: &EventQueue,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let settings = &inner.settings;
    let (sink, mut stream) = ws.split();
    let mut writer = Writer {
        sink,
        unflushed: false,
    };
    let mut link = Link {
        inner,
        session,
        epoch,
        events,
        acks: !inner.acks_unsupported.load(Ordering::Acquire),
        inflight: VecDeque::new(),
        last_ack: Instant::now(),
        pending: VecDeque::new(),
        drained: Vec::new(),
        pong_deadline: None,
    };
    let pings = inner.config.send_pings();
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing: Option<Instant> = None;
    let mut was_paused = false;

    let end = loop {
        let paused = events.is_full();
        if was_paused && !paused {
            // No acknowledgement could be read while paused.
            link.last_ack = Instant::now();
        }
        was_paused = paused;
        link.fill_pending(paused);
        if let Some(deadline) = closing {
            let delivered = link.pending.is_empty()
                && inner.outbox.is_empty()
                && (!link.acks || link.inflight.is_empty());
            if delivered || Instant::now() >= deadline {
                if !delivered {
                    tracing::warn!(
                        unacknowledged = link.inflight.len(),
                        "closing before every notification was acknowledged"
                    );
                }
                link.pending.push_back(Message::Close(None));
                break End::Shutdown;
            }
        }
        let ack_deadline = (link.acks && !paused && !link.inflight.is_empty())
            .then(|| link.last_ack + settings.ack_timeout);

        // Writes first, so that a stream of incoming frames cannot starve
        // them; reads whenever the writer is busy or has nothing to do.
        tokio::select! {
            biased;
            _ = shutdown.changed(), if closing.is_none() => {
                closing = Some(Instant::now() + settings.close_timeout);
            }
            written = poll_fn(|cx| writer.poll_write(&mut link.pending, cx)), if writer.has_work(&link.pending) => {
                if let Err(e) = written {
                    break End::Lost(format!("write failed: {e}"));
                }
            }
            frame = stream.next(), if !paused => {
                // This frame, and those already read behind it, up to a burst.
                let mut next = Some(frame);
                let mut ended = None;
                let mut taken = 0;
                while let Some(item) = next.take() {
                    match item {
                        None => ended = Some(End::Lost("the server closed the connection".into())),
                        Some(Err(e)) => ended = Some(End::Lost(e.to_string())),
                        Some(Ok(frame)) => ended = link.on_frame(frame),
                    }
                    taken += 1;
                    if ended.is_some() || taken >= READ_BURST || events.is_full() {
                        break;
                    }
                    next = stream.next().now_or_never();
                }
                if let Some(end) = ended {
                    break end;
                }
            }
            _ = events.below_limit(), if paused => {}
            _ = inner.outbox.wait_for_data(), if link.pending.is_empty() => {}
            _ = sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {}
            _ = ping.tick(), if pings && link.pong_deadline.is_none() => {
                link.pong_deadline = Some(Instant::now() + settings.ping_interval / 2);
                link.pending.push_back(Message::Ping(Default::default()));
            }
            _ = sleep_until(link.pong_deadline.unwrap_or_else(Instant::now)), if link.pong_deadline.is_some() => {
                break End::Lost(format!(
                    "no pong within {:?} of a ping (half the ping interval)",
                    settings.ping_interval / 2
                ));
            }
            _ = sleep_until(ack_deadline.unwrap_or_else(Instant::now)), if ack_deadline.is_some() => {
                if let Some(end) = link.on_ack_timeout() {
                    break end;
                }
            }
        }
    };

    // Write what is left (a close frame, if any), unless the link is gone.
    if !matches!(end, End::Lost(_)) {
        let flush = poll_fn(|cx| writer.poll_write(&mut link.pending, cx));
        let _ = timeout(settings.close_timeout, flush).await;
    }
    link.requeue_inflight();
    end
}

/// The write half of a connection, polled by the connection task itself.
struct Writer {
    sink: SplitSink<WsStream, Message>,
    /// Whether frames were handed to the sink since the last flush.
    unflushed: bool,
}

impl Writer {
    /// Whether there is anything to write or flush.
    fn has_work(&self, queue: &VecDeque<Message>) -> bool {
        self.unflushed || !queue.is_empty()
    }

    /// Writes every queued frame, then flushes once. Cancel-safe: a frame
    /// leaves `queue` only in the same poll in which the sink accepts it, so
    /// dropping this future between polls loses nothing.
    fn poll_write(
        &mut self,
        queue: &mut VecDeque<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), WsError>> {
        while !queue.is_empty() {
            ready!(self.sink.poll_ready_unpin(cx))?;
            let frame = queue.pop_front().expect("not empty");
            self.sink.start_send_unpin(frame)?;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(self.sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}
