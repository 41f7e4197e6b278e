//! `vantiq-sim`: a local Vantiq server emulator, for developing, testing and benchmarking
//! Vantiq connectors (extension sources) without a Vantiq account.
//!
//! It speaks the server side of the connector protocol on `/api/v1/wsock/websocket`
//! (authentication, `connectExtension`/`configureExtension`, publish, query,
//! notifications, `reconnectRequired`), checks everything the connector sends and records
//! each protocol violation, and lets a test provoke the failures a real deployment
//! brings: configuration changes, abrupt disconnections, half-open links, server crashes
//! and restarts.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//! use vantiq_sim::Sim;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Sim::builder()
//!     .token("secret-token")
//!     .source("orders", json!({"poll_ms": 100}))
//!     .start()
//!     .await?;
//! // Point the connector's server.config at sim.http_url(), then:
//! sim.wait_connected("orders", Duration::from_secs(5)).await?;
//! sim.publish("orders", json!({"id": 1})).await?;
//! let echoed = sim.wait_notifications("orders", 1, Duration::from_secs(5)).await?;
//! let answer = sim.query("orders", json!({"op": "rows", "count": 3}), Duration::from_secs(5)).await?;
//! assert!(sim.violations().is_empty());
//! # let _ = (echoed, answer);
//! # Ok(()) }
//! ```
//!
//! The same listener serves a JSON control API under `/sim` (its endpoints are listed in
//! the README), which the `vantiq-sim` binary's subcommands use through [`client`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The modules, whose dependencies run one way: `server` (listener, connections, HTTP and
// control routes) -> `session` (one connector socket: reader and writer) -> `state`
// (sources, session links, notifications, queries, violations) -> `load`, `answers`
// (checking query answers) -> `wire` (the frames the emulator sends), `types`; `frames`
// offers `wire` and `answers` as text to load generators outside the sessions.
mod answers;
mod builder;
pub mod client;
pub mod frames;
mod io;
mod load;
mod server;
mod session;
mod state;
mod types;
mod wire;

pub use builder::{SimBuilder, DEFAULT_CONNECT_GRACE};
pub use load::{LatencySummary, QueryLoad, QueryLoadReport, QueryLoadSummary};
pub use types::{
    kinds, FrameMode, FrameType, HistoryEvent, Notification, QueryOutcome, RawFrame, SimError,
    SourceStatus, Violation,
};

use serde_json::Value;
use server::Server;
use state::Core;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// A running emulator. Cheap to clone (all clones drive the same emulator). It stops when
/// [`Sim::stop`] is called or when the last clone is dropped.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<SimInner>,
}

struct SimInner {
    server: Arc<Server>,
}

impl Drop for SimInner {
    fn drop(&mut self) {
        self.server.stop_now();
    }
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("addr", &self.addr()).finish()
    }
}

impl Sim {
    /// A builder, to configure and start an emulator.
    pub fn builder() -> SimBuilder {
        SimBuilder::new()
    }

    fn core(&self) -> &Core {
        &self.inner.server.core
    }

    /// The listening address (kept while stopped, so a restart reuses it).
    pub fn addr(&self) -> SocketAddr {
        self.inner.server.addr()
    }

    /// The address clients should dial: the listening address, with a wildcard IP
    /// replaced by loopback.
    fn dial_addr(&self) -> SocketAddr {
        let mut addr = self.addr();
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        addr
    }

