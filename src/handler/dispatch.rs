//! The dispatcher of one source: reads the connection's event port and calls
//! the handler.
//!
//! Connect, publish and close handlers run here one at a time, in the order
//! the events came, so publishes are handled in the order they arrived, and
//! connect and close strictly alternate. Each query runs on a task of its
//! own (`query_tasks`: tasks of the dispatcher's, each kept for the next
//! query when its query is done), handed over in order too, so it sees the
//! configuration of the connect handler that ran before it, and nothing it
//! does holds up publishes or other queries. On tokio's one-threaded runtime
//! the dispatcher polls a query once itself and hands over only a query that
//! has to wait (what a handler does on that one thread holds up everything
//! there, whichever task it is on). The dispatcher owns the query tasks:
//! when the connection ends for good it stops the ones still running (the
//! connection has by then waited for them, up to the close timeout, and
//! answered their queries with an error). A panicking or failing handler is
//! logged; it takes neither the connection nor the process down.
//!
//! On the one-threaded runtime publishes and queries are also taken at once, on the
//! connection's task, when nothing is queued before them ([`at_once`], the
//! event port's `AtOnce`): the handler is polled once there, and only one
//! that has to wait is handed to the dispatcher, which finishes it before
//! the next event. The order is the same (a publish is taken at once only
//! when every event before it is finished); what a handler does holds up
//! that one thread whichever task it runs on, and the hand-over between the
//! two tasks was the largest part of the dispatcher's cost per publish.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;

use crate::panics;
use serde_json::Value;

use super::query::Query;
use super::query_error::QueryError;
use super::query_tasks::QueryTasks;
use super::{Context, Handler, HandlerResult, SharedHandler, SourceState};
use crate::connection::events::{
    polling_publish_at_once, AtOnce, Event, Events, QueryEvent, Started, Taken,
};
use crate::connection::reply::Reply;
use crate::connection::SourceConnection;
use crate::protocol::raw::RawObject;

/// A query that was polled once and has to wait.
type StartedQuery = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a query task is given: a query to start, or one started here.
enum QueryJob {
    New(Value, Reply),
    Started(StartedQuery),
}

