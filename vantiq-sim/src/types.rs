//! The public data types: what the emulator reports about sources, notifications, queries
//! and protocol violations, and its error type.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// A frame sent verbatim to a connector with [`crate::Sim::send_raw`], to see how the
/// connector copes with messages a real server would never send (or sends rarely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFrame {
    /// A WebSocket text frame.
    Text(String),
    /// A WebSocket binary frame.
    Binary(Vec<u8>),
}

/// The two kinds of WebSocket data frame. Vantiq's official SDKs differ here: the Python SDK
/// sends and reads text frames, the Java SDK sends binary frames and reads only binary
/// frames (text frames are dropped unseen). A Vantiq server answers each connector in the
/// type it uses, and so does the emulator by default (see [`FrameMode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameType {
    /// Text frames (UTF-8 JSON).
    Text,
    /// Binary frames (UTF-8 JSON as bytes).
    Binary,
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameType::Text => "text",
            FrameType::Binary => "binary",
        })
    }
}

/// In which frame type the emulator sends its messages (handshake answers, configuration,
/// publishes, queries, `reconnectRequired`, acknowledgements, the load generator's
/// frames). Frames sent with [`crate::Sim::send_raw`] keep the type they were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameMode {
    /// Each connection in the type its connector uses: decided by the connector's first
    /// data frame, and followed if it changes (text until the connector sends anything).
    #[default]
    Follow,
    /// Text frames to every connector, whatever it sends (to check that a connector
    /// accepts text frames).
    Text,
    /// Binary frames to every connector, whatever it sends.
    Binary,
}

impl std::fmt::Display for FrameMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameMode::Follow => "follow",
            FrameMode::Text => "text",
            FrameMode::Binary => "binary",
        })
    }
}

impl std::str::FromStr for FrameMode {
    type Err = String;

    /// Parses `follow`, `text` or `binary` (as the `serve --frames` flag and the config
    /// file's `"frames"` spell them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "follow" => Ok(FrameMode::Follow),
            "text" => Ok(FrameMode::Text),
            "binary" => Ok(FrameMode::Binary),
            other => Err(format!(
                "unknown frame mode {other:?} (expected follow, text or binary)"
            )),
        }
    }
}

/// One notification a connector sent for a source, as the emulator recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Position of this notification among all the source's notifications, from 0. It keeps
    /// counting across reconnections, so a gap or a repeat shows lost or doubled events.
    pub seq: u64,
    /// The notification's `object`, exactly as the connector sent it.
    pub object: Value,
}

/// Everything a connector answered to one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryOutcome {
    /// The status of the final answer: 200, 204, or an error status (>= 300).
    pub status: u16,
    /// The rows of every 100 and 200 answer, in order: an object body is one row, a list
    /// body contributes each of its elements.
    pub rows: Vec<Value>,
    /// Every answer frame as received (whole messages), for checks on the exact shape.
    pub frames: Vec<Value>,
    /// The body of an error answer (one object or a list, as sent); `None` otherwise.
    pub error: Option<Value>,
}

/// What the emulator knows about one source and its connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The source name.
    pub name: String,
    /// True while a live session has received this source's `configureExtension` (and no
    /// `reconnectRequired` has been sent since).
    pub connected: bool,
    /// Handshakes completed so far (`configureExtension` sent), across all sessions.
    pub connections: u64,
    /// The source's current configuration document.
    pub config: Value,
    /// The distinct reconnect secrets connectors presented, in order of first use: a
    /// connector that keeps its secret across reconnections shows exactly one. Through
    /// the control API only when asked for (`?secrets=true`,
    /// [`crate::client::Client::source_with_secrets`]): left out otherwise, and never in the
    /// console; [`SourceStatus::reconnect_secret_count`] is always there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnect_secrets: Vec<String>,
    /// How many distinct reconnect secrets connectors presented.
    #[serde(default)]
    pub reconnect_secret_count: usize,
    /// The frame type the emulator sends on the connection serving the source (in the
    /// default [`FrameMode::Follow`], the type its connector last sent); `None` while no
    /// connection serves it.
    pub frame_type: Option<FrameType>,
    /// True while the emulator has stopped reading the source's connection
    /// ([`crate::Sim::stop_reading`]).
    pub reading_stopped: bool,
    /// The source's state as a word: `connected`, `reconnecting` (after
    /// `reconnectRequired`, until the next handshake), `refused` (the last connector was
    /// turned away), `disconnected` or `never connected`.
    pub state: String,
    /// When the current connection completed its handshake (Unix milliseconds); `None`
    /// while not connected.
    pub connected_at_ms: Option<u64>,
    /// The source's recent connection events, oldest first (at most 50).
    pub history: Vec<HistoryEvent>,
}

