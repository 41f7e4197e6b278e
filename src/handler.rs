//! Handlers: what a connector does when its source connects, receives a
//! publish or a query, and closes.
//!
//! Two ways to write them, whichever suits: implement the [`Handler`] trait on
//! a type of your own (state in `self`), or give async closures to a
//! [`Handlers`] builder. Both are turned into the same boxed form inside the
//! SDK, which runs connect, publish and close handlers of a source in order on
//! one task, and each query on a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::connection::SourceConnection;
use crate::query::{Query, QueryError};

/// The error a handler may return. The SDK logs it (and, for a query handler
/// that has not answered, answers the query with an error).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What handlers return.
pub type HandlerResult = Result<(), HandlerError>;

/// A boxed handler future.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// The context of a handler call: which source it is for, and a handle to
/// that source's connection (to send notifications from a handler, say).
///
/// Python's context dict holds `VantiqConnector.SOURCE_NAME`; here it is
/// [`Context::source`]. The reply address of a query is on the [`Query`].
#[derive(Clone, Debug)]
pub struct Context {
    connection: SourceConnection,
}

impl Context {
    pub(crate) fn new(connection: SourceConnection) -> Self {
        Context { connection }
    }

    /// The name of the source this call is for.
    pub fn source(&self) -> &str {
        self.connection.source()
    }

    /// The source's connection.
    pub fn connection(&self) -> &SourceConnection {
        &self.connection
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
    fn on_connect(
        &self,
        ctx: Context,
        config: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, config);
        async { Ok(()) }
    }

    /// The server published `message` to the source. Publishes are handled
    /// one at a time, in the order they arrived.
    fn on_publish(
        &self,
        ctx: Context,
        message: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let _ = (ctx, message);
        async { Ok(()) }
    }

    /// The server queries the source. Answer through `query`; the SDK
    /// answers with an error if the handler panics, fails, or lets the query
    /// go without a final answer. Queries run concurrently.
    ///
    /// The default answers every query with an error (`messageCode`
    /// `io.vantiq.connector.noQueryHandler`).
    fn on_query(&self, query: Query) -> impl Future<Output = HandlerResult> + Send {
        async move {
            let error = QueryError::no_query_handler(query.source());
            query.error(error).await?;
            Ok(())
        }
    }

    /// The connection ended (it is already closed when this runs): release
    /// what [`Handler::on_connect`] set up.
    fn on_close(&self, ctx: Context) -> impl Future<Output = HandlerResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

/// The object-safe form of [`Handler`] that the SDK stores.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn connect(self: Arc<Self>, ctx: Context, config: Value) -> BoxFuture;
    fn publish(self: Arc<Self>, ctx: Context, message: Value) -> BoxFuture;
    fn query(self: Arc<Self>, query: Query) -> BoxFuture;
    fn close(self: Arc<Self>, ctx: Context) -> BoxFuture;
}

impl<H: Handler> ErasedHandler for H {
    fn connect(self: Arc<Self>, ctx: Context, config: Value) -> BoxFuture {
        Box::pin(async move { self.on_connect(ctx, config).await })
    }
    fn publish(self: Arc<Self>, ctx: Context, message: Value) -> BoxFuture {
        Box::pin(async move { self.on_publish(ctx, message).await })
    }
    fn query(self: Arc<Self>, query: Query) -> BoxFuture {
        Box::pin(async move { self.on_query(query).await })
    }
    fn close(self: Arc<Self>, ctx: Context) -> BoxFuture {
        Box::pin(async move { self.on_close(ctx).await })
    }
}

/// A stored handler.
pub(crate) type SharedHandler = Arc<dyn ErasedHandler>;

type ConnectFn = Arc<dyn Fn(Context, Value) -> BoxFuture + Send + Sync>;
type PublishFn = Arc<dyn Fn(Context, Value) -> BoxFuture + Send + Sync>;
type QueryFn = Arc<dyn Fn(Query) -> BoxFuture + Send + Sync>;
type CloseFn = Arc<dyn Fn(Context) -> BoxFuture + Send + Sync>;

