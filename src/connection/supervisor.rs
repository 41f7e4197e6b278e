//! The connection task's outer loop: connect and hand-shake (bounded by the
//! connect timeout), serve until the connection ends, then reconnect after a
//! backoff delay (none after `reconnectRequired`).
//!
//! This is the one place that moves the source's [`ConnectionState`]:
//! Connecting before each attempt, Connected (with a new connection number)
//! after each handshake, Disconnected after each loss, Closed at the end.
//! The reconnect policy (backoff, `failOnConnectionError`, the attempt limit)
//! is [`run`]'s loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep, timeout};

use super::backoff::Backoff;
use super::events::{Event, EventSender};
use super::serve::{serve, End};
use super::{ConnectionState, Shared};
use crate::config::Credentials;
use crate::error::{ConnectError, ConnectErrorKind, Error};
use crate::protocol::message::Publishes;
use crate::protocol::{self, Action, Auth, Failure, ServerMessage, Session};
use crate::transport::{Frame, Socket};

/// Why a connection attempt failed.
enum AttemptError {
    /// The credentials were rejected: do not retry.
    Auth { status: u16, message: String },
    /// Anything else: retry after a delay.
    Failed(ConnectError),
}

/// Runs the source connection until it is closed or fails for good; then
/// waits for the handler runtime to finish with every event and marks the
/// connection Closed.
pub(super) async fn run(shared: &Arc<Shared>, events: EventSender) -> Result<(), Error> {
    let span = tracing::error_span!("source", source = %shared.name);
    let result = tracing::Instrument::instrument(supervise(shared, &events), span).await;
    // The runtime ends after the close handler of the last connection.
    events.finish().await;
    end_for_good(shared);
    result
}

/// Marks the connection ended for good: nothing is accepted any more, and
/// producers waiting for room wake with an error.
pub(super) fn end_for_good(shared: &Shared) {
    if let Some(unsent) = shared.outbox.close() {
        let unsent = unsent as u64;
        if unsent > 0 {
            shared.stats.add_unsent_at_close(unsent);
            shared.stats.add_settled(unsent);
            tracing::warn!(source = %shared.name, unsent, "the connection ended for good with notifications not sent");
        }
    }
    shared.set_state(ConnectionState::Closed);
}

/// The reconnection loop.
async fn supervise(shared: &Arc<Shared>, events: &EventSender) -> Result<(), Error> {
    let settings = shared.settings.clone();
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = Backoff::new(settings.initial_backoff, settings.max_backoff);
    let mut delivery = protocol::Delivery::new(settings.window, settings.ack_timeout);
    loop {
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        shared.set_state(ConnectionState::Connecting);
        // At most `max_concurrent_handshakes` of the set's sources hand-shake
        // at once: a server that restarts is not stormed, and the large,
        // short-lived handshake state of thousands of sources is never all
        // allocated together (which would stay in the process's memory).
        let permit = tokio::select! {
            permit = shared.transport.handshake_permit() => permit,
            _ = shutdown.changed() => return Ok(()),
        };
        // The handshake's future is large (the TLS and WebSocket handshakes):
        // boxed, it takes no room in an idle connection's task.
        let attempt = tokio::select! {
            attempt = timeout(settings.connect_timeout, Box::pin(connect(shared))) => match attempt {
                Ok(result) => result,
                Err(_) => Err(AttemptError::Failed(ConnectError::new(ConnectErrorKind::Timeout, format!(
                    "no configuration within the connect timeout of {:?}", settings.connect_timeout
                )))),
            },
            _ = shutdown.changed() => return Ok(()),
        };
        drop(permit);
        let failure = match attempt {
            Ok((socket, session, config)) => {
                backoff.reset();
                let end = serve(
                    shared,
                    socket,
                    session,
                    config,
                    &mut delivery,
                    events,
                    &mut shutdown,
                )
                .await;
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
                    source_name: shared.name.to_string(),
                    status,
                    message,
                });
            }
            Err(AttemptError::Failed(ConnectError {
                kind,
                message: reason,
            })) => {
                shared.set_state(ConnectionState::Disconnected);
                if shared.config.fail_on_connection_error() {
                    tracing::error!(%reason, "connection failed (failOnConnectionError=true: not retrying)");
                    return Err(Error::ConnectFailed {
                        source_name: shared.name.to_string(),
                        kind,
                        reason,
                    });
                }
                if let Some(max) = settings.max_reconnect_attempts {
                    if backoff.failures() + 1 >= max {
                        return Err(Error::ConnectFailed {
                            source_name: shared.name.to_string(),
                            kind,
                            reason: format!("{reason} (gave up after {max} attempts)"),
                        });
                    }
                }
                reason
            }
        };
        let delay = backoff.next_delay();
        if !wait_before_retry(&failure, delay, backoff.failures(), &mut shutdown).await {
            return Ok(());
        }
    }
}

