//! Source connections: one per source, each a cheap handle onto a task that
//! owns the source's WebSocket.
//!
//! - [`SourceConnection`] (this file): the handle user code holds and clones.
//! - `task`: the connection task (connect, handshake, serve, reconnect).
//! - `dispatch`: runs the handlers (connect, publish and close in order;
//!   queries concurrently, each guaranteed an answer).
//! - `outbox`: the ordered, bounded queue of what is to be written.
//! - `backoff`: reconnection delays.
//! - `stats`: the per-source counters.

pub(crate) mod backoff;
mod dispatch;
pub(crate) mod outbox;
pub(crate) mod stats;
mod task;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::error::{Error, NotifyError, QueryAnswerError};
use crate::handler::{Handler, SharedHandler};
use crate::health::HealthProbe;
use crate::protocol::message::NotificationEnvelope;
use crate::query::{QueryContext, QueryError};
use crate::settings::Settings;
use crate::transport::Transport;
use outbox::Outbox;
use stats::Counters;
pub use stats::Stats;

/// Where a source connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not running, or waiting before the next connection attempt.
    Disconnected,
    /// Connecting: TCP, TLS, WebSocket, authentication and configuration.
    Connecting,
    /// Connected and configured: messages flow.
    Connected,
    /// Closed by [`SourceConnection::close`]; [`SourceConnection::run`] has
    /// returned or is about to.
    Closed,
}

/// What every handle of one source shares.
pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) transport: Arc<Transport>,
    pub(crate) envelope: NotificationEnvelope,
    pub(crate) outbox: Outbox,
    pub(crate) stats: Arc<Counters>,
    pub(crate) state: watch::Sender<ConnectionState>,
    /// The current connection's number; answers carry the number of the
    /// connection their query came on.
    pub(crate) epoch: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) handler: Mutex<Option<SharedHandler>>,
    pub(crate) health: HealthProbe,
    /// `connectExtension`'s reconnect secret: fixed for the life of the
    /// process, so a reconnecting connector can displace its own stale
    /// session.
    pub(crate) reconnect_secret: String,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) running: AtomicBool,
    /// Set once a server has been seen not to acknowledge notifications.
    pub(crate) acks_unsupported: AtomicBool,
    /// Set once any acknowledgement has been seen.
    pub(crate) acks_seen: AtomicBool,
}

impl Inner {
    /// Whether `epoch` is the connection that is up now.
    pub(crate) fn is_current(&self, epoch: u64) -> bool {
        self.connected.load(Ordering::Acquire) && self.epoch.load(Ordering::Acquire) == epoch
    }
}

/// A handle on one source's connection: cheap to clone, usable from any
/// task. Python's `VantiqSourceConnection`.
///
/// Get one from [`crate::ConnectorSet::connection`] (or from a handler's
/// [`crate::Context`]).
#[derive(Clone)]
pub struct SourceConnection {
    inner: Arc<Inner>,
}

impl fmt::Debug for SourceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConnection")
            .field("source", &self.source())
            .field("state", &self.state())
            .finish()
    }
}