/// Runs until the connection's port ends (the connection ended for good).
///
/// Generic over the handler's type (made through
/// `ErasedHandler::dispatcher`): the handlers are called as they are, where
/// calling them through the type-erased handler cloned the handler's handle
/// and boxed a new future for every publish, the largest part of the
/// dispatcher's own cost per publish (BENCHMARKS.md, issue 17's fifth
/// session). Queries go through the erased handler: they move to tasks of
/// their own.
pub(crate) async fn run<H: Handler>(
    handler: Arc<H>,
    conn: SourceConnection,
    state: Arc<SourceState>,
    mut events: Events,
) {
    let ctx = Context::new(conn, state);
    let erased: SharedHandler = handler.clone();
    let runner = {
        let (ctx, handler) = (ctx.clone(), erased.clone());
        move |job: QueryJob| {
            let (ctx, handler) = (ctx.clone(), handler.clone());
            async move {
                match job {
                    QueryJob::New(params, reply) => run_query(ctx, handler, params, reply).await,
                    QueryJob::Started(query) => query.await,
                }
            }
        }
    };
    // Made at the first query that needs a task (a source that is never
    // queried, or only with queries answered at once, keeps none).
    let mut queries = None;
    // On tokio's one-threaded runtime, whatever a handler does on the thread
    // holds up everything else there, whichever task it runs on; so a query
    // is polled here first, and only one that has to wait moves to a task of
    // its own. That saves a hand-over between two tasks per query (about
    // 10 % of the 64-in-flight rate). On the multi-threaded runtime every
    // query starts on its own task, so that a handler that blocks its thread
    // leaves publishes and other queries to the other threads.
    let one_thread = on_one_thread();
    // The publish handler's futures, each in a box made at the first
    // publish and used again for every later one (`in_box`): inline here,
    // they made every source's dispatcher larger by the size of the
    // handler's future (about 0.9 KiB for the echo, on every source, idle or
    // not); boxed anew for each publish, they cost an allocation per publish.
    // Connect, status and close handlers are rare: boxed at each call, so
    // their futures do not make the dispatcher larger either.
    let (mut publishing, mut publishing_raw) = (None, None);
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected { config } => {
                let (h, c) = (&handler, ctx.clone());
                let connect = Box::pin(async move { h.on_connect(c, *config).await });
                let result = guarded("connect", connect).await;
                ctx.state.set_rejection(result.err());
            }
            Event::PublishText { object } => {
                // Read here, where the handler runs, so that the tree is made
                // and dropped in one turn (see `Publishes::Text`).
                match serde_json::from_str::<Value>(&object) {
                    Ok(object) => {
                        let (h, c) = (&handler, ctx.clone());
                        let publish = async move { h.on_publish(c, object).await };
                        let _ = guarded("publish", in_box(&mut publishing, publish)).await;
                    }
                    Err(e) => ctx.connection().refuse_publish(&e),
                }
            }
            Event::PublishRaw { object } => {
                let (h, c) = (&handler, ctx.clone());
                let publish = async move { h.on_publish_raw(c, object).await };
                let _ = guarded("publish", in_box(&mut publishing_raw, publish)).await;
            }
            Event::Query(query) if one_thread => {
                // Polled once, with this task's waker.
                let mut query = Some(*query);
                let waiting = std::future::poll_fn(|cx| {
                    let query = query.take().map(|q| start_query(&ctx, &erased, q, cx));
                    Poll::Ready(query.flatten())
                })
                .await;
                if let Some(query) = waiting {
                    let tasks = queries.get_or_insert_with(|| QueryTasks::new(runner.clone()));
                    tasks.run(QueryJob::Started(query));
                }
            }
            Event::Query(query) => {
                let QueryEvent { params, reply } = *query;
                let tasks = queries.get_or_insert_with(|| QueryTasks::new(runner.clone()));
                tasks.run(QueryJob::New(params, reply));
            }
            Event::Status { status, body } => {
                let (h, c) = (&handler, ctx.clone());
                let status =
                    Box::pin(async move { h.on_status(c, status, body.map(|b| *b)).await });
                let _ = guarded("status", status).await;
            }
            Event::Closed => {
                let (h, c) = (&handler, ctx.clone());
                let _ = guarded("close", Box::pin(async move { h.on_close(c).await })).await;
            }
            // A publish's handler started on the connection's task (guarded
            // there).
            Event::Started(Started(started)) => started.await,
            // A query started there, waiting: to a task of its own.
            Event::QueryStarted(Started(query)) => {
                let tasks = queries.get_or_insert_with(|| QueryTasks::new(runner.clone()));
                tasks.run(QueryJob::Started(query));
            }
        }
    }
    // The connection has ended for good: the answers of what still runs
    // would be refused.
    if let Some(mut queries) = queries {
        let running = queries.running();
        if running > 0 {
            tracing::debug!(running, "stopping the query handlers still running");
        }
        queries.shutdown().await;
    }
}

/// The publishes and queries of a source taken at once on its connection's
/// task (see the module docs): made for the one-threaded runtime by
/// `ErasedHandler::at_once`.
pub(crate) fn at_once<H: Handler>(handler: Arc<H>, ctx: Context) -> Box<dyn AtOnce> {
    // Closures that capture nothing (no room taken on every source): they
    // only give the futures' types a name for the boxes.
    let tree = |handler: Arc<H>, ctx: Context, object: Value| async move {
        let _ = guarded("publish", async { handler.on_publish(ctx, object).await }).await;
    };
    let raw = |handler: Arc<H>, ctx: Context, object: RawObject| async move {
        let _ = guarded("publish", async {
            handler.on_publish_raw(ctx, object).await
        })
        .await;
    };
    Box::new(Inline::new(handler, ctx, tree, raw))
}

