//! The pull style: the same events as the handlers, read in a loop
//! (`while let Some(event) = events.next().await`), as with async-nats and
//! rumqttc.
//!
//! It is a [`Handler`] that forwards every call into a bounded channel, so
//! it keeps every guarantee of the handler runtime: events of a source come
//! in order (a query after the connects and publishes before it), a
//! [`Query`] taken from the stream and dropped unanswered gets an error
//! answer, and a loop that falls behind slows the connection's reading down
//! (TCP then slows the server) instead of growing memory.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Context, Handler, HandlerResult, Query};

/// One event of a source, from an [`EventStream`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The source is connected and configured with `config` (see
    /// [`Handler::on_connect`]).
    Connected {
        /// The source.
        ctx: Context,
        /// Its configuration document.
        config: Value,
    },
    /// The server published `message` to the source.
    Publish {
        /// The source.
        ctx: Context,
        /// The published object.
        message: Value,
    },
    /// A query, to be answered through it (dropped unanswered, it gets an
    /// error answer).
    Query(Query),
    /// The source's connection ended (see [`Handler::on_close`]).
    Closed {
        /// The source.
        ctx: Context,
    },
    /// The server reported an error status (see [`Handler::on_status`]).
    Status {
        /// The source.
        ctx: Context,
        /// The status code (300 or more).
        status: u16,
        /// The server's body, if any.
        body: Option<Value>,
    },
}

/// The events of every source the [`EventHandler`] is given to, in the order
/// of each source.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Event>,
}

impl EventStream {
    /// The next event; `None` once every connection has ended for good.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// The handler that feeds an [`EventStream`]: give it to
/// [`crate::ConnectorSetBuilder::handler`].
#[derive(Debug, Clone)]
pub struct EventHandler {
    tx: mpsc::Sender<Event>,
}

/// A handler and the stream of its events; at most `capacity` events wait
/// in the stream before the connections stop reading.
///
/// ```no_run
/// use vantiq_connector_sdk::{event_stream, ConnectorSet, Event};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let (handler, mut events) = event_stream(64);
/// let set = ConnectorSet::from_server_config()?.handler(handler).build()?;
/// let running = tokio::spawn({
///     let set = set.clone();
///     async move { set.run().await }
/// });
/// while let Some(event) = events.next().await {
///     match event {
///         Event::Publish { ctx, message } => {
///             ctx.connection().send_notification(&message).await?;
///         }
///         Event::Query(query) => query.complete(&serde_json::json!({"ok": true})).await?,
///         _ => {}
///     }
/// }
/// running.await??;
/// # Ok(()) }
/// ```
pub fn event_stream(capacity: usize) -> (EventHandler, EventStream) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (EventHandler { tx }, EventStream { rx })
}

impl EventHandler {
    async fn forward(&self, event: Event) -> HandlerResult {
        self.tx
            .send(event)
            .await
            .map_err(|_| "the event stream was dropped".into())
    }
}

impl Handler for EventHandler {
    async fn on_connect(&self, ctx: Context, config: Value) -> HandlerResult {
        self.forward(Event::Connected { ctx, config }).await
    }

    async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
        self.forward(Event::Publish { ctx, message }).await
    }

    async fn on_query(&self, query: Query) -> HandlerResult {
        self.forward(Event::Query(query)).await
    }

    async fn on_close(&self, ctx: Context) -> HandlerResult {
        self.forward(Event::Closed { ctx }).await
    }

    async fn on_status(&self, ctx: Context, status: u16, body: Option<Value>) -> HandlerResult {
        self.forward(Event::Status { ctx, status, body }).await
    }
}