impl SourceConnection {
    pub(crate) fn new(
        name: &str,
        config: Arc<ServerConfig>,
        settings: Arc<Settings>,
        transport: Arc<Transport>,
        health: HealthProbe,
    ) -> Self {
        let stats = Arc::new(Counters::default());
        let reconnect_secret = match config.reconnect_secret() {
            Some(fixed) => format!("{name}_{}", fixed.expose()),
            None => random_secret(),
        };
        SourceConnection {
            inner: Arc::new(Inner {
                name: name.into(),
                envelope: NotificationEnvelope::new(name),
                outbox: Outbox::new(
                    settings.buffer_capacity,
                    settings.overflow,
                    stats.clone(),
                    name.into(),
                ),
                stats,
                config,
                settings,
                transport,
                state: watch::Sender::new(ConnectionState::Disconnected),
                epoch: AtomicU64::new(0),
                connected: AtomicBool::new(false),
                handler: Mutex::new(None),
                health,
                reconnect_secret,
                shutdown: watch::Sender::new(false),
                running: AtomicBool::new(false),
                acks_unsupported: AtomicBool::new(false),
                acks_seen: AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn source_arc(&self) -> Arc<str> {
        self.inner.name.clone()
    }

    /// The name of the source.
    pub fn source(&self) -> &str {
        &self.inner.name
    }

    /// The server configuration this connection uses.
    pub fn server_config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Whether the source is connected and configured now.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        *self.inner.state.borrow()
    }

    /// A receiver that sees every change of [`SourceConnection::state`]
    /// (to wait for a connection, or to watch the link).
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.subscribe()
    }

    /// Waits until the source is connected and configured (returns at once
    /// if it is). Returns `false` if the connection was closed instead.
    pub async fn wait_connected(&self) -> bool {
        let mut rx = self.watch_state();
        let result = rx
            .wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed))
            .await
            .map(|s| *s == ConnectionState::Connected);
        result.unwrap_or(false)
    }

    /// The counters of this source.
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// Sets this source's handlers (Python's `configure_handlers`). Takes
    /// effect when the connection runs; set it before
    /// [`SourceConnection::run`].
    pub fn set_handler(&self, handler: impl Handler) {
        self.set_shared_handler(Arc::new(handler));
    }

