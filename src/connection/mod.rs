//! Source connections: one per source, each a cheap handle onto a task that
//! owns the source's WebSocket.
//!
//! - [`SourceConnection`] (this file): the handle user code holds and clones;
//!   its state is private and shared by every clone.
//! - `supervisor`: the connection task's outer loop: connect and hand-shake,
//!   serve, reconnect with backoff; it owns the one [`ConnectionState`].
//! - `serve`: one connected socket: frames in -> protocol -> frames out.
//! - `events`: the port through which the handler runtime above receives
//!   connects, publishes, queries and closes.
//! - `reply`: the narrow way that runtime queues query answers.
//! - `outbox`: the ordered, bounded queue of what is to be written.
//! - `backoff`, `stats`: reconnection delays and per-source counters.
//!
//! This layer knows nothing of handlers: it depends on `protocol` and
//! `transport` only.

mod backoff;
pub(crate) mod events;
mod frames;
pub(crate) mod latency;
mod outbox;
pub(crate) mod reply;
mod serve;
mod stats;
mod supervisor;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::{Secret, ServerConfig};
use crate::error::{Error, NotifyError};
use crate::health::HealthProbe;
use crate::protocol::raw::RawObject;
use crate::settings::Settings;
use crate::transport::{OwnText, Transport};
use outbox::Outbox;
use stats::Counters;
pub use stats::Stats;

/// Where a source connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not running yet, or waiting before the next connection attempt.
    Disconnected,
    /// Connecting: TCP, TLS, WebSocket, authentication and configuration
    /// (also during a same-socket `reconnectRequired`).
    Connecting,
    /// Connected and configured: messages flow.
    Connected,
    /// Ended for good: closed, or the run ended with an error. Nothing is
    /// sent any more.
    Closed,
}

/// The one connection state, published by the connection task: the state,
/// and the number of the connection that is (or was last) up. Whether a
/// query's answer may still go out is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    state: ConnectionState,
    /// Connections made so far (each handshake, of either reconnect style,
    /// starts a new one).
    epoch: u64,
}

/// What every handle of one source shares.
struct Shared {
    name: Arc<str>,
    config: Arc<ServerConfig>,
    settings: Arc<Settings>,
    transport: Arc<Transport>,
    /// The source's notification frames.
    frames: frames::Frames,
    outbox: Outbox,
    stats: Arc<Counters>,
    status: watch::Sender<Status>,
    health: HealthProbe,
    /// `connectExtension`'s reconnect secret: fixed for the life of the
    /// process, so a reconnecting connector can displace its own stale
    /// session.
    reconnect_secret: Secret,
    shutdown: watch::Sender<bool>,
    running: AtomicBool,
    /// Whether the run ended with an error.
    failed: AtomicBool,
}

impl Shared {
    /// Whether connection `epoch` is the one that is up now.
    fn is_current(&self, epoch: u64) -> bool {
        let status = *self.status.borrow();
        status.state == ConnectionState::Connected && status.epoch == epoch
    }

    fn set_state(&self, state: ConnectionState) {
        self.status.send_if_modified(|s| {
            let changed = s.state != state;
            s.state = state;
            changed
        });
    }

    /// A new connection is up: returns its number.
    fn connected(&self) -> u64 {
        let mut epoch = 0;
        self.status.send_modify(|s| {
            s.epoch += 1;
            s.state = ConnectionState::Connected;
            epoch = s.epoch;
        });
        epoch
    }
}

/// A handle on one source's connection: cheap to clone, usable from any
/// task, and valid for the life of the source: a clone kept by a background
/// producer (a tail, a poller) goes on working across reconnections, and
/// [`SourceConnection::closed`] tells it when the source has ended for good.
/// Python's `VantiqSourceConnection`.
///
/// Get one from [`crate::ConnectorSet::connection`] or from a handler's
/// [`crate::Context`].
#[derive(Clone)]
pub struct SourceConnection {
    shared: Arc<Shared>,
}

impl fmt::Debug for SourceConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConnection")
            .field("source", &self.source())
            .field("state", &self.state())
            .finish()
    }
}

/// Changes of a [`SourceConnection`]'s state, from
/// [`SourceConnection::watch_state`].
#[derive(Debug, Clone)]
pub struct StateWatch {
    rx: watch::Receiver<Status>,
}

impl StateWatch {
    /// The state now.
    pub fn current(&self) -> ConnectionState {
        self.rx.borrow().state
    }

    /// Waits for the next change and returns the new state; `None` once the
    /// connection is gone.
    pub async fn changed(&mut self) -> Option<ConnectionState> {
        loop {
            let before = self.rx.borrow_and_update().state;
            self.rx.changed().await.ok()?;
            let now = self.rx.borrow_and_update().state;
            // A new connection number with the same state is a change too
            // (a same-socket reconnection passes through Connecting).
            if now != before || now == ConnectionState::Connected {
                return Some(now);
            }
        }
    }