/// [`at_once`]'s publishes: each handler's future in one box used again
/// (as the dispatcher's), moved to the dispatcher when it has to wait.
struct Inline<H, T, TF, R, RF> {
    handler: Arc<H>,
    ctx: Context,
    tree: T,
    tree_slot: Option<Pin<Box<TF>>>,
    raw: R,
    raw_slot: Option<Pin<Box<RF>>>,
}

impl<H, T, TF, R, RF> Inline<H, T, TF, R, RF>
where
    T: Fn(Arc<H>, Context, Value) -> TF,
    R: Fn(Arc<H>, Context, RawObject) -> RF,
{
    fn new(handler: Arc<H>, ctx: Context, tree: T, raw: R) -> Self {
        Inline {
            handler,
            ctx,
            tree,
            tree_slot: None,
            raw,
            raw_slot: None,
        }
    }
}

impl<H, T, TF, R, RF> AtOnce for Inline<H, T, TF, R, RF>
where
    H: Handler,
    T: Fn(Arc<H>, Context, Value) -> TF + Send,
    TF: Future<Output = ()> + Send + 'static,
    R: Fn(Arc<H>, Context, RawObject) -> RF + Send,
    RF: Future<Output = ()> + Send + 'static,
{
    fn take(&mut self, event: Event) -> Taken {
        match event {
            Event::PublishText { object } => match serde_json::from_str::<Value>(&object) {
                Ok(object) => {
                    let publish = (self.tree)(self.handler.clone(), self.ctx.clone(), object);
                    poll_once(&mut self.tree_slot, publish)
                }
                Err(e) => {
                    self.ctx.connection().refuse_publish(&e);
                    Taken::Done
                }
            },
            Event::PublishRaw { object } => {
                let publish = (self.raw)(self.handler.clone(), self.ctx.clone(), object);
                poll_once(&mut self.raw_slot, publish)
            }
            Event::Query(query) => {
                let handler: SharedHandler = self.handler.clone();
                match start_query(&self.ctx, &handler, *query, &mut noop_context()) {
                    None => Taken::Done,
                    Some(waiting) => Taken::QueryWaiting(Started(waiting)),
                }
            }
            event => Taken::Declined(event),
        }
    }
}

/// Polls `fut` once, in `slot`'s box: done, or the box handed over to wait.
///
/// Polled with a waker that does nothing: a future that has to wait is
/// polled again by the dispatcher (which the hand-over wakes) and registers
/// the dispatcher's waker then, as a future polled again without a wake-up
/// must.
fn poll_once<F: Future<Output = ()> + Send + 'static>(
    slot: &mut Option<Pin<Box<F>>>,
    fut: F,
) -> Taken {
    let fut = in_box(slot, fut);
    match polling_publish_at_once(|| fut.poll(&mut noop_context())) {
        Poll::Ready(()) => Taken::Done,
        Poll::Pending => match slot.take() {
            Some(waiting) => Taken::Waiting(Started(waiting)),
            None => Taken::Done,
        },
    }
}

/// A poll's context whose waker does nothing (see [`poll_once`]).
fn noop_context() -> std::task::Context<'static> {
    std::task::Context::from_waker(std::task::Waker::noop())
}

/// Whether the SDK runs on tokio's one-threaded runtime (where handlers are
/// first polled where their events arrive: the module docs).
pub(crate) fn on_one_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|rt| rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// Starts `query`: polls its `run_query` once with `cx`; `None` when it
/// finished, the started query when it has to wait (for a task of its own).
fn start_query(
    ctx: &Context,
    handler: &SharedHandler,
    query: QueryEvent,
    cx: &mut std::task::Context<'_>,
) -> Option<StartedQuery> {
    let QueryEvent { params, reply } = query;
    let mut started: StartedQuery =
        Box::pin(run_query(ctx.clone(), handler.clone(), params, reply));
    started.as_mut().poll(cx).is_pending().then_some(started)
}