    pub(crate) fn set_shared_handler(&self, handler: SharedHandler) {
        *self.inner.handler.lock().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    /// Sends a notification (an event on `/sources/<source>`): `object` must
    /// serialise to a JSON object. While the source is disconnected it waits
    /// in the buffer and goes out, in order, after the reconnection. When the
    /// buffer is full, [`crate::Settings::overflow`] decides: wait (the
    /// default), drop the oldest, or fail.
    ///
    /// Returning `Ok` means the notification is queued, not that the server
    /// has it; [`SourceConnection::stats`] tells how many were acknowledged.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotAnObject`] for a list or a scalar,
    /// [`NotifyError::Serialize`] if serde fails, [`NotifyError::BufferFull`]
    /// under [`crate::OverflowPolicy::Fail`], [`NotifyError::Closed`] after
    /// [`SourceConnection::close`].
    pub async fn send_notification<T: Serialize + ?Sized>(
        &self,
        object: &T,
    ) -> Result<(), NotifyError> {
        let frame = self.encode_notification(object)?;
        self.inner
            .outbox
            .push_notification(frame.into(), true)
            .await
    }

    /// Like [`SourceConnection::send_notification`], but never waits: when
    /// the buffer is full it returns [`NotifyError::BufferFull`] (or drops
    /// the oldest, under [`crate::OverflowPolicy::DropOldest`]).
    ///
    /// # Errors
    ///
    /// As [`SourceConnection::send_notification`].
    pub fn try_send_notification<T: Serialize + ?Sized>(
        &self,
        object: &T,
    ) -> Result<(), NotifyError> {
        let frame = self.encode_notification(object)?;
        let push = self.inner.outbox.push_notification(frame.into(), false);
        // Without waiting the push completes on its first poll.
        futures_util::FutureExt::now_or_never(push).unwrap_or(Err(NotifyError::BufferFull))
    }

    fn encode_notification<T: Serialize + ?Sized>(
        &self,
        object: &T,
    ) -> Result<String, NotifyError> {
        let json = serde_json::to_string(object)?;
        if !json.starts_with('{') {
            let value: Value = serde_json::from_str(&json)?;
            return Err(NotifyError::NotAnObject(crate::query::kind(&value)));
        }
        Ok(self.inner.envelope.wrap(&json))
    }

    /// Waits until every notification accepted so far is settled:
    /// acknowledged by the server, dropped by
    /// [`crate::OverflowPolicy::DropOldest`], or written to a server that
    /// does not acknowledge. Useful before a planned shutdown, and in tests.
    pub async fn flush(&self) {
        let target = self.inner.stats.accepted();
        self.inner.stats.wait_settled(target).await;
    }

    /// Answers a query with an explicit status code, Python's
    /// `send_query_response(ctx, code, message)`: `code` is
    /// [`crate::QUERY_PARTIAL`] or [`crate::QUERY_COMPLETE`] with a body (an
    /// object or a list of objects), or [`crate::QUERY_EMPTY`] without one.
    /// Prefer the methods of [`crate::Query`], which make a second final
    /// answer impossible to write.
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::InvalidStatus`], [`QueryAnswerError::MissingBody`],
    /// [`QueryAnswerError::UnexpectedBody`], [`QueryAnswerError::NotRows`],
    /// [`QueryAnswerError::AlreadyAnswered`] after the final answer,
    /// [`QueryAnswerError::WrongSource`] for a query of another source, and
    /// [`QueryAnswerError::ConnectionLost`].
    pub async fn send_query_response(
        &self,
        ctx: &QueryContext,
        code: u16,
        body: Option<&Value>,
    ) -> Result<(), QueryAnswerError> {
        self.check_source(ctx)?;
        ctx.respond(code, body)
    }

    /// Answers a query with an error, Python's `send_query_error(ctx,
    /// message)`.
    ///
    /// # Errors
    ///
    /// As [`SourceConnection::send_query_response`].
    pub async fn send_query_error(
        &self,
        ctx: &QueryContext,
        error: QueryError,
    ) -> Result<(), QueryAnswerError> {
        self.check_source(ctx)?;
        ctx.respond_error(&error)
    }

    fn check_source(&self, ctx: &QueryContext) -> Result<(), QueryAnswerError> {
        if ctx.source() != self.source() {
            return Err(QueryAnswerError::WrongSource {
                query_source: ctx.source().to_owned(),
                connection: self.source().to_owned(),
            });
        }
        Ok(())
    }

    /// Declares the whole connector set healthy: the TCP health probe
    /// listens (see [`crate::ConnectorSet::declare_healthy`]).
    ///
    /// # Errors
    ///
    /// The probe port could not be bound.
    pub fn declare_healthy(&self) -> std::io::Result<()> {
        self.inner.health.declare_healthy()
    }

    /// Declares the whole connector set unhealthy: the probe stops listening.
    pub fn declare_unhealthy(&self) {
        self.inner.health.declare_unhealthy()
    }

    /// The health declared for the set: `None` before any declaration.
    pub fn is_healthy(&self) -> Option<bool> {
        self.inner.health.is_healthy()
    }

    /// Runs the connection until [`SourceConnection::close`]: connects,
    /// serves, and reconnects after any loss (with backoff), calling the
    /// handlers as it goes.
    ///
    /// # Errors
    ///
    /// [`Error::AuthenticationFailed`] when the server rejects the
    /// credentials (never retried); [`Error::ConnectFailed`] when a
    /// connection attempt fails and `failOnConnectionError=true` (or the
    /// attempts set by [`crate::Settings::max_reconnect_attempts`] are used
    /// up); [`Error::AlreadyRunning`] if it is running already.
    pub async fn run(&self) -> Result<(), Error> {
        if self.inner.running.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyRunning(self.source().to_owned()));
        }
        let result = task::run(self.clone()).await;
        self.inner.running.store(false, Ordering::Release);
        result
    }

    /// Closes the connection: the close frame is sent (after buffered
    /// notifications have been delivered, for up to
    /// [`crate::Settings::close_timeout`]), the close handler runs, and
    /// [`SourceConnection::run`] returns. Waits for all of that.
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        let mut rx = self.watch_state();
        if self.inner.running.load(Ordering::Acquire) {
            let _ = rx.wait_for(|s| *s == ConnectionState::Closed).await;
        } else {
            self.inner.state.send_replace(ConnectionState::Closed);
        }
        self.inner.outbox.close();
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

/// A random 128-bit reconnect secret, as hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a seeded generator; the secret only
        // has to be unlikely to collide with another connector's.
        bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
