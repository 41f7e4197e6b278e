//! The event port: what a connection hands to the handler runtime above it.
//!
//! The connection task sends [`Event`]s through an [`EventSender`]; the
//! runtime (the SDK's dispatcher, or a user's pull loop) reads them from
//! [`Events`]. Sending never waits: a connection task that waited for a slow
//! handler would stop reading acknowledgements, and a handler waiting for
//! room in the outbox (which only acknowledgements free) would then wait
//! forever. Instead the connection task stops reading new frames while
//! [`BACKLOG_LIMIT`] events are unfinished (and meanwhile writes without
//! waiting for acknowledgements), so the queue stays bounded.
//!
//! An event counts as unfinished from its sending until the reader asks for
//! the next one (events taken at once, below, and `Event::QueryStarted` are
//! not counted).
//!
//! A runtime may also take events at once, on the connection's task
//! ([`AtOnce`], given to [`port`]): an event that nothing unfinished is
//! queued before goes to it first, and only what it declines, or a handler
//! it started that has to wait ([`Event::Started`]), is queued. The SDK's
//! dispatcher does this for publishes and queries on tokio's one-threaded
//! runtime, where
//! what a handler does holds up the thread whichever task it runs on: it
//! saves the hand-over between two tasks per publish and per query
//! (BENCHMARKS.md, issue 17's sixth session). The connection task still
//! never waits for a handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};

use super::reply::Reply;
use crate::protocol::message::Publishes;
use crate::protocol::raw::RawObject;

/// A query's event.
#[derive(Debug)]
pub(crate) struct QueryEvent {
    /// The `WITH` parameters.
    pub(crate) params: Value,
    /// Where its answers go.
    pub(crate) reply: Reply,
}

/// What a connection tells the handler runtime.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection was made and configured with `config`.
    Connected {
        /// The configuration document.
        config: Box<Value>,
    },
    /// The server published `object`, handed over as its checked text (the
    /// port was made with [`Publishes::Text`]): the runtime reads it into a
    /// tree just before the handler runs.
    PublishText {
        /// The published object's JSON text.
        object: Box<str>,
    },
    /// The server published `object`, handed over as its text (the port
    /// was made with [`Publishes::Raw`]).
    PublishRaw {
        /// The published object.
        object: RawObject,
    },
    /// A query, to be answered through its `reply`. Boxed, as every value
    /// here larger than a pointer or two: the event queue allocates room
    /// for events 32 at a time, and at 24 bytes an event those blocks stay
    /// under 1 KiB, which glibc's allocator serves from its per-thread cache;
    /// larger ones went down its slow path (and had it consolidate its free
    /// lists) every 32 publishes. Every source's queue also holds one such
    /// block from the start.
    Query(Box<QueryEvent>),
    /// The server reported an error status after connecting (about a
    /// notification it refused, say).
    Status {
        /// The status code (300 or more).
        status: u16,
        /// The server's body (usually a list of `{code, message}`), if any.
        body: Option<Box<Value>>,
    },
    /// The connection ended.
    Closed,
    /// A handler that [`AtOnce`] started on the connection's task and that
    /// has to wait: the runtime finishes it before the next event.
    Started(Started),
    /// A query's handler that [`AtOnce`] started on the connection's task
    /// and that has to wait: the runtime moves it to a task of its own. Not
    /// counted among the unfinished events (it orders nothing).
    QueryStarted(Started),
}

/// A handler's future, started and waiting (see [`Event::Started`]).
pub(crate) struct Started(pub(crate) Pin<Box<dyn Future<Output = ()> + Send>>);

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Started")
    }
}

/// A runtime's way to take an event at once, on the connection's task,
/// when nothing unfinished is queued before it (see the module docs). It
/// must not wait: a handler it starts is polled once, and handed back as
/// [`Taken::Waiting`] if it has to wait.
pub(crate) trait AtOnce: Send {
    /// Takes `event`, or gives it back to be queued.
    fn take(&mut self, event: Event) -> Taken;
}

thread_local! {
    /// Whether a publish's handler is being polled at once on this thread's
    /// connection task (see [`polling_publish_at_once`]).
    static ON_CONNECTION_TASK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `poll` (an [`AtOnce`]'s poll of a publish's handler) marked as on
/// the connection's task: a producer there does not yield to let the
/// connection task write, as it is that task, and writes right after its
/// read burst (yielding would only hand the handler over). Not for a query's
/// handler: one that sends a stream of notifications yields as it would
/// elsewhere, and moves to a task of its own (so the connection task writes
/// while what the handler made is still in the cache).
pub(crate) fn polling_publish_at_once<R>(poll: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_CONNECTION_TASK.with(|on| on.set(self.0));
        }
    }
    let _restore = Restore(ON_CONNECTION_TASK.with(|on| on.replace(true)));
    poll()
}

