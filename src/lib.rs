//! # vantiq-connector-sdk
//!
//! Write Vantiq connectors (extension sources) in Rust. A connector dials out
//! to a Vantiq server over a WebSocket, registers as one or more sources,
//! receives each source's configuration, and then serves the server:
//! published messages arrive, queries are answered, and notifications are
//! sent. The SDK keeps the connections up for months: it reconnects with
//! backoff and jitter, notices half-open links, buffers notifications while
//! disconnected and re-sends what the server did not acknowledge, and makes
//! sure every query gets an answer.
//!
//! ## A connector in a few lines
//!
//! ```no_run
//! use serde_json::{json, Value};
//! use vantiq_connector_sdk::{ConnectorSet, Context, Handlers, Query};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     vantiq_connector_sdk::setup_logging()?;
//!     // Reads serverConfig/server.config (or server.config).
//!     let set = ConnectorSet::from_server_config()?
//!         .handler(
//!             Handlers::new()
//!                 .on_connect(|_ctx: Context, config: Value| async move {
//!                     tracing::info!(%config, "configured");
//!                 })
//!                 .on_publish(|ctx: Context, message: Value| async move {
//!                     // Echo every published message back as a notification.
//!                     ctx.connection().send_notification(&message).await
//!                 })
//!                 .on_query(|query: Query| async move {
//!                     query.complete(&json!({"hello": "world"})).await
//!                 }),
//!         )
//!         .build()?;
//!     set.declare_healthy()?;
//!     set.run_until(vantiq_connector_sdk::shutdown_signal()).await?;
//!     Ok(())
//! }
//! ```
//!
//! ## The layers
//!
//! Dependencies run one way: the set on the handler runtime, the runtime on
//! the connection, the connection on the protocol and the transport.
//!
//! - `protocol`: message types and the state machines of one connection
//!   (handshake and queries, delivery, keepalive); pure, no I/O, no clock.
//! - `transport`: WebSocket over TCP or rustls TLS.
//! - `connection`: one task per source that owns its socket, and the cheap
//!   [`SourceConnection`] handle onto it.
//! - the handler runtime: [`Handler`], [`Handlers`], [`Context`], [`Query`];
//!   the order in which handlers run is documented on [`Handler`].
//! - [`ConnectorSet`]: every source of a [`config::ServerConfig`], the
//!   [`health`] probe, and shutdown.
//!
//! ## Numbers
//!
//! Every JSON number passes through unchanged: the SDK builds serde_json with
//! `arbitrary_precision` (each number is kept as its text, so integers of any
//! size and floats go through digit for digit, `-0.0` and `1e400` included)
//! and `float_roundtrip` (a conversion to `f64`, as in a typed handler, is
//! correctly rounded). Cargo features are unified, so these are on for every
//! crate of a build that uses the SDK; one consequence to know: a
//! `serde_json::Number` compares by its text (`1.0` and `1.00` differ).
//!
//! See the README for the mapping from the Python SDK's calls to these.

#![deny(missing_docs)]
#![deny(unreachable_pub)]
#![forbid(unsafe_code)]

pub mod config;
mod connection;
mod error;
mod handler;
pub mod health;
pub mod logging;
pub mod metrics;
mod panics;
#[doc(hidden)]
pub mod protocol;
mod set;
mod settings;
mod transport;

pub use config::{ConfigError, Credentials, Secret, ServerConfig, ServerConfigBuilder};
pub use connection::{ConnectionState, SourceConnection, StateWatch, Stats};
pub use error::{ConnectErrorKind, Error, NotifyError, QueryAnswerError};
pub use handler::{
    event_stream, Context, Event, EventHandler, EventStream, Handler, HandlerError, HandlerResult,
    Handlers, IntoHandlerResult, Query, QueryContext, QueryError, QUERY_COMPLETE, QUERY_EMPTY,
    QUERY_ERROR, QUERY_PARTIAL,
};
pub use logging::setup_logging;
pub use protocol::raw::{RawObject, RawObjectError};
pub use protocol::ReconnectStyle;
pub use set::{shutdown_signal, ConnectorSet, ConnectorSetBuilder, SetupError};
pub use settings::{defaults, OverflowPolicy, Settings, SettingsBuilder};
pub use transport::TlsError;

/// The keys of Python's context and error dicts, for code ported from the
/// Python SDK. In Rust they are fields and methods; these constants name the
/// wire fields.
pub mod constants {
    /// Python's `VantiqConnector.SOURCE_NAME`: see [`crate::Context::source`].
    pub const SOURCE_NAME: &str = "source_name";
    /// Python's `VantiqConnector.RESPONSE_ADDRESS`: see
    /// [`crate::Query::reply_address`].
    pub const RESPONSE_ADDRESS: &str = "response_address";
    /// Python's `VantiqConnector.ERROR_CODE`: [`crate::QueryError::message_code`].
    pub const ERROR_CODE: &str = "messageCode";
    /// Python's `VantiqConnector.ERROR_TEMPLATE`:
    /// [`crate::QueryError::message_template`].
    pub const ERROR_TEMPLATE: &str = "messageTemplate";
    /// Python's `VantiqConnector.ERROR_PARAMETERS`:
    /// [`crate::QueryError::parameters`].
    pub const ERROR_PARAMETERS: &str = "parameters";
    pub use crate::handler::{QUERY_COMPLETE, QUERY_EMPTY, QUERY_PARTIAL};
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