/// Sleeps `delay`; `false` if the connection is closed first.
async fn wait_before_retry(
    failure: &str,
    delay: Duration,
    attempt: u32,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tracing::info!(%failure, retry_in_ms = delay.as_millis() as u64, attempt, "will reconnect");
    tokio::select! {
        _ = sleep(delay) => true,
        _ = shutdown.changed() => false,
    }
}

/// Opens the socket and runs the handshake to the configuration.
async fn connect(shared: &Shared) -> Result<(Socket, Session, serde_json::Value), AttemptError> {
    let mut socket = shared
        .transport
        .connect()
        .await
        .map_err(AttemptError::Failed)?;
    let auth = match shared.config.credentials() {
        Credentials::Token(token) => Auth::Token(token.expose()),
        Credentials::UserPassword { username, password } => Auth::Password {
            username,
            password: password.expose(),
        },
    };
    let (mut session, first) = Session::start(
        &shared.name,
        shared.reconnect_secret.expose(),
        auth,
        shared.settings.reconnect_style,
    );
    send(&mut socket, first).await?;
    loop {
        let frame = match socket.recv().await {
            None | Some(Ok(Frame::Close(_))) => {
                return Err(network(
                    "the server closed the connection during the handshake".into(),
                ))
            }
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                return Err(network(format!(
                    "connection failed during the handshake: {e}"
                )))
            }
        };
        let Some(Ok(msg)) = decode_frame(shared, &frame, Publishes::Tree) else {
            continue;
        };
        match session.on_message(msg) {
            Action::Send(frame) => send(&mut socket, frame).await?,
            Action::Connected { config } => return Ok((socket, session, config)),
            Action::Fail(Failure::AuthRejected { status, body }) => {
                socket.close().await;
                return Err(AttemptError::Auth {
                    status,
                    message: error_text(body.as_ref()),
                });
            }
            Action::Fail(Failure::ConnectRejected { status, body }) => {
                socket.close().await;
                return Err(AttemptError::Failed(ConnectError::new(
                    ConnectErrorKind::Rejected,
                    format!(
                        "the server refused the source (status {status}): {}",
                        error_text(body.as_ref())
                    ),
                )));
            }
            Action::Reconnect | Action::Reconfigure { .. } => {
                return Err(network("reconnectRequired during the handshake".into()))
            }
            Action::CloseForGood => {
                // testRequestsClientClose before the configuration: closed for good.
                shared.shutdown.send_replace(true);
                socket.close().await;
                return Err(network("the server asked this connector to close".into()));
            }
            Action::Ignore(why) => tracing::debug!(why, "ignored a message during the handshake"),
            other => tracing::debug!(?other, "unexpected action during the handshake"),
        }
    }
}

async fn send(socket: &mut Socket, frame: String) -> Result<(), AttemptError> {
    socket
        .send(Frame::Text(frame.into()))
        .await
        .map_err(|e| network(format!("connection failed during the handshake: {e}")))
}

/// A failure of the socket or the handshake after the connection was made.
fn network(message: String) -> AttemptError {
    AttemptError::Failed(ConnectError::new(ConnectErrorKind::Network, message))
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
                // As the official SDKs write it (`authFailure:invalid authToken`).
                (Some(code), Some(message)) => format!("{code}:{message}"),
                (None, Some(message)) => message.to_owned(),
                _ => item.to_string(),
            }
        })
        .collect();
    text.join("; ")
}

/// Decodes a data frame: `None` for control frames, `Some(Err)` for a frame
/// that was logged, counted and skipped.
pub(super) fn decode_frame(
    shared: &Shared,
    frame: &Frame,
    publishes: Publishes,
) -> Option<Result<ServerMessage, ()>> {
    let bytes = frame.data()?;
    if bytes.len() > shared.settings.max_message_size {
        shared.stats.add_malformed();
        tracing::warn!(
            size = bytes.len(),
            limit = shared.settings.max_message_size,
            "skipping a server message over the size limit"
        );
        return Some(Err(()));
    }
    let decoded = match frame {
        // Text frames are UTF-8 already (the transport checked them).
        Frame::Text(text) => protocol::message::decode_text(text.as_str(), publishes),
        _ => std::str::from_utf8(bytes)
            .map_err(|_| protocol::DecodeError::NotUtf8)
            .and_then(|text| protocol::message::decode_text(text, publishes)),
    };
    Some(decoded.map_err(|e| {
        shared.stats.add_malformed();
        tracing::warn!(error = %e, "skipping a malformed server message");
    }))
}

/// A connection is up: publishes the state with a new connection number
/// (returned) and hands the connect event to the runtime.
pub(super) fn announce_connected(
    shared: &Shared,
    events: &EventSender,
    config: serde_json::Value,
) -> u64 {
    shared.stats.add_connection();
    let epoch = shared.connected();
    tracing::info!(connection = epoch, "connected");
    events.send(Event::Connected {
        config: Box::new(config),
    });
    epoch
}