/// Whether the caller is a publish's handler polled at once on the
/// connection's task (see [`polling_publish_at_once`]).
pub(crate) fn on_connection_task() -> bool {
    ON_CONNECTION_TASK.with(std::cell::Cell::get)
}

/// What [`AtOnce::take`] did with an event.
pub(crate) enum Taken {
    /// Handled, and finished.
    Done,
    /// Started, and waiting: queued as [`Event::Started`].
    Waiting(Started),
    /// A query's handler started, and waiting: queued as
    /// [`Event::QueryStarted`].
    QueryWaiting(Started),
    /// Not taken: queued as it is.
    Declined(Event),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `PublishText` at once by its text: `done`, `wait` (started,
    /// waiting) or `query` (a query started, waiting); declines the rest.
    struct ByText(Arc<std::sync::Mutex<Vec<String>>>);

    impl AtOnce for ByText {
        fn take(&mut self, event: Event) -> Taken {
            let Event::PublishText { object } = event else {
                return Taken::Declined(event);
            };
            polling_publish_at_once(|| assert!(on_connection_task()));
            assert!(!on_connection_task());
            self.0.lock().unwrap().push(object.to_string());
            let started = || Started(Box::pin(async {}));
            match &*object {
                "wait" => Taken::Waiting(started()),
                "query" => Taken::QueryWaiting(started()),
                _ => Taken::Done,
            }
        }
    }

    fn text(s: &str) -> Event {
        Event::PublishText { object: s.into() }
    }

    #[tokio::test]
    async fn events_are_taken_at_once_only_with_nothing_unfinished_before_them() {
        use futures_util::FutureExt;
        let taken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, mut rx) = port(Publishes::Text, Some(Box::new(ByText(taken.clone()))));
        let queued = |rx: &mut Events| rx.recv().now_or_never().flatten();
        assert!(!on_connection_task());
        tx.send(text("a"));
        // A started query that waits orders nothing: not counted.
        tx.send(text("query"));
        // It does not end the burst, but the connection task yields once
        // after the turn, so that the runtime moves it to a task soon.
        assert!(!tx.should_catch_up());
        assert!(tx.take_catch_up() && !tx.take_catch_up());
        tx.send(Event::Closed);
        assert!(tx.should_catch_up());
        tx.send(text("b"));
        assert_eq!(*taken.lock().unwrap(), ["a", "query"]);
        assert!(tx.take_catch_up() && !tx.should_catch_up());
        // Still behind: the connection task yields each turn until caught up.
        assert!(tx.take_catch_up());
        assert!(matches!(queued(&mut rx), Some(Event::QueryStarted(_))));
        assert!(matches!(queued(&mut rx), Some(Event::Closed)));
        assert!(matches!(queued(&mut rx), Some(Event::PublishText { object }) if &*object == "b"));
        assert!(queued(&mut rx).is_none());
        assert!(!tx.take_catch_up());
        tx.send(text("wait"));
        tx.send(text("c"));
        assert_eq!(*taken.lock().unwrap(), ["a", "query", "wait"]);
        assert!(matches!(queued(&mut rx), Some(Event::Started(_))));
        assert!(matches!(queued(&mut rx), Some(Event::PublishText { object }) if &*object == "c"));
        assert!(queued(&mut rx).is_none());
        tx.send(text("d"));
        assert_eq!(*taken.lock().unwrap(), ["a", "query", "wait", "d"]);
        assert!(!tx.is_full());
    }

    #[test]
    fn an_event_is_three_words() {
        // See `Event::Query`: 32 of them and the block's header under 1 KiB.
        assert!(
            std::mem::size_of::<Event>() <= 24,
            "{}",
            std::mem::size_of::<Event>()
        );
    }
}

/// Unfinished events at which the connection task stops reading the socket
/// (TCP then slows the server down).
pub(crate) const BACKLOG_LIMIT: usize = 1024;

/// The count of unfinished events, and the wake-up of a paused reader.
#[derive(Default)]
struct Backlog {
    count: AtomicUsize,
    below_limit: Notify,
}

/// The connection task's end of the port.
pub(crate) struct EventSender {
    tx: mpsc::UnboundedSender<Event>,
    backlog: Arc<Backlog>,
    /// Fails when the reading end is gone (the runtime has finished).
    reader_gone: oneshot::Receiver<()>,
    /// How the runtime takes published objects.
    publishes: Publishes,
    /// The runtime's way to take events at once, if it has one. Only the
    /// connection task locks it (the lock makes the sender `Sync`).
    at_once: Option<Mutex<Box<dyn AtOnce>>>,
    /// See [`EventSender::should_catch_up`].
    catch_up: std::sync::atomic::AtomicBool,
    /// A started query was queued since the last
    /// [`EventSender::take_catch_up`].
    query_handed: std::sync::atomic::AtomicBool,
}

