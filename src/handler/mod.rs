//! The handler runtime: what a connector does when its source connects,
//! receives a publish or a query, and closes, and the machinery that calls
//! it.
//!
//! Two ways to write handlers, whichever suits: implement the [`Handler`]
//! trait on a type of your own (state in `self`), or give async closures to a
//! [`Handlers`] builder. Both are turned into the same boxed form inside the
//! SDK.
//!
//! - this file: [`Handler`], [`Context`] and the per-source state;
//! - `closures`: [`Handlers`];
//! - `query` and `query_error`: [`Query`], [`QueryContext`], [`QueryError`];
//! - `dispatch`: reads a connection's event port and calls the handler;
//! - `query_tasks`: the tasks query handlers run on (kept for reuse);
//! - `pull`: the same events as a stream ([`event_stream`]).
//!
//! This layer sits on the connection layer (its event port and its answer
//! port) and knows nothing of sockets or of the protocol's frames.

mod closures;
pub(crate) mod dispatch;
mod pull;
mod query;
mod query_error;
mod query_tasks;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::connection::SourceConnection;
use crate::protocol::raw::RawObject;
pub use closures::Handlers;
pub use pull::{event_stream, Event, EventHandler, EventStream};
pub use query::{Query, QueryContext};
pub use query_error::{QueryError, QUERY_COMPLETE, QUERY_EMPTY, QUERY_ERROR, QUERY_PARTIAL};

/// The error a handler may return. The SDK logs it; for a query handler
/// that has not answered, a [`QueryError`] returned this way is the answer,
/// and any other error is answered with
/// `io.vantiq.connector.queryHandlerFailed`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What handlers return.
pub type HandlerResult = Result<(), HandlerError>;

/// A boxed handler future.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// What the SDK keeps for one source across its reconnections, for its
/// handlers: values of any type ([`Context::state`]) and why the last
/// configuration was rejected ([`Context::config_rejection`]).
#[derive(Default)]
pub(crate) struct SourceState {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    rejection: Mutex<Option<String>>,
}

impl SourceState {
    fn set_rejection(&self, reason: Option<String>) {
        *self.rejection.lock().unwrap_or_else(|e| e.into_inner()) = reason;
    }
}

/// The context of a handler call: which source it is for, a handle to that
/// source's connection (to send notifications from a handler, say), and the
/// source's own state.
///
/// Python's context dict holds `VantiqConnector.SOURCE_NAME`; here it is
/// [`Context::source`]. The reply address of a query is on the [`Query`].
#[derive(Clone)]
pub struct Context {
    connection: SourceConnection,
    state: Arc<SourceState>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(connection: SourceConnection, state: Arc<SourceState>) -> Self {
        Context { connection, state }
    }

    /// The name of the source this call is for.
    pub fn source(&self) -> &str {
        self.connection.source()
    }

    /// The source's connection (a clone lives across reconnections).
    pub fn connection(&self) -> &SourceConnection {
        &self.connection
    }