    /// The WebSocket URL connectors dial: `ws://HOST:PORT/api/v1/wsock/websocket`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/wsock/websocket", self.dial_addr())
    }

    /// The server URL, as a connector's server.config `targetServer` would say it:
    /// `http://HOST:PORT`. Also the base of the control API.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.dial_addr())
    }

    /// Adds a source, or replaces an existing source's configuration without telling its
    /// connector (use [`Sim::set_config`] to send `reconnectRequired`).
    pub fn add_source(&self, name: impl Into<String>, config: Value) {
        self.core().add_source(name.into(), config);
    }

    /// Removes a source: its connection (if any) is cut, its notifications are forgotten,
    /// and `connectExtension` for it fails with an error status until it is added again.
    pub fn remove_source(&self, name: &str) {
        self.core().remove_source(name);
    }

    /// Switches notification acknowledgements on or off while running.
    pub fn set_acks(&self, on: bool) {
        self.core().set_acks(on);
    }

    /// Publishes an object to a connected source.
    pub async fn publish(&self, source: &str, object: Value) -> Result<(), SimError> {
        self.core().publish_many(source, [object]).await.map(|_| ())
    }

    /// Publishes many objects to a connected source, in order; for benchmarks. Waits when
    /// the connector reads more slowly than the objects come. Returns how many were sent.
    pub async fn publish_many(
        &self,
        source: &str,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<usize, SimError> {
        self.core().publish_many(source, objects).await
    }

    /// Sends a query with these parameters and waits (up to `timeout`) for the final
    /// answer; returns every answer. An error answer is an `Ok` outcome with its status
    /// and `error`; a connection lost before the final answer is
    /// [`SimError::ConnectionLost`].
    pub async fn query(
        &self,
        source: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<QueryOutcome, SimError> {
        self.core().query(source, &params, timeout).await
    }

    /// Sends `load.queries` copies of the query `params` to the source's connector,
    /// keeping `load.in_flight` of them unanswered at a time, and reports the rate and each
    /// query's latency. Made for benchmarks: the queries are issued and their answers
    /// taken inside the source's session, so the emulator's own cost per query stays small
    /// (see [`QueryLoad`]). The frames and the checks on answers are those of
    /// [`Sim::query`]; answers are counted, not kept.
    ///
    /// Fails if the source is not connected, if it already runs a load
    /// ([`SimError::Busy`]), if its connection ends first, or after `load.timeout` (the
    /// run is then abandoned: no more queries are sent and late answers are ignored).
    ///
    /// ```no_run
    /// # async fn demo(sim: vantiq_sim::Sim) -> Result<(), vantiq_sim::SimError> {
    /// use serde_json::json;
    /// use vantiq_sim::QueryLoad;
    ///
    /// let report = sim
    ///     .query_load("orders", json!({"op": "rows", "count": 1}), QueryLoad::new(10_000, 64))
    ///     .await?;
    /// println!("{:.0} queries/s, p99 {:?}", report.rate(), report.latency_percentile(99.0));
    /// # Ok(()) }
    /// ```
    pub async fn query_load(
        &self,
        source: &str,
        params: Value,
        load: QueryLoad,
    ) -> Result<QueryLoadReport, SimError> {
        self.core().query_load(source, &params, &load).await
    }

    /// Stores a new configuration; a connected source gets `reconnectRequired` and, when
    /// its connector connects again, the new configuration.
    pub async fn set_config(&self, source: &str, config: Value) -> Result<(), SimError> {
        self.core().set_config(source, config).map(|_| ())
    }

    /// Sends `reconnectRequired` to the source's connector.
    pub async fn reconnect(&self, source: &str) -> Result<(), SimError> {
        self.core().reconnect(source)
    }

    /// Cuts the source's connection abruptly: the TCP socket is closed without a
    /// WebSocket close frame.
    pub async fn drop_connection(&self, source: &str) -> Result<(), SimError> {
        self.core().drop_connection(source)
    }

    /// Makes the source's link half-open: the emulator stops reading (so pings go
    /// unanswered) and stops sending, but keeps the socket open and the source assigned to
    /// it, so a newcomer is refused unless it presents the same reconnect secret. The
    /// session is forgotten when the connector closes the socket or is displaced.
    pub async fn go_silent(&self, source: &str) -> Result<(), SimError> {
        self.core().go_silent(source)
    }

    /// Stops reading the source's connection, as a server that is stuck or overloaded
    /// would: the TCP connection stays open, but nothing reads its receiving side, so what
    /// the connector sends fills the kernel's buffers and then the connector's own writes
    /// block (pings go unanswered too). Everything sent meanwhile is read, in order, after
    /// [`Sim::resume_reading`]. The emulator keeps sending (publishes, queries,
    /// acknowledgements of what it read before). Returns once reading has stopped.
    pub async fn stop_reading(&self, source: &str) -> Result<(), SimError> {
        self.core().stop_reading(source).await
    }

    /// Reads the source's connection again after [`Sim::stop_reading`].
    pub async fn resume_reading(&self, source: &str) -> Result<(), SimError> {
        self.core().resume_reading(source)
    }

    /// Sends a frame, as is, on the source's connection (in the frame type given, whatever
    /// the [`FrameMode`]).
    pub async fn send_raw(&self, source: &str, frame: RawFrame) -> Result<(), SimError> {
        let msg = match frame {
            RawFrame::Text(text) => Message::Text(Utf8Bytes::from(text)),
            RawFrame::Binary(bytes) => Message::Binary(Bytes::from(bytes)),
        };
        self.core().send_raw(source, msg)
    }

    /// Stops as a crashed server would: the listener is closed and every connection is
    /// cut without a close frame. Sources, configurations and notifications are kept, and
    /// so is the port, for [`Sim::restart`]. Returns once the sockets are closed.
    pub async fn stop(&self) {
        self.inner.server.stop().await;
    }

    /// Listens again on the same address after [`Sim::stop`] (retrying briefly while the
    /// port is still busy). Does nothing if running.
    pub async fn restart(&self) -> std::io::Result<()> {
        if self.inner.server.running() {
            return Ok(());
        }
        self.inner.server.start(self.addr(), true).await
    }

    /// The source's notifications with `seq >= since`.
    pub fn notifications(&self, source: &str, since: u64) -> Vec<Notification> {
        self.core().notifications(source, since)
    }

    /// Waits until the source has received at least `count` notifications in total, then
    /// returns them all (from seq 0).
    pub async fn wait_notifications(
        &self,
        source: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Notification>, SimError> {
        self.core()
            .wait_notification_count(source, count as u64, timeout)
            .await?;
        Ok(self.notifications(source, 0))
    }

    /// The source's status, or None for an unknown source.
    pub fn source_status(&self, source: &str) -> Option<SourceStatus> {
        self.core().status(source)
    }

    /// Every source's status, sorted by name.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.core().sources()
    }

    /// Waits until the source is connected (its `configureExtension` was sent on a live
    /// session).
    pub async fn wait_connected(
        &self,
        source: &str,
        timeout: Duration,
    ) -> Result<SourceStatus, SimError> {
        self.core()
            .wait_status(source, timeout, "did not connect", |s| s.connected)
            .await
    }

    /// Waits until the source is connected and has completed at least `n` handshakes.
    pub async fn wait_connections(
        &self,
        source: &str,
        n: u64,
        timeout: Duration,
    ) -> Result<SourceStatus, SimError> {
        let what = format!("did not reach {n} connections");
        self.core()
            .wait_status(source, timeout, &what, |s| {
                s.connected && s.connections >= n
            })
            .await
    }

    /// Waits until the source is not connected.
    pub async fn wait_disconnected(
        &self,
        source: &str,
        timeout: Duration,
    ) -> Result<SourceStatus, SimError> {
        self.core()
            .wait_status(source, timeout, "did not disconnect", |s| !s.connected)
            .await
    }

    /// Every protocol violation recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.core().violations()
    }

    /// Forgets the violations recorded so far.
    pub fn clear_violations(&self) {
        self.core().clear_violations();
    }

    /// Waits until at least `n` violations are recorded; returns them all.
    pub async fn wait_violations(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Violation>, SimError> {
        self.core().wait_violations(n, timeout).await
    }

    /// How many `validate`/`authenticate` requests were rejected so far.
    pub fn auth_failures(&self) -> u64 {
        self.core().auth_failures()
    }
}
