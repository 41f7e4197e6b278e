//! Settings of the SDK itself: what server.config does not say (backoff,
//! buffering, delivery, limits). Every default is a named constant, and the
//! docs point at the constants, so the two cannot drift apart.

use std::time::Duration;

use crate::protocol::ReconnectStyle;

/// Default for [`Settings::initial_backoff`].
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Default for [`Settings::max_backoff`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Default for [`Settings::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default for [`Settings::ping_interval`] (the Python SDK's interval).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default for [`Settings::buffer_capacity`].
pub const DEFAULT_BUFFER_CAPACITY: usize = 10_000;
/// Default for [`Settings::window`].
pub const DEFAULT_WINDOW: usize = 1024;
/// Default for [`Settings::ack_timeout`].
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`Settings::max_message_size`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Default for [`Settings::max_concurrent_handshakes`].
pub const DEFAULT_MAX_CONCURRENT_HANDSHAKES: usize = 128;
/// Default for [`Settings::close_timeout`].
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What `send_notification` does when the buffer of unsent notifications is
/// full (a source that stays disconnected, or a server slower than the
/// producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Wait until there is room: nothing is lost, the producer slows down.
    /// The default.
    #[default]
    Wait,
    /// Make room by dropping the oldest buffered notification. Every drop is
    /// counted ([`crate::Stats::dropped`]) and logged at WARN.
    DropOldest,
    /// Return [`crate::NotifyError::BufferFull`] at once.
    Fail,
}

/// The SDK's settings, shared by every source of a connector set.
///
/// Build with [`Settings::default`] and change fields:
///
/// ```
/// use std::time::Duration;
/// use vantiq_connector_sdk::{OverflowPolicy, Settings};
///
/// let mut settings = Settings::default();
/// settings.max_backoff = Duration::from_secs(2);
/// settings.overflow = OverflowPolicy::DropOldest;
/// settings.query_deadline = Some(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Delay before the second reconnection attempt (the first is made at
    /// once, with a little jitter); it doubles after each failure up to
    /// [`Settings::max_backoff`], and resets after a successful connection.
    /// Default [`DEFAULT_INITIAL_BACKOFF`].
    pub initial_backoff: Duration,
    /// The largest delay between reconnection attempts. Default
    /// [`DEFAULT_MAX_BACKOFF`].
    pub max_backoff: Duration,
    /// Give up after this many failed attempts in a row (`None`: never, the
    /// default). `failOnConnectionError=true` in server.config means the first
    /// failure is returned instead.
    pub max_reconnect_attempts: Option<u32>,
    /// Time allowed for one connection attempt, from TCP connect to the
    /// configuration. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Interval of WebSocket pings when `sendPings=true`. A connection whose
    /// pong has not come back half an interval after its ping is declared
    /// dead and re-made, so a half-open link is noticed within one and a half
    /// intervals.
    /// Default [`DEFAULT_PING_INTERVAL`].
    pub ping_interval: Duration,
    /// Notifications buffered while the source is disconnected (or the
    /// server is slower than the producer). Default
    /// [`DEFAULT_BUFFER_CAPACITY`].
    pub buffer_capacity: usize,
    /// What happens when the buffer is full. Default [`OverflowPolicy::Wait`].
    pub overflow: OverflowPolicy,
    /// Notifications sent but not yet acknowledged by the server, at most.
    /// Default [`DEFAULT_WINDOW`].
    pub window: usize,
    /// How long notifications may wait for an acknowledgement. A server that
    /// has never acknowledged one in that time is taken to be a server that
    /// does not acknowledge (logged once at WARN); delivery is then
    /// at-most-once for that source. A server that did acknowledge before and
    /// stops is taken to be a dead link: the connection is re-made and the
    /// unacknowledged notifications are sent again. Default
    /// [`DEFAULT_ACK_TIMEOUT`].
    pub ack_timeout: Duration,
    /// The largest server message accepted. A larger one is logged and
    /// skipped; one over twice this size ends the connection (which is then
    /// re-made). Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// A query not given its final answer in this time gets an error answer
    /// from the SDK, and its handler is cancelled. Default `None` (no
    /// deadline).
    pub query_deadline: Option<Duration>,
    /// How `reconnectRequired` is carried out. Default
    /// [`ReconnectStyle::NewSocket`].
    pub reconnect_style: ReconnectStyle,
    /// How long closing waits for the close frame to be written. Default
    /// [`DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Duration,
    /// Connection handshakes in progress at once, at most, across the
    /// sources of a set: a restarted server is not stormed by thousands of
    /// sources at once, and their short-lived handshake state is never all
    /// allocated together. Default [`DEFAULT_MAX_CONCURRENT_HANDSHAKES`].
    pub max_concurrent_handshakes: usize,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (the `metrics`
    /// feature), overriding server.config's `metricsPort` and
    /// `metricsAddress`. Default `None`: as server.config says, and no
    /// endpoint when it sets no `metricsPort`. See docs/configuration.md.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_reconnect_attempts: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            overflow: OverflowPolicy::Wait,
            window: DEFAULT_WINDOW,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            query_deadline: None,
            reconnect_style: ReconnectStyle::NewSocket,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            max_concurrent_handshakes: DEFAULT_MAX_CONCURRENT_HANDSHAKES,
            metrics_addr: None,
        }
    }
}