/// `fut` in `slot`'s box (made the first time; the future it held, finished,
/// is dropped in place).
fn in_box<F: Future>(slot: &mut Option<Pin<Box<F>>>, fut: F) -> Pin<&mut F> {
    let boxed = match slot {
        Some(boxed) => {
            boxed.set(fut);
            boxed
        }
        None => slot.insert(Box::pin(fut)),
    };
    boxed.as_mut()
}

/// Runs a handler future, logging its error or panic; returns the reason
/// when it failed. Callers make the handler's call inside `fut` (an `async`
/// block around it), so that a handler that panics before it returns its
/// future (a closure's code before its `async` block) is caught too.
async fn guarded(
    kind: &'static str,
    fut: impl Future<Output = HandlerResult>,
) -> Result<(), String> {
    match catch(fut).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(handler = kind, error = %e, "handler returned an error");
            Err(e.to_string())
        }
        Err(panic) => {
            let message = report_panic(kind, &panic);
            Err(format!("the {kind} handler panicked: {message}"))
        }
    }
}

/// Polls a handler with its panics caught (and marked as the SDK's to
/// report: see `panics`).
async fn catch(
    fut: impl Future<Output = HandlerResult>,
) -> Result<HandlerResult, Box<dyn Any + Send>> {
    let fut = std::pin::pin!(fut);
    AssertUnwindSafe(panics::Guarded(fut)).catch_unwind().await
}

/// The SDK's one line about a panicking handler; returns the panic's text.
fn report_panic(kind: &'static str, panic: &Box<dyn Any + Send>) -> String {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    };
    let caught = panics::take_caught();
    match caught.location {
        Some(at) => {
            tracing::error!(handler = kind, panic = %message, %at, "handler panicked (caught: the connector goes on)")
        }
        None => {
            tracing::error!(handler = kind, panic = %message, "handler panicked (caught: the connector goes on)")
        }
    }
    if let Some(backtrace) = caught.backtrace {
        eprintln!("backtrace of the handler's panic (RUST_BACKTRACE is set):\n{backtrace}");
    }
    message
}

/// Runs one query and makes sure it gets a final answer.
async fn run_query(ctx: Context, handler: SharedHandler, params: Value, reply: Reply) {
    let deadline = ctx.connection().settings().query_deadline;
    let (query, guard) = Query::new(ctx, params, reply);
    let waiting = &guard;
    let work = async move {
        // Why the handler failed, if it did; `None` when it returned normally
        // (whether or not it answered).
        let failure = match catch(handler.query(query)).await {
            Ok(Ok(())) => None,
            // The error the handler returned is the answer, as it is.
            Ok(Err(e)) => Some(match e.downcast::<QueryError>() {
                Ok(error) => *error,
                Err(e) => {
                    tracing::error!(error = %e, "query handler returned an error");
                    QueryError::handler_failed(&e.to_string())
                }
            }),
            Err(panic) => Some(QueryError::handler_panicked(&report_panic("query", &panic))),
        };
        // Wait for the final answer, wherever the query went; if every
        // handle on it is dropped first, nobody can answer it any more.
        if waiting.settled().await {
            None
        } else {
            Some(failure.unwrap_or_else(|| {
                tracing::warn!(
                    "the query handler finished without answering: answering with an error"
                );
                QueryError::no_answer()
            }))
        }
    };
    let unanswered = match deadline {
        None => work.await,
        Some(deadline) => match tokio::time::timeout(deadline, work).await {
            Ok(unanswered) => unanswered,
            Err(_) => {
                tracing::warn!(
                    ?deadline,
                    "the query was not answered within its deadline: answering with an error"
                );
                Some(QueryError::deadline(deadline.as_millis()))
            }
        },
    };
    if let Some(error) = unanswered {
        guard.fail(&error);
    }
}