    /// This source's value of type `T`, made with `T::default()` on first
    /// use and kept across reconnections (until the process ends): the
    /// place for per-source state, instead of a map keyed by source name.
    /// Every handler of the source gets the same value; put a lock inside
    /// `T` for what changes.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use serde_json::Value;
    /// use vantiq_connector_sdk::{Context, Handlers, Query};
    ///
    /// #[derive(Default)]
    /// struct Config(Mutex<Value>);
    ///
    /// let handlers = Handlers::new()
    ///     .on_connect(|ctx: Context, config: Value| async move {
    ///         *ctx.state::<Config>().0.lock().unwrap() = config;
    ///     })
    ///     .on_query(|query: Query| async move {
    ///         let config = query.ctx().state::<Config>().0.lock().unwrap().clone();
    ///         query.complete(&config).await
    ///     });
    /// # let _ = handlers;
    /// ```
    pub fn state<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut values = self.state.values.lock().unwrap_or_else(|e| e.into_inner());
        let value = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        drop(values);
        value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("the slot of a TypeId holds that type"))
    }

    /// Why this source's current configuration was rejected: the error its
    /// connect handler returned (a typed handler's includes the field that
    /// did not fit), until a later configuration is accepted. `None` when
    /// the handler accepted it.
    pub fn config_rejection(&self) -> Option<String> {
        self.state
            .rejection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Turns what a handler closure returns into a [`HandlerResult`]: `()`,
/// or a `Result<(), E>` with any error type convertible to [`HandlerError`].
pub trait IntoHandlerResult {
    /// The conversion.
    fn into_handler_result(self) -> HandlerResult;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> HandlerResult {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map_err(Into::into)
    }
}

/// A connector's behaviour, as a trait. Every method has a default, so
/// implement only what the connector needs.
///
/// # Order and concurrency
///
/// For each source:
/// - connect, publish and close handlers run one at a time, in the order
///   the events arrived: publishes are handled in the order they were
///   published, and connect and close strictly alternate (close for a
///   connection runs before connect for the next);
/// - each query runs beside the others (on a task of its own, or, on the
///   one-threaded runtime, first polled where it arrives and moved to a task
///   of its own if it has to wait), started in order after the
///   connect and publish handlers before it have finished, so it sees the
///   configuration of the connect handler that ran before it; queries run
///   concurrently with each other and with later publishes, and nothing a
///   query handler does (even blocking work before its first `.await`)
///   holds up publishes or other queries (on tokio's multi-threaded runtime;
///   on the one-threaded runtime every task shares the one thread, so work
///   that does not wait holds up everything there, whichever task runs it);
/// - on the one-threaded runtime, a publish or query handler with nothing
///   unfinished before it (queued, or still running) is first polled on the
///   source's connection task; a publish's that has to wait moves to the
///   source's dispatcher, a query's to a task of its own. That saves a
///   hand-over between two tasks per message; the order above is the same.
///   (As for any future, a handler's future must wake the waker of its
///   latest poll: the first poll's is not the one that polls it again.)
/// - a handler that panics or returns an error is logged; it takes neither
///   the connection nor the process down, and a query whose handler did not
///   answer gets an error answer from the SDK;
/// - closing waits for running query handlers up to
///   [`crate::Settings::close_timeout`], then answers the queries still
///   open with an error and stops their handlers.
///
/// Different sources run independently.
///
/// ```
/// use serde_json::{json, Value};
/// use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
///         ctx.connection().send_notification(&message).await?;
///         Ok(())
///     }
///
///     async fn on_query(&self, query: Query) -> HandlerResult {
///         query.complete(&json!({"answer": 42})).await?;
///         Ok(())
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The source is connected and `config` is its configuration document
    /// (the `config` object of `configureExtension`). Runs again after every
    /// reconnection, after [`Handler::on_close`] for the previous connection.
    /// An error returned here rejects the configuration: it is logged and
    /// kept for the source ([`Context::config_rejection`]).
    fn on_connect(
        &self,
        ctx: Context,
        config: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, config);
        async { Ok(()) }
    }

    /// The server published `message` to the source.
    fn on_publish(
        &self,
        ctx: Context,
        message: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, message);
        async { Ok(()) }
    }

    /// Whether publishes reach this handler as their text, through
    /// [`Handler::on_publish_raw`], instead of as a tree through
    /// [`Handler::on_publish`]: the opt-in for connectors that only forward
    /// JSON (no tree is built for them). Asked once per source, when the
    /// set starts running. The default is `false`.
    fn raw_publishes(&self) -> bool {
        false
    }

    /// The server published `message` to the source, as its text (checked
    /// to be a JSON object; a publish of anything else is logged and
    /// skipped). Called instead of [`Handler::on_publish`], with the same
    /// order guarantees, when [`Handler::raw_publishes`] returns `true`.
    /// The default parses the text and calls [`Handler::on_publish`].
    ///
    /// ```
    /// use vantiq_connector_sdk::{Context, Handler, HandlerResult, RawObject};
    ///
    /// /// Forwards every publish as a notification, untouched.
    /// struct Forward;
    ///
    /// impl Handler for Forward {
    ///     fn raw_publishes(&self) -> bool {
    ///         true
    ///     }
    ///
    ///     async fn on_publish_raw(&self, ctx: Context, message: RawObject) -> HandlerResult {
    ///         ctx.connection().send_raw_notification(&message).await?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn on_publish_raw(
        &self,
        ctx: Context,
        message: RawObject,
    ) -> impl Future<Output = HandlerResult> + Send {
        self.on_publish(ctx, message.to_value())
    }

    /// The server queries the source. Answer through `query`; the SDK
    /// answers with an error if the handler panics, fails, or lets the query
    /// go without a final answer (a [`QueryError`] returned as the error is
    /// sent as is).
    ///
    /// The default answers every query with an error (`messageCode`
    /// `io.vantiq.connector.noQueryHandler`).
    fn on_query(&self, query: Query) -> impl Future<Output = HandlerResult> + Send {
        answer_without_handler(query)
    }

    /// The connection ended (it is already closed when this runs): release
    /// what [`Handler::on_connect`] set up.
    fn on_close(&self, ctx: Context) -> impl Future<Output = HandlerResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The server reported an error `status` (300 or more) on the connected
    /// source, with its `body` (usually a list of `{code, message}`): most
    /// often about a notification it refused. Java's HTTP handler; runs in
    /// order with the publish handler. The default does nothing (the SDK
    /// logs every such status at WARN and counts it in
    /// [`crate::Stats::rejected`]).
    fn on_status(
        &self,
        ctx: Context,
        status: u16,
        body: Option<Value>,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, status, body);
        async { Ok(()) }
    }
}

