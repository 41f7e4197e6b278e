//! The SDK's error types, one per kind of call, each saying what went wrong in
//! words a connector's operator can act on. None of them ever carries a token
//! or a password.

use crate::config::ConfigError;

/// Why running a connector set or a source connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The server rejected the credentials. The SDK does not retry this.
    #[error("source `{source_name}`: authentication failed (status {status}): {message}")]
    AuthenticationFailed {
        /// The source whose connection was rejected.
        source_name: String,
        /// The status the server answered with (typically 401).
        status: u16,
        /// What the server said.
        message: String,
    },
    /// A connection could not be made, and `failOnConnectionError=true` (or
    /// [`crate::Settings::max_reconnect_attempts`]) says not to retry.
    #[error("source `{source_name}`: could not connect: {reason}")]
    ConnectFailed {
        /// The source that could not connect.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// No source of that name in the set.
    #[error("no source named `{0}` in this connector set")]
    UnknownSource(String),
    /// The source connection is already running (`run` was called twice).
    #[error("source `{0}` is already running")]
    AlreadyRunning(String),
    /// The metrics endpoint could not start (a port in use, say).
    #[error("cannot serve metrics at {addr} (`{key}`): {reason}")]
    MetricsEndpoint {
        /// The setting that asked for it: `metricsPort` or
        /// `Settings::metrics_addr`.
        key: &'static str,
        /// The address it was to listen on.
        addr: std::net::SocketAddr,
        /// Why it could not.
        reason: String,
    },
}

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A notification must be a JSON object; this was something else.
    #[error("a notification must be a JSON object, not a JSON {0}")]
    NotAnObject(&'static str),
    /// The value could not be serialised as JSON.
    #[error("the notification cannot be serialised as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The buffer is full ([`crate::OverflowPolicy::Fail`], or a non-waiting
    /// send).
    #[error("the notification buffer is full")]
    BufferFull,
    /// The source connection was closed.
    #[error("the source connection is closed")]
    Closed,
}

/// Why a query answer was refused. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryAnswerError {
    /// Not a query response code (100, 200, 204 or 400 and above).
    #[error("{0} is not a query response code (use 100, 200 or 204, or send an error)")]
    InvalidStatus(u16),
    /// A 100 or 200 answer needs a body.
    #[error("a {0} answer needs a body (an object or a list of objects)")]
    MissingBody(u16),
    /// A 204 answer must not have a body.
    #[error("a 204 answer must not have a body")]
    UnexpectedBody,
    /// The body is not an object or a list of objects.
    #[error("a query answer body must be an object or a list of objects, not {0}")]
    NotRows(String),
    /// The value could not be serialised as JSON.
    #[error("the answer cannot be serialised as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The query already had its final answer (or the SDK answered it with an
    /// error after its deadline).
    #[error("the query already had its final answer")]
    AlreadyAnswered,
    /// The query came to another source than the connection answering it.
    #[error("the query belongs to source `{query_source}`, not `{connection}`")]
    WrongSource {
        /// The source the query came to.
        query_source: String,
        /// The source connection used to answer.
        connection: String,
    },
    /// The connection the query came on has ended: the server has dropped
    /// the query, and nothing can answer it any more.
    #[error("the connection the query came on has ended")]
    ConnectionLost,
}
