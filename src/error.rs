//! The SDK's error types, one per kind of call, each saying what went wrong in
//! words a connector's operator can act on. None of them ever carries a token
//! or a password.

/// Why running a connector set or a source connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    ///
    /// Match on `kind` to act on the cause; `reason` says it in words.
    #[error("source `{source_name}`: could not connect: {reason}")]
    ConnectFailed {
        /// The source that could not connect.
        source_name: String,
        /// What kind of failure it was.
        kind: ConnectErrorKind,
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// No source of that name in the set ([`crate::ConnectorSet::run_source`]).
    #[error("no source named `{0}` in this connector set")]
    UnknownSource(String),
    /// The source connection is already running (`run` was called twice).
    #[error("source `{0}` is already running")]
    AlreadyRunning(String),
    /// The source connection has ended for good (closed, or its run ended
    /// with an error): it does not run again.
    #[error("source `{0}` is closed")]
    Closed(String),
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
    /// A source's connection task failed unexpectedly (a bug: please report
    /// it).
    #[error("source `{source_name}`: the connection task failed: {reason}")]
    TaskFailed {
        /// The source.
        source_name: String,
        /// What the runtime reported.
        reason: String,
    },
}

/// What kind of failure ended a connection attempt, for programs that act on
/// the cause (see [`Error::ConnectFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server's host name could not be resolved.
    Dns,
    /// The server (or the proxy's target, through the tunnel) refused the TCP
    /// connection.
    Refused,
    /// The attempt did not finish in time (`Settings::connect_timeout`, or the
    /// network's own timeout).
    Timeout,
    /// The TLS handshake failed: most often the server's certificate could not
    /// be verified (unknown issuer, expired, wrong name).
    Tls,
    /// The server answered the WebSocket upgrade with this HTTP status
    /// instead of `101`.
    HttpStatus(u16),
    /// The proxy could not be reached (resolved, connected to).
    ProxyUnreachable,
    /// The proxy answered `407` (or `401`): it wants credentials, or rejected
    /// the ones in the proxy URL.
    ProxyAuth,
    /// The proxy refused to open a tunnel to the server, with this status
    /// (`403` forbidden by policy, `502` it could not reach the server, ...).
    ProxyRefused(u16),
    /// The server refused the source (`connectExtension` answered with an
    /// error status).
    Rejected,
    /// The connection closed or broke during the handshake, or another
    /// network error.
    Network,
}

/// A failed connection attempt: its kind and what to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectError {
    pub(crate) kind: ConnectErrorKind,
    pub(crate) message: String,
}

impl ConnectError {
    pub(crate) fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
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
    /// A 204 answer has no body, or the empty object `{}`.
    #[error("a 204 answer has no body (or an empty object `{{}}`)")]
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