/// The answer to a query of a source without a query handler.
async fn answer_without_handler(query: Query) -> HandlerResult {
    let error = QueryError::no_query_handler(query.source());
    query.error(error).await?;
    Ok(())
}

/// Reads a JSON value as a `T`, naming the field that does not fit
/// (`count: invalid type: string "2", expected usize`).
pub(crate) fn parse_value<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })
}

/// The object-safe form of [`Handler`] that the SDK stores.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// The source's dispatcher for this handler (`dispatch::run`, made for
    /// the handler's own type, so that its handlers are called without a
    /// clone of the handler's handle, and a publish without a new box).
    fn dispatcher(
        self: Arc<Self>,
        conn: SourceConnection,
        state: Arc<SourceState>,
        events: crate::connection::events::Events,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
    /// The source's publishes taken at once on its connection's task, for
    /// the one-threaded runtime (`dispatch::at_once`).
    fn at_once(
        self: Arc<Self>,
        conn: SourceConnection,
        state: Arc<SourceState>,
    ) -> Box<dyn crate::connection::events::AtOnce>;
    fn raw_publishes(&self) -> bool;
    fn query(self: Arc<Self>, query: Query) -> BoxFuture;
}

impl<H: Handler> ErasedHandler for H {
    fn dispatcher(
        self: Arc<Self>,
        conn: SourceConnection,
        state: Arc<SourceState>,
        events: crate::connection::events::Events,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(dispatch::run(self, conn, state, events))
    }
    fn at_once(
        self: Arc<Self>,
        conn: SourceConnection,
        state: Arc<SourceState>,
    ) -> Box<dyn crate::connection::events::AtOnce> {
        dispatch::at_once(self, Context::new(conn, state))
    }
    fn raw_publishes(&self) -> bool {
        Handler::raw_publishes(self)
    }
    fn query(self: Arc<Self>, query: Query) -> BoxFuture {
        Box::pin(async move { self.on_query(query).await })
    }
}

/// A stored handler.
pub(crate) type SharedHandler = Arc<dyn ErasedHandler>;