/// One event in a source's connection history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// When it happened (Unix milliseconds).
    pub at_ms: u64,
    /// What happened: `connected`, `refused`, `displaced`, `reconnectRequired`,
    /// `configured`, `dropped`, `disconnected`, `silent`, `reading stopped`,
    /// `reading resumed`.
    pub event: String,
    /// Details: the session and peer, or why it ended.
    pub detail: String,
}

/// One protocol violation: something a connector sent that a Vantiq server would not
/// accept or that breaks the protocol's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The source concerned, when known.
    pub source: Option<String>,
    /// A short stable name of the rule broken: one of the constants in [`kinds`].
    pub kind: String,
    /// A human-readable explanation, with an excerpt of the offending message.
    pub detail: String,
}

/// The names of the violation kinds (the [`Violation::kind`] values), so tests can match
/// them without repeating string literals.
pub mod kinds {
    /// A text frame (or a binary frame's payload) that is not JSON.
    pub const INVALID_JSON: &str = "json.invalid";
    /// A binary frame whose payload is not UTF-8.
    pub const INVALID_UTF8: &str = "frame.invalidUtf8";
    /// A message that is JSON but has the wrong shape (not an object, missing or
    /// mistyped fields, neither `op` nor `status`).
    pub const BAD_SHAPE: &str = "message.shape";
    /// An `op` a connector never sends.
    pub const UNKNOWN_OP: &str = "op.unknown";
    /// A message other than `validate`/`authenticate` before authentication succeeded.
    pub const NOT_AUTHENTICATED: &str = "handshake.notAuthenticated";
    /// A notification or query answer before `connectExtension` succeeded.
    pub const NOT_CONNECTED: &str = "handshake.notConnected";
    /// A `connectExtension` for a second source on a socket that already serves one.
    pub const SECOND_SOURCE: &str = "connect.secondSource";
    /// A notification whose `object` is a list or a scalar instead of an object.
    pub const NOTIFICATION_NOT_OBJECT: &str = "notification.notObject";
    /// A notification naming another source than the one its socket serves.
    pub const NOTIFICATION_WRONG_SOURCE: &str = "notification.wrongSource";
    /// A query answer whose reply address was never issued.
    pub const UNKNOWN_REPLY_ADDRESS: &str = "query.unknownReplyAddress";
    /// A query answer after the query's final answer (answered twice).
    pub const ANSWER_AFTER_FINAL: &str = "query.answerAfterFinal";
    /// A query answer with a status that is not 100, 200, 204 or >= 300.
    pub const BAD_STATUS: &str = "query.badStatus";
    /// A query answer whose body does not fit its status (missing body, scalar rows,
    /// malformed error).
    pub const BAD_BODY: &str = "query.badBody";
    /// A connector authenticated but sent no `connectExtension` within the emulator's
    /// grace period (five seconds by default); most likely it cannot read the frames it
    /// is sent (the detail says which frame types each side used).
    pub const NO_CONNECT: &str = "handshake.noConnectExtension";
}

/// Why an emulator operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The source is not configured in the emulator.
    #[error("unknown source {0:?}")]
    UnknownSource(String),
    /// The source has no connected connector (or none at all, for operations that only
    /// need a session).
    #[error("source {0:?} has no connected connector")]
    NotConnected(String),
    /// The source's connection ended before the operation completed (a query lost its
    /// connection before the final answer).
    #[error("the connection of source {0:?} was lost before the operation completed")]
    ConnectionLost(String),
    /// The operation cannot start while another of its kind runs (a second query load on
    /// one source); the text says which.
    #[error("busy: {0}")]
    Busy(String),
    /// A wait or query did not complete in time; the text says what was awaited.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl SimError {
    pub(crate) fn timeout(what: impl std::fmt::Display, after: Duration) -> Self {
        SimError::Timeout(format!("{what} (after {} ms)", after.as_millis()))
    }
}
