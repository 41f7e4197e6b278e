//! The dispatch task of one source: runs its handlers.
//!
//! Connect, publish and close handlers run here one at a time, in the order
//! the connection task sent the events, so publishes are handled in the
//! order they arrived, and connect and close strictly alternate. Each query
//! that has to wait goes on in a task of its own (a slow query holds up
//! nothing else; it is polled once here first, so most queries need no task),
//! started in order too, so it sees the configuration of the connect handler that ran
//! before it. A panicking or failing handler is logged; it takes neither the
//! connection nor the process down.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

use super::SourceConnection;
use crate::handler::{Context, HandlerResult, SharedHandler};
use crate::query::{AnswerSink, Query, QueryError};

/// What the connection task asks the dispatch task to do.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection was made: run the connect handler.
    Connected { config: Value },
    /// Run the publish handler.
    Publish { object: Value },
    /// Start a query task.
    Query {
        params: Value,
        reply_address: Arc<str>,
        epoch: u64,
        /// When its frame arrived, if queries are timed (metrics on).
        received: Option<std::time::Instant>,
    },
    /// The connection ended: run the close handler.
    Closed,
}

/// Events handed to the dispatch task and not yet handled, at which the
/// connection task stops reading the socket (TCP then slows the server).
pub(crate) const BACKLOG_LIMIT: usize = 1024;

/// The queue from the connection task to the dispatch task.
///
/// Sending never waits: a connection task that waited for a slow handler
/// would stop reading acknowledgements, and a handler waiting for room in the
/// outbox (which only acknowledgements free) would then wait forever.
/// Instead the connection task stops reading new frames while the backlog is
/// at [`BACKLOG_LIMIT`] (and meanwhile writes without waiting for
/// acknowledgements), so the queue stays bounded.
pub(crate) struct EventQueue {
    tx: mpsc::UnboundedSender<Event>,
    backlog: Arc<Backlog>,
}

/// The count of queued events, and the wake-up of a paused reader.
#[derive(Default)]
pub(crate) struct Backlog {
    count: AtomicUsize,
    below_limit: Notify,
}

impl EventQueue {
    /// The queue, its receiving end, and the backlog the dispatch task
    /// counts down.
    pub(crate) fn new() -> (EventQueue, mpsc::UnboundedReceiver<Event>, Arc<Backlog>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::default());
        let queue = EventQueue {
            tx,
            backlog: backlog.clone(),
        };
        (queue, rx, backlog)
    }

    /// Queues an event for the dispatch task.
    pub(crate) fn send(&self, event: Event) {
        self.backlog.count.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(event).is_err() {
            self.backlog.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Whether the connection task should stop reading for now.
    pub(crate) fn is_full(&self) -> bool {
        self.backlog.count.load(Ordering::Acquire) >= BACKLOG_LIMIT
    }

    /// Completes when the backlog has gone below the limit (at once if it
    /// did since the last call).
    pub(crate) async fn below_limit(&self) {
        self.backlog.below_limit.notified().await;
    }
}

impl Backlog {
    /// One event handled.
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == BACKLOG_LIMIT {
            self.below_limit.notify_one();
        }
    }
}

/// Runs until the connection task drops its queue.
pub(crate) async fn run(
    conn: SourceConnection,
    handler: Option<SharedHandler>,
    mut events: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<Backlog>,
) {
    while let Some(event) = events.recv().await {
        handle(&conn, &handler, event).await;
        backlog.done();
    }
}

/// Handles one event.
async fn handle(conn: &SourceConnection, handler: &Option<SharedHandler>, event: Event) {
    match event {
        Event::Connected { config } => {
            if let Some(h) = handler {
                let ctx = Context::new(conn.clone());
                guarded("connect", h.clone().connect(ctx, config)).await;
            }
        }
        Event::Publish { object } => match handler {
            Some(h) => {
                let ctx = Context::new(conn.clone());
                guarded("publish", h.clone().publish(ctx, object)).await;
            }
            None => tracing::debug!("publish ignored: no handlers"),
        },
        Event::Query {
            params,
            reply_address,
            epoch,
            received,
        } => {
            let sink = AnswerSink {
                conn: conn.inner().clone(),
                epoch,
                reply_address,
                received,
            };
            // Poll the query once here: most handlers answer without waiting
            // on anything, and then no task is spawned. One that waits goes
            // on in a task of its own, so it holds up nothing else.
            let mut query = Box::pin(run_query(conn.clone(), handler.clone(), params, sink));
            let finished = poll_fn(|cx| Poll::Ready(query.as_mut().poll(cx).is_ready())).await;
            if !finished {
                tokio::spawn(query.in_current_span());
            }
        }
        Event::Closed => {
            if let Some(h) = handler {
                guarded("close", h.clone().close(Context::new(conn.clone()))).await;
            }
        }
    }
}

/// Runs a handler future, logging its error or panic.
async fn guarded(kind: &'static str, fut: impl std::future::Future<Output = HandlerResult>) {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(handler = kind, error = %e, "handler returned an error"),
        Err(panic) => {
            tracing::error!(handler = kind, panic = %panic_message(&panic), "handler panicked")
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// Runs one query and makes sure it gets a final answer.
async fn run_query(
    conn: SourceConnection,
    handler: Option<SharedHandler>,
    params: Value,
    sink: AnswerSink,
) {
    let (query, guard, done) = Query::new(conn, params, sink);
    let deadline = query.connection().inner().settings.query_deadline;
    let work = async move {
        // Why the handler failed, if it did; `None` when it returned normally
        // (whether or not it answered).
        let failure = match handler {
            Some(h) => match AssertUnwindSafe(h.query(query)).catch_unwind().await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "query handler returned an error");
                    Some(QueryError::handler_failed(&e.to_string()))
                }
                Err(panic) => {
                    let message = panic_message(&panic);
                    tracing::error!(panic = %message, "query handler panicked");
                    Some(QueryError::handler_panicked(&message))
                }
            },
            None => {
                let error = QueryError::no_query_handler(query.source());
                if let Err(e) = query.error(error).await {
                    tracing::debug!(error = %e, "no-handler answer not sent");
                }
                None
            }
        };
        // Wait for the final answer, wherever the query went; if every
        // handle on it is dropped first, nobody can answer it any more.
        match done.await {
            Ok(()) => None,
            Err(_) => Some(failure.unwrap_or_else(QueryError::no_answer)),
        }
    };
    let unanswered = match deadline {
        None => work.await,
        Some(deadline) => match tokio::time::timeout(deadline, work).await {
            Ok(unanswered) => unanswered,
            Err(_) => Some(QueryError::deadline(deadline.as_millis())),
        },
    };
    if let Some(error) = unanswered {
        guard.fail(&error);
    }
}
