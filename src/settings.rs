//! Settings of the SDK itself: what server.config does not say (backoff,
//! buffering, delivery, limits). Every default is a named constant in
//! [`defaults`], and the docs point at the constants, so the two cannot
//! drift apart.
//!
//! [`Settings`] is built with [`Settings::builder`]; each setting is read
//! with the method of its name. One macro writes the field, the getter and
//! the builder method of each setting from one list, so each is documented
//! once.

use std::time::Duration;

use crate::config::ProxySetting;
use crate::protocol::ReconnectStyle;

/// The default of every setting.
pub mod defaults {
    use std::time::Duration;

    /// Default for [`crate::Settings::initial_backoff`].
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
    /// Default for [`crate::Settings::max_backoff`].
    pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
    /// Default for [`crate::Settings::connect_timeout`].
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default for [`crate::Settings::ping_interval`] (the Python SDK's
    /// interval).
    pub const PING_INTERVAL: Duration = Duration::from_secs(20);
    /// Default for [`crate::Settings::buffer_capacity`].
    pub const BUFFER_CAPACITY: usize = 10_000;
    /// Default for [`crate::Settings::buffer_bytes`]: 32 MiB.
    pub const BUFFER_BYTES: usize = 32 << 20;
    /// Default for [`crate::Settings::answer_buffer_bytes`]: 4 MiB.
    pub const ANSWER_BUFFER_BYTES: usize = 4 << 20;
    /// Default for [`crate::Settings::window`].
    pub const WINDOW: usize = 1024;
    /// Default for [`crate::Settings::ack_timeout`].
    pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default for [`crate::Settings::max_message_size`]: 64 MiB.
    pub const MAX_MESSAGE_SIZE: usize = 64 << 20;
    /// Default for [`crate::Settings::max_concurrent_handshakes`].
    pub const MAX_CONCURRENT_HANDSHAKES: usize = 128;
    /// Default for [`crate::Settings::close_timeout`].
    pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
}

/// What `send_notification` does when the buffer of unsent notifications is
/// full (a source that stays disconnected, or a server slower than the
/// producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr ;)*) => {
        /// The SDK's settings, shared by every source of a connector set.
        ///
        /// ```
        /// use std::time::Duration;
        /// use vantiq_connector_sdk::{OverflowPolicy, Settings};
        ///
        /// let settings = Settings::builder()
        ///     .max_backoff(Duration::from_secs(2))
        ///     .overflow(OverflowPolicy::DropOldest)
        ///     .query_deadline(Some(Duration::from_secs(30)))
        ///     .build();
        /// assert_eq!(settings.max_backoff(), Duration::from_secs(2));
        /// ```
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( pub(crate) $name: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $name: $default, )* }
            }
        }

        impl Settings {
            $(
                $(#[doc = $doc])*
                pub fn $name(&self) -> $ty {
                    self.$name.clone()
                }
            )*
        }

        impl SettingsBuilder {
            $(
                $(#[doc = $doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.settings.$name = value;
                    self
                }
            )*
        }
    };
}

