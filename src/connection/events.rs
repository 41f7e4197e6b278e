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
//! the next one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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
}

#[cfg(test)]
mod tests {
    use super::*;

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
/// says.
pub(crate) fn port(publishes: Publishes) -> (EventSender, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (alive, reader_gone) = oneshot::channel();
    let backlog = Arc::new(Backlog::default());
    (
        EventSender {
            tx,
            backlog: backlog.clone(),
            reader_gone,
            publishes,
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
    /// Hands an event to the runtime.
    pub(crate) fn send(&self, event: Event) {
        self.backlog.count.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(event).is_err() {
            self.backlog.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// How the runtime takes published objects.
    pub(crate) fn publishes(&self) -> Publishes {
        self.publishes
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
        self.holding = event.is_some();
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