    /// Waits until `predicate` holds for the state (at once if it does);
    /// `None` if the connection is gone first.
    pub async fn wait_for(
        &mut self,
        mut predicate: impl FnMut(ConnectionState) -> bool,
    ) -> Option<ConnectionState> {
        self.rx
            .wait_for(|s| predicate(s.state))
            .await
            .ok()
            .map(|s| s.state)
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
        let reconnect_secret = Secret::new(match config.reconnect_secret() {
            Some(fixed) => format!("{name}_{}", fixed.expose()),
            None => random_secret(),
        });
        SourceConnection {
            shared: Arc::new(Shared {
                name: name.into(),
                frames: frames::Frames::new(name),
                outbox: Outbox::new(&settings, stats.clone(), name.into()),
                stats,
                config,
                settings,
                transport,
                status: watch::Sender::new(Status {
                    state: ConnectionState::Disconnected,
                    epoch: 0,
                }),
                health,
                reconnect_secret,
                shutdown: watch::Sender::new(false),
                running: AtomicBool::new(false),
                failed: AtomicBool::new(false),
            }),
        }
    }

    /// The name of the source.
    pub fn source(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn source_arc(&self) -> Arc<str> {
        self.shared.name.clone()
    }

    /// The server configuration this connection uses.
    pub fn server_config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// The SDK settings this connection uses.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// Whether the source is connected and configured now.
    pub fn is_connected(&self) -> bool {
        self.state() == ConnectionState::Connected
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        self.shared.status.borrow().state
    }

    /// Every change of [`SourceConnection::state`] from now on (to wait for
    /// a connection, or to watch the link).
    pub fn watch_state(&self) -> StateWatch {
        StateWatch {
            rx: self.shared.status.subscribe(),
        }
    }

    /// Waits until the source is connected and configured (returns at once
    /// if it is). Returns `false` if the connection ended for good instead.
    pub async fn wait_connected(&self) -> bool {
        let state = self
            .watch_state()
            .wait_for(|s| matches!(s, ConnectionState::Connected | ConnectionState::Closed))
            .await;
        state == Some(ConnectionState::Connected)
    }

    /// Completes when the connection has ended for good (closed, or its run
    /// ended with an error): the signal for a background producer to stop.
    ///
    /// ```no_run
    /// # async fn demo(conn: vantiq_connector_sdk::SourceConnection) {
    /// let producer = conn.clone();
    /// tokio::spawn(async move {
    ///     let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    ///     loop {
    ///         tokio::select! {
    ///             _ = tick.tick() => {
    ///                 // Waits in the buffer while disconnected.
    ///                 if producer.send_notification(&serde_json::json!({"tick": 1})).await.is_err() {
    ///                     break;
    ///                 }
    ///             }
    ///             () = producer.closed() => break,
    ///         }
    ///     }
    /// });
    /// # }
    /// ```
    pub async fn closed(&self) {
        self.watch_state()
            .wait_for(|s| s == ConnectionState::Closed)
            .await;
    }

    /// The counters of this source.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Sends a notification (an event on `/sources/<source>`): `object` must
    /// serialise to a JSON object. While the source is disconnected it waits
    /// in the buffer and goes out, in order, after the reconnection. When the
    /// buffer is full, [`crate::Settings::overflow`] decides: wait (the
    /// default), drop the oldest, or fail.
    ///
    /// Returning `Ok` means the notification is queued, not that the server
    /// has it; [`SourceConnection::stats`] tells how many were acknowledged,
    /// and [`SourceConnection::flush`] waits for them.
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotAnObject`] for a list or a scalar,
    /// [`NotifyError::Serialize`] if serde fails, [`NotifyError::BufferFull`]
    /// under [`crate::OverflowPolicy::Fail`], [`NotifyError::Closed`] once the
    /// connection has ended for good (at once, and also for a producer that
    /// was waiting for room then).
    pub async fn send_notification<T: Serialize + ?Sized>(
        &self,
        object: &T,
    ) -> Result<(), NotifyError> {
        let frame = self.encode_notification(object)?;
        self.shared.outbox.push_notification(frame, true).await
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
        let push = self.shared.outbox.push_notification(frame, false);
        // Without waiting the push completes on its first poll.
        futures_util::FutureExt::now_or_never(push).unwrap_or(Err(NotifyError::BufferFull))
    }

    /// Sends a notification whose object is already serialised: `object`
    /// goes into the frame as it is (no tree, no serialisation; it was
    /// checked to be a JSON object when it was made). For connectors that
    /// forward JSON: a publish taken with
    /// [`crate::Handlers::on_publish_raw`], or text from elsewhere through
    /// [`RawObject::from_string`]. Buffering, order and the overflow policy
    /// are those of [`SourceConnection::send_notification`].
    ///
    /// ```no_run
    /// # async fn demo(conn: vantiq_connector_sdk::SourceConnection) -> Result<(), Box<dyn std::error::Error>> {
    /// use vantiq_connector_sdk::RawObject;
    ///
    /// let line = r#"{"sensor":"t1","celsius":21.50}"#.to_owned(); // from a file, say
    /// conn.send_raw_notification(&RawObject::from_string(line)?).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`NotifyError::BufferFull`] under [`crate::OverflowPolicy::Fail`],
    /// [`NotifyError::Closed`] once the connection has ended for good.
    pub async fn send_raw_notification(&self, object: &RawObject) -> Result<(), NotifyError> {
        let frame = self.shared.frames.wrap(object.as_str());
        self.shared.outbox.push_notification(frame, true).await
    }

    /// Like [`SourceConnection::send_raw_notification`], but never waits
    /// (as [`SourceConnection::try_send_notification`]).
    ///
    /// # Errors
    ///
    /// As [`SourceConnection::try_send_notification`].
    pub fn try_send_raw_notification(&self, object: &RawObject) -> Result<(), NotifyError> {
        let frame = self.shared.frames.wrap(object.as_str());
        let push = self.shared.outbox.push_notification(frame, false);
        futures_util::FutureExt::now_or_never(push).unwrap_or(Err(NotifyError::BufferFull))
    }

    fn encode_notification<T: Serialize + ?Sized>(
        &self,
        object: &T,
    ) -> Result<OwnText, NotifyError> {
        self.shared.frames.encode(object)
    }

    /// Waits until every notification accepted so far is settled:
    /// acknowledged by the server, dropped by
    /// [`crate::OverflowPolicy::DropOldest`], written to a server that does
    /// not acknowledge, or counted as unsent when the connection was closed.
    /// Useful before a planned shutdown, and in tests.
    pub async fn flush(&self) {
        let target = self.shared.stats.accepted();
        self.shared.stats.wait_settled(target).await;
    }

    /// Declares the whole connector set healthy: the TCP health probe
    /// listens (see [`crate::ConnectorSet::declare_healthy`]).
    ///
    /// # Errors
    ///
    /// The probe port could not be bound.
    pub fn declare_healthy(&self) -> std::io::Result<()> {
        self.shared.health.declare_healthy()
    }

    /// Declares the whole connector set unhealthy: the probe stops listening.
    pub fn declare_unhealthy(&self) {
        self.shared.health.declare_unhealthy()
    }

    /// The health declared for the set: `None` before any declaration.
    pub fn is_healthy(&self) -> Option<bool> {
        self.shared.health.is_healthy()
    }

    /// Runs the connection until it is closed or fails for good, handing
    /// its events to `events`. The connector set calls this.
    pub(crate) async fn run(&self, events: events::EventSender) -> Result<(), Error> {
        if self.shared.outbox.is_closed() {
            // Closed by `close()` before it ran: nothing to do. Ended by an
            // error: it does not run again.
            return match self.shared.failed.load(Ordering::Acquire) {
                false => Ok(()),
                true => Err(Error::Closed(self.source().to_owned())),
            };
        }
        if self.shared.running.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyRunning(self.source().to_owned()));
        }
        let result = supervisor::run(&self.shared, events).await;
        self.shared.failed.store(result.is_err(), Ordering::Release);
        result
    }

    /// Wakes the connection task to write the answers queued with
    /// [`SourceConnection::queue_query_response`].
    pub fn wake_writer(&self) {
        self.shared.outbox.wake_writer();
    }

    /// Closes the connection for good: buffered and unacknowledged
    /// notifications are delivered and running query handlers may answer,
    /// for up to [`crate::Settings::close_timeout`]; then the queries still
    /// open get an error answer, the close frame is sent, the close handler
    /// runs, and the set's run returns for this source. Waits for all of
    /// that. Whatever could not be delivered is counted in
    /// [`Stats::unsent_at_close`].
    pub async fn close(&self) {
        self.shared.shutdown.send_replace(true);
        if self.shared.running.load(Ordering::Acquire) {
            self.closed().await;
        } else {
            supervisor::end_for_good(&self.shared);
        }
    }

    /// The query latency histogram of this source (for the metrics
    /// endpoint).
    #[cfg(feature = "metrics")]
    pub(crate) fn query_latency(&self) -> &latency::QueryLatency {
        &self.shared.stats.query_latency
    }

    /// A publish whose text, checked by the connection task, did not read
    /// as a tree (serde_json reads what it checked, so this is not expected
    /// to happen): counted and logged as a malformed message, as the
    /// connection task does with the frames it cannot decode.
    pub(crate) fn refuse_publish(&self, error: &serde_json::Error) {
        self.shared.stats.add_malformed();
        tracing::warn!(error = %error, "skipping a malformed server message");
    }

    /// Asks the connection to close, without waiting.
    pub(crate) fn request_close(&self) {
        self.shared.shutdown.send_replace(true);
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