/// Handlers made of async closures, the closest match to Python's
/// `configure_handlers(close, connect, publish, query)`. Unset handlers do
/// nothing (an unset query handler answers every query with an error).
///
/// ```
/// use serde_json::Value;
/// use vantiq_connector_sdk::{Context, Handlers, Query};
///
/// let handlers = Handlers::new()
///     .on_connect(|ctx: Context, config: Value| async move {
///         tracing::info!(source = ctx.source(), %config, "configured");
///     })
///     .on_publish(|ctx: Context, message: Value| async move {
///         ctx.connection().send_notification(&message).await
///     })
///     .on_query(|query: Query| async move {
///         let rows = vec![serde_json::json!({"i": 0})];
///         query.complete(&rows).await
///     });
/// # let _ = handlers;
/// ```
#[derive(Clone, Default)]
pub struct Handlers {
    connect: Option<ConnectFn>,
    publish: Option<PublishFn>,
    query: Option<QueryFn>,
    close: Option<CloseFn>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("connect", &self.connect.is_some())
            .field("publish", &self.publish.is_some())
            .field("query", &self.query.is_some())
            .field("close", &self.close.is_some())
            .finish()
    }
}

impl Handlers {
    /// No handlers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the connect handler (see [`Handler::on_connect`]).
    pub fn on_connect<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.connect = Some(Arc::new(move |ctx, config| {
            let fut = f(ctx, config);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Sets a connect handler that takes the configuration document as a
    /// `T` (any serde type). A document that does not fit `T` is logged as
    /// an error and the handler is not called.
    pub fn on_connect_typed<T, F, Fut, R>(self, f: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Context, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        let f = Arc::new(f);
        self.on_connect(move |ctx, config| {
            let f = f.clone();
            async move {
                match serde_json::from_value::<T>(config) {
                    Ok(config) => f(ctx, config).await.into_handler_result(),
                    Err(e) => Err(format!(
                        "the configuration document does not fit the expected type: {e}"
                    )
                    .into()),
                }
            }
        })
    }

    /// Sets the publish handler (see [`Handler::on_publish`]).
    pub fn on_publish<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.publish = Some(Arc::new(move |ctx, message| {
            let fut = f(ctx, message);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Sets the query handler (see [`Handler::on_query`]).
    pub fn on_query<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Query) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.query = Some(Arc::new(move |query| {
            let fut = f(query);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Sets a query handler that takes the query parameters as a `P` (any
    /// serde type). Parameters that do not fit `P` are answered with a query
    /// error (`io.vantiq.connector.invalidParameters`) naming the problem, and
    /// the handler is not called.
    pub fn on_query_typed<P, F, Fut, R>(self, f: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        F: Fn(Query, P) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        let f = Arc::new(f);
        self.on_query(move |query: Query| {
            let f = f.clone();
            async move {
                match query.parse_params::<P>() {
                    Ok(params) => f(query, params).await.into_handler_result(),
                    Err(e) => query.error(e).await.map_err(Into::into),
                }
            }
        })
    }

    /// Sets the close handler (see [`Handler::on_close`]).
    pub fn on_close<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.close = Some(Arc::new(move |ctx| {
            let fut = f(ctx);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }
}

impl Handler for Handlers {
    fn on_connect(
        &self,
        ctx: Context,
        config: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let f = self.connect.clone();
        async move {
            match f {
                Some(f) => f(ctx, config).await,
                None => Ok(()),
            }
        }
    }

    fn on_publish(
        &self,
        ctx: Context,
        message: Value,
    ) -> impl Future<Output = HandlerResult> + Send {
        let f = self.publish.clone();
        async move {
            match f {
                Some(f) => f(ctx, message).await,
                None => {
                    tracing::debug!("publish received, but no publish handler is set");
                    Ok(())
                }
            }
        }
    }

    fn on_query(&self, query: Query) -> impl Future<Output = HandlerResult> + Send {
        let f = self.query.clone();
        async move {
            match f {
                Some(f) => f(query).await,
                None => {
                    let source = query.source().to_owned();
                    query.error(QueryError::no_query_handler(&source)).await?;
                    Ok(())
                }
            }
        }
    }

    fn on_close(&self, ctx: Context) -> impl Future<Output = HandlerResult> + Send {
        let f = self.close.clone();
        async move {
            match f {
                Some(f) => f(ctx).await,
                None => Ok(()),
            }
        }
    }
}