/// The handler runtime's end of the port.
pub(crate) struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
    backlog: Arc<Backlog>,
    /// Whether an event was handed out and not yet finished.
    holding: bool,
    _alive: oneshot::Sender<()>,
}

/// A new port, for a runtime that takes published objects as `publishes`
/// says, and events at once through `at_once` if given.
pub(crate) fn port(
    publishes: Publishes,
    at_once: Option<Box<dyn AtOnce>>,
) -> (EventSender, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (alive, reader_gone) = oneshot::channel();
    let backlog = Arc::new(Backlog::default());
    (
        EventSender {
            tx,
            backlog: backlog.clone(),
            reader_gone,
            publishes,
            at_once: at_once.map(Mutex::new),
            catch_up: Default::default(),
            query_handed: Default::default(),
        },
        Events {
            rx,
            backlog,
            holding: false,
            _alive: alive,
        },
    )
}

impl EventSender {
    /// Hands an event to the runtime: to its [`AtOnce`] first when nothing
    /// unfinished is queued before it (and the runtime still reads).
    pub(crate) fn send(&self, event: Event) {
        let event = match &self.at_once {
            Some(at_once)
                if self.backlog.count.load(Ordering::Acquire) == 0 && !self.tx.is_closed() =>
            {
                // A panic inside is the handler's, caught there; the lock is
                // only ever taken here.
                let mut at_once = at_once.lock().unwrap_or_else(|e| e.into_inner());
                match at_once.take(event) {
                    Taken::Done => return,
                    Taken::Waiting(started) => Event::Started(started),
                    Taken::QueryWaiting(started) => {
                        // Not counted: it orders nothing (the query has
                        // started, and runs beside later events anyway), so
                        // later events are still taken at once. The
                        // connection task yields after this turn, so that
                        // the runtime moves it to a task of its own soon.
                        if self.tx.send(Event::QueryStarted(started)).is_ok() {
                            self.query_handed.store(true, Ordering::Relaxed);
                        }
                        return;
                    }
                    Taken::Declined(event) => event,
                }
            }
            _ => event,
        };
        let before = self.backlog.count.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(event).is_err() {
            self.backlog.count.fetch_sub(1, Ordering::AcqRel);
        } else if before == 0 && self.at_once.is_some() {
            self.catch_up.store(true, Ordering::Relaxed);
        }
    }

    /// How the runtime takes published objects.
    pub(crate) fn publishes(&self) -> Publishes {
        self.publishes
    }

    /// Whether an event was queued (taking events at once, with nothing
    /// unfinished before it) since the last [`EventSender::take_catch_up`]:
    /// the connection task then ends its read burst, so that the runtime
    /// catches up and takes events at once again as soon as it can.
    pub(crate) fn should_catch_up(&self) -> bool {
        self.catch_up.load(Ordering::Relaxed)
    }

    /// Whether the connection task should yield before its next turn, and
    /// clears [`EventSender::should_catch_up`]: while events are queued and
    /// the runtime takes events at once. On the one-threaded runtime the
    /// runtime's task runs only when the connection task yields; without it,
    /// later events would queue behind the first for as long as the socket
    /// has frames (the runtime's task, preempted by tokio's budget, does not
    /// catch up on its own).
    /// It also holds after a turn that queued a started query (which is not
    /// counted: see [`Event::QueryStarted`]), so that the runtime moves it to
    /// a task of its own within a turn.
    pub(crate) fn take_catch_up(&self) -> bool {
        let first = self.catch_up.swap(false, Ordering::Relaxed);
        let query = self.query_handed.swap(false, Ordering::Relaxed);
        first || query || (self.at_once.is_some() && self.backlog.count.load(Ordering::Acquire) > 0)
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

    /// No more events: waits until the runtime has finished with every event
    /// sent (and dropped its end).
    pub(crate) async fn finish(self) {
        drop(self.tx);
        let _ = self.reader_gone.await;
    }
}

impl Events {
    /// The next event; `None` when the connection has ended for good. The
    /// event handed out before counts as finished from this call on.
    pub(crate) async fn recv(&mut self) -> Option<Event> {
        self.finish_held();
        let event = self.rx.recv().await;
        // `Event::QueryStarted` is not counted (see `EventSender::send`).
        self.holding = event
            .as_ref()
            .is_some_and(|e| !matches!(e, Event::QueryStarted(_)));
        event
    }

    fn finish_held(&mut self) {
        if std::mem::take(&mut self.holding)
            && self.backlog.count.fetch_sub(1, Ordering::AcqRel) == BACKLOG_LIMIT
        {
            self.backlog.below_limit.notify_one();
        }
    }
}