settings! {
    /// Delay before the second reconnection attempt (the first is made at
    /// once, with a little jitter), and the step by which each later delay
    /// grows (linearly, as the official Python SDK's do) up to `max_backoff`;
    /// each delay is drawn from its upper half. Resets after a successful
    /// connection. Default [`defaults::INITIAL_BACKOFF`].
    initial_backoff: Duration = defaults::INITIAL_BACKOFF;
    /// The largest delay between reconnection attempts. Default
    /// [`defaults::MAX_BACKOFF`].
    max_backoff: Duration = defaults::MAX_BACKOFF;
    /// Give up after this many failed attempts in a row (`None`: never, the
    /// default). `failOnConnectionError=true` in server.config means the
    /// first failure is returned instead.
    max_reconnect_attempts: Option<u32> = None;
    /// Time allowed for one connection attempt, from TCP connect to the
    /// configuration. Default [`defaults::CONNECT_TIMEOUT`].
    connect_timeout: Duration = defaults::CONNECT_TIMEOUT;
    /// Interval of WebSocket pings when `sendPings=true`. A connection whose
    /// pong has not come back half an interval after its ping is declared
    /// dead and re-made, so a half-open link is noticed within one and a
    /// half intervals. Default [`defaults::PING_INTERVAL`].
    ping_interval: Duration = defaults::PING_INTERVAL;
    /// How long a pong may take after a ping before the link is declared
    /// dead and re-made (connectKWArgs' `ping_timeout`). Default `None`: half
    /// the ping interval.
    pong_timeout: Option<Duration> = None;
    /// Notifications buffered while the source is disconnected (or the
    /// server is slower than the producer), at most. Default
    /// [`defaults::BUFFER_CAPACITY`].
    buffer_capacity: usize = defaults::BUFFER_CAPACITY;
    /// Bytes of notification frames buffered, at most: whichever of this and
    /// `buffer_capacity` is reached first makes the buffer full. One
    /// notification larger than this is still taken when the buffer is
    /// empty. Default [`defaults::BUFFER_BYTES`].
    buffer_bytes: usize = defaults::BUFFER_BYTES;
    /// Bytes of query answers waiting to be written, at most: beyond it
    /// `Query::partial` and `Query::complete` wait for room (a server that
    /// reads slowly slows the handler down instead of growing memory). One
    /// answer larger than this is still taken when no other answer waits.
    /// Default [`defaults::ANSWER_BUFFER_BYTES`].
    answer_buffer_bytes: usize = defaults::ANSWER_BUFFER_BYTES;
    /// What happens when the buffer is full. Default [`OverflowPolicy::Wait`].
    overflow: OverflowPolicy = OverflowPolicy::Wait;
    /// Notifications sent but not yet acknowledged by the server, at most.
    /// Default [`defaults::WINDOW`].
    window: usize = defaults::WINDOW;
    /// How long notifications may wait for an acknowledgement. A server that
    /// has never acknowledged one in that time is taken to be a server that
    /// does not acknowledge (logged once at WARN); delivery is then
    /// at-most-once for that source. A server that did acknowledge before
    /// and stops is taken to be a dead link: the connection is re-made and
    /// the unacknowledged notifications are sent again. Default
    /// [`defaults::ACK_TIMEOUT`].
    ack_timeout: Duration = defaults::ACK_TIMEOUT;
    /// The largest server message accepted. A larger one is logged and
    /// skipped; one over twice this size ends the connection (which is then
    /// re-made). Default [`defaults::MAX_MESSAGE_SIZE`].
    max_message_size: usize = defaults::MAX_MESSAGE_SIZE;
    /// A query not given its final answer in this time gets an error answer
    /// from the SDK, and its handler is cancelled. Default `None` (no
    /// deadline).
    query_deadline: Option<Duration> = None;
    /// How `reconnectRequired` is carried out. Default
    /// [`ReconnectStyle::NewSocket`].
    reconnect_style: ReconnectStyle = ReconnectStyle::NewSocket;
    /// How long closing may take: it waits this long for buffered and
    /// unacknowledged notifications to be delivered and for running query
    /// handlers to answer; then the queries still open get an error answer,
    /// what could not be delivered is counted
    /// ([`crate::Stats::unsent_at_close`]) and logged, and the close frame
    /// is written. Default [`defaults::CLOSE_TIMEOUT`].
    close_timeout: Duration = defaults::CLOSE_TIMEOUT;
    /// Connection handshakes in progress at once, at most, across the
    /// sources of a set: a restarted server is not stormed by thousands of
    /// sources at once, and their short-lived handshake state is never all
    /// allocated together. Default [`defaults::MAX_CONCURRENT_HANDSHAKES`].
    max_concurrent_handshakes: usize = defaults::MAX_CONCURRENT_HANDSHAKES;
    /// Where the HTTP proxy comes from, over server.config's `proxy` key and
    /// the environment: `Some(ProxySetting::Direct)` ignores both,
    /// `Some(ProxySetting::Url(..))` names the proxy. Default `None`: as
    /// server.config says (by default, the environment's `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`).
    proxy: Option<ProxySetting> = None;
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (the `metrics`
    /// feature), overriding server.config's `metricsPort` and
    /// `metricsAddress`. Default `None`: as server.config says, and no
    /// endpoint when it sets no `metricsPort`. See docs/configuration.md.
    metrics_addr: Option<std::net::SocketAddr> = None;
}

impl Settings {
    /// A builder starting from the defaults.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder {
            settings: Settings::default(),
        }
    }

    /// A builder starting from these settings.
    pub fn to_builder(&self) -> SettingsBuilder {
        SettingsBuilder {
            settings: self.clone(),
        }
    }
}

/// Builds [`Settings`]: each method sets the setting of its name (documented
/// on the getter of [`Settings`]).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SettingsBuilder {
    settings: Settings,
}

impl SettingsBuilder {
    /// The settings.
    pub fn build(self) -> Settings {
        self.settings
    }
}
