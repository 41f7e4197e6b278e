//! Handlers made of async closures: [`Handlers`], the closest match to
//! Python's `configure_handlers(close, connect, publish, query)`.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::query::Query;
use super::{BoxFuture, Context, Handler, HandlerResult, IntoHandlerResult};
use crate::protocol::raw::RawObject;

type ConnectFn = Arc<dyn Fn(Context, Value) -> BoxFuture + Send + Sync>;
type PublishFn = Arc<dyn Fn(Context, Value) -> BoxFuture + Send + Sync>;
type PublishRawFn = Arc<dyn Fn(Context, RawObject) -> BoxFuture + Send + Sync>;
type QueryFn = Arc<dyn Fn(Query) -> BoxFuture + Send + Sync>;
type CloseFn = Arc<dyn Fn(Context) -> BoxFuture + Send + Sync>;
type StatusFn = Arc<dyn Fn(Context, u16, Option<Value>) -> BoxFuture + Send + Sync>;

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
    publish_raw: Option<PublishRawFn>,
    query: Option<QueryFn>,
    close: Option<CloseFn>,
    status: Option<StatusFn>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers")
            .field("connect", &self.connect.is_some())
            .field("publish", &self.publish.is_some())
            .field("publish_raw", &self.publish_raw.is_some())
            .field("query", &self.query.is_some())
            .field("close", &self.close.is_some())
            .field("status", &self.status.is_some())
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
    /// an error naming the field that failed, the handler is not called, and
    /// the reason is kept for the source ([`Context::config_rejection`]), so
    /// that later queries can say why the source is not working.
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
                match super::parse_value::<T>(&config) {
                    Ok(config) => f(ctx, config).await.into_handler_result(),
                    Err(e) => Err(format!(
                        "the configuration document does not fit the expected type: {e}"
                    )
                    .into()),
                }
            }
        })
    }

    /// Sets the publish handler (see [`Handler::on_publish`]); replaces one
    /// set with [`Handlers::on_publish_raw`].
    pub fn on_publish<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.publish_raw = None;
        self.publish = Some(Arc::new(move |ctx, message| {
            let fut = f(ctx, message);
            Box::pin(async move { fut.await.into_handler_result() })
        }));
        self
    }

    /// Sets a publish handler that takes each published object as its text
    /// (see [`Handler::on_publish_raw`]): for connectors that only forward
    /// JSON, no tree is built. The text is checked to be a JSON object; a
    /// publish of anything else is logged and skipped. Replaces a handler
    /// set with [`Handlers::on_publish`].
    ///
    /// ```
    /// use vantiq_connector_sdk::{Context, Handlers, RawObject};
    ///
    /// // Every publish goes out again as a notification, byte for byte.
    /// let handlers = Handlers::new().on_publish_raw(|ctx: Context, message: RawObject| async move {
    ///     ctx.connection().send_raw_notification(&message).await
    /// });
    /// # let _ = handlers;
    /// ```
    pub fn on_publish_raw<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context, RawObject) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.publish = None;
        self.publish_raw = Some(Arc::new(move |ctx, message| {
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

    /// Sets the handler of the error statuses the server reports after
    /// connecting (see [`Handler::on_status`]; Java's HTTP handler).
    pub fn on_status<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Context, u16, Option<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult,
    {
        self.status = Some(Arc::new(move |ctx, status, body| {
            let fut = f(ctx, status, body);
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

    fn raw_publishes(&self) -> bool {
        self.publish_raw.is_some()
    }

    fn on_publish_raw(
        &self,
        ctx: Context,
        message: RawObject,
    ) -> impl Future<Output = HandlerResult> + Send {
        let (raw, tree) = (self.publish_raw.clone(), self.publish.clone());
        async move {
            match (raw, tree) {
                (Some(f), _) => f(ctx, message).await,
                (None, Some(f)) => f(ctx, message.to_value()).await,
                (None, None) => Ok(()),
            }
        }
    }

    fn on_query(&self, query: Query) -> impl Future<Output = HandlerResult> + Send {
        let f = self.query.clone();
        async move {
            match f {
                Some(f) => f(query).await,
                None => super::answer_without_handler(query).await,
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

    fn on_status(
        &self,
        ctx: Context,
        status: u16,
        body: Option<Value>,
    ) -> impl Future<Output = HandlerResult> + Send {
        let f = self.status.clone();
        async move {
            match f {
                Some(f) => f(ctx, status, body).await,
                None => Ok(()),
            }
        }
    }
}
