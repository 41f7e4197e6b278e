//! The connection task of one source: it owns the socket.
//!
//! `run` loops for the life of the source: connect and hand-shake (bounded by
//! the connect timeout), serve until the connection ends, then reconnect after
//! a backoff delay (none after `reconnectRequired`). Serving reads frames and
//! feeds them to the protocol [`Session`], drains the outbox within the
//! flow-control window, and hands frames to a writer sub-task, so that a slow
//! write never stops the reading of acknowledgements and pongs. Handlers run
//! on the dispatch task, never here.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::Instrument;

use super::dispatch::{self, Event};
use super::outbox::Outgoing;
use super::{ConnectionState, Inner, SourceConnection};
use crate::config::Credentials;
use crate::connection::backoff::Backoff;
use crate::error::Error;
use crate::protocol::{self, message, Action, Failure, ServerMessage, Session};
use crate::transport::WsStream;

/// Frames handed to the writer in one batch, at most.
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
    let (events, events_rx) = mpsc::channel(1024);
    let worker =
        tokio::spawn(dispatch::run(conn.clone(), handler, events_rx).instrument(span.clone()));
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
async fn supervise(inner: &Inner, events: &mpsc::Sender<Event>) -> Result<(), Error> {
    let settings = inner.settings.clone();
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff = Backoff::new(settings.initial_backoff, settings.max_backoff);
    loop {
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        inner.state.send_replace(ConnectionState::Connecting);
        let attempt = tokio::select! {
            attempt = timeout(settings.connect_timeout, connect(inner)) => match attempt {
                Ok(result) => result,
                Err(_) => Err(AttemptError::Failed(format!(
                    "no configuration within the connect timeout of {:?}", settings.connect_timeout
                ))),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let failure = match attempt {
            Ok((ws, session, config)) => {
                backoff.reset();
                let epoch = inner.epoch.fetch_add(1, Ordering::AcqRel) + 1;
                let n = inner.stats.add_connection();
                inner.connected.store(true, Ordering::Release);
                inner.state.send_replace(ConnectionState::Connected);
                tracing::info!(connection = n, "connected");
                let _ = events.send(Event::Connected { config }).await;
                let end = serve(inner, ws, session, epoch, events, &mut shutdown).await;
                inner.connected.store(false, Ordering::Release);
                inner.state.send_replace(ConnectionState::Disconnected);
                let _ = events.send(Event::Closed).await;
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

/// Serves one connected session until it ends.
async fn serve(
    inner: &Inner,
    ws: WsStream,
    mut session: Session,
    epoch: u64,
    events: &mpsc::Sender<Event>,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let settings = &inner.settings;
    let (sink, mut stream) = ws.split();
    let (writer_tx, writer_rx) = mpsc::channel::<Vec<Message>>(4);
    let mut writer = tokio::spawn(write_loop(sink, writer_rx).in_current_span());

    let mut acks = !inner.acks_unsupported.load(Ordering::Acquire);
    let mut inflight: VecDeque<Utf8Bytes> = VecDeque::new();
    let mut last_ack = Instant::now();
    let mut pending: Vec<Message> = Vec::new();
    let mut drained: Vec<Outgoing> = Vec::new();
    let pings = inner.config.send_pings();
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When a ping is unanswered: the deadline for its pong.
    let mut ping_outstanding: Option<Instant> = None;
    let mut closing: Option<Instant> = None;

    let end = loop {
        // Move what may be written now from the outbox to `pending`.
        if pending.len() < BATCH && session.is_connected() {
            let room = if acks {
                settings.window.saturating_sub(inflight.len())
            } else {
                usize::MAX
            };
            inner
                .outbox
                .drain(room, BATCH - pending.len(), &mut drained);
            let (mut sent, mut resent) = (0, 0);
            for item in drained.drain(..) {
                match item {
                    Outgoing::Notification { frame, resend } => {
                        if acks {
                            inflight.push_back(frame.clone());
                        }
                        sent += 1;
                        resent += u64::from(resend);
                        pending.push(Message::Text(frame));
                    }
                    Outgoing::Answer {
                        epoch: query_epoch,
                        reply_address,
                        status,
                        body,
                    } => {
                        if query_epoch != epoch {
                            tracing::debug!(%reply_address, "dropping an answer to a query of an earlier connection");
                            continue;
                        }
                        match session.answer(&reply_address, status, body.as_deref()) {
                            Ok(frame) => pending.push(Message::text(frame)),
                            Err(e) => tracing::error!(error = %e, "refused to send a query answer"),
                        }
                    }
                }
            }
            if sent > 0 {
                if !acks {
                    inner.stats.add_settled(sent);
                }
                if acks && inflight.len() == sent as usize {
                    // The first notification in flight starts the ack clock.
                    last_ack = Instant::now();
                }
                inner.stats.add_sent(sent, resent);
            }
        }
        if let Some(deadline) = closing {
            let delivered =
                pending.is_empty() && inner.outbox.is_empty() && (!acks || inflight.is_empty());
            if delivered || Instant::now() >= deadline {
                if !delivered {
                    tracing::warn!(
                        unacknowledged = inflight.len(),
                        "closing before every notification was acknowledged"
                    );
                }
                pending.push(Message::Close(None));
                break End::Shutdown;
            }
        }
        let ack_deadline = (acks && !inflight.is_empty()).then(|| last_ack + settings.ack_timeout);

        tokio::select! {
            biased;
            _ = shutdown.changed(), if closing.is_none() => {
                closing = Some(Instant::now() + settings.close_timeout);
            }
            frame = stream.next() => {
                let frame = match frame {
                    None => break End::Lost("the server closed the connection".into()),
                    Some(Err(e)) => break End::Lost(e.to_string()),
                    Some(Ok(frame)) => frame,
                };
                match frame {
                    Message::Pong(_) => ping_outstanding = None,
                    Message::Close(reason) => {
                        break End::Lost(format!("the server closed the connection ({reason:?})"))
                    }
                    _ => {}
                }
                let Some(Ok(msg)) = decode_frame(inner, &frame) else { continue };
                match session.on_message(msg) {
                    Action::Send(frame) => pending.push(Message::text(frame)),
                    Action::Publish { object } => {
                        let _ = events.send(Event::Publish { object }).await;
                    }
                    Action::Query { params, reply_address } => {
                        let _ = events.send(Event::Query { params, reply_address: reply_address.into(), epoch }).await;
                    }
                    Action::Ack { status, body } => {
                        inner.acks_seen.store(true, Ordering::Release);
                        last_ack = Instant::now();
                        if status >= 300 {
                            tracing::warn!(status, body = %body.unwrap_or_default(), "the server reported an error for a message");
                        }
                        if inflight.pop_front().is_some() {
                            inner.stats.add_acknowledged(status >= 300);
                        }
                    }
                    Action::Connected { config } => {
                        // Same-socket reconnection completed.
                        inner.stats.add_connection();
                        inner.connected.store(true, Ordering::Release);
                        inner.state.send_replace(ConnectionState::Connected);
                        let _ = events.send(Event::Connected { config }).await;
                    }
                    Action::Reconfigured { config } => {
                        let _ = events.send(Event::Closed).await;
                        inner.stats.add_connection();
                        let _ = events.send(Event::Connected { config }).await;
                    }
                    Action::Reconfigure { resend } => {
                        tracing::info!("reconnecting on the same socket at the server's request");
                        inner.state.send_replace(ConnectionState::Connecting);
                        // Statuses now answer the handshake, not notifications:
                        // whatever is unacknowledged goes out again afterwards.
                        if !inflight.is_empty() {
                            inner.outbox.requeue_front(std::mem::take(&mut inflight).into_iter());
                        }
                        let _ = events.send(Event::Closed).await;
                        pending.push(Message::text(resend));
                    }
                    Action::Reconnect => {
                        pending.push(Message::Close(None));
                        break End::Reconnect;
                    }
                    Action::Fail(failure) => break End::Lost(format!("the server refused the reconnection: {failure:?}")),
                    Action::Ignore(why) => tracing::debug!(why, "ignored a server message"),
                }
            }
            permit = writer_tx.reserve(), if !pending.is_empty() => match permit {
                Ok(permit) => permit.send(std::mem::take(&mut pending)),
                Err(_) => break End::Lost("the writer stopped".into()),
            },
            _ = inner.outbox.wait_for_data(), if pending.is_empty() => {}
            _ = sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {}
            _ = ping.tick(), if pings && ping_outstanding.is_none() => {
                ping_outstanding = Some(Instant::now() + settings.ping_interval / 2);
                pending.push(Message::Ping(Default::default()));
            }
            _ = sleep_until(ping_outstanding.unwrap_or_else(Instant::now)), if ping_outstanding.is_some() => {
                break End::Lost(format!(
                    "no pong within {:?} of a ping (half the ping interval)",
                    settings.ping_interval / 2
                ));
            }
            _ = sleep_until(ack_deadline.unwrap_or_else(Instant::now)), if ack_deadline.is_some() => {
                if inner.acks_seen.load(Ordering::Acquire) {
                    break End::Lost(format!(
                        "no acknowledgement for {:?} while {} notifications are in flight",
                        settings.ack_timeout,
                        inflight.len()
                    ));
                }
                tracing::warn!(
                    "the server has not acknowledged any notification: delivery is at-most-once from now on for this source"
                );
                inner.acks_unsupported.store(true, Ordering::Release);
                acks = false;
                inner.stats.add_settled(inflight.len() as u64);
                inflight.clear();
            }
            result = &mut writer => {
                let reason = match result {
                    Ok(Ok(())) => "the writer ended".to_owned(),
                    Ok(Err(e)) => format!("write failed: {e}"),
                    Err(e) => format!("the writer failed: {e}"),
                };
                break End::Lost(reason);
            }
        }
    };

    // Flush what is left (a close frame, if any) and let the writer finish.
    if !pending.is_empty() && !writer.is_finished() {
        let _ = writer_tx.send(std::mem::take(&mut pending)).await;
    }
    drop(writer_tx);
    match end {
        End::Lost(_) => writer.abort(),
        _ => {
            if timeout(settings.close_timeout, &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
    if !inflight.is_empty() {
        tracing::info!(
            count = inflight.len(),
            "re-queueing unacknowledged notifications to send again"
        );
        inner.outbox.requeue_front(inflight.into_iter());
    }
    end
}

/// Writes batches of frames, flushing once per batch.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WsStream, Message>,
    mut rx: mpsc::Receiver<Vec<Message>>,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    while let Some(batch) = rx.recv().await {
        for frame in batch {
            sink.feed(frame).await?;
        }
        while let Ok(batch) = rx.try_recv() {
            for frame in batch {
                sink.feed(frame).await?;
            }
        }
        sink.flush().await?;
    }
    Ok(())
}
