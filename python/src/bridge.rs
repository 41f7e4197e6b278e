//! The bridge from the Rust core's threads to one asyncio event loop.
//!
//! Rust tasks never touch the interpreter: they queue *builders* (closures that make a
//! Python tuple, run later on the asyncio thread) and wake the loop by writing one byte
//! to a socket pair whose reading end the loop watches (`loop.add_reader`). The loop's
//! callback takes the whole queue at once and dispatches it: one wake-up, one GIL
//! hand-over and one Python list per batch, not per message. Because no Rust thread
//! ever takes the GIL, an interpreter that finalises while connections still run cannot
//! be touched by them.
//!
//! Events (publishes, queries, connects, closes) are bounded: a handler of the core waits
//! for room (a semaphore) when Python has [`EVENT_LIMIT`] of them not yet taken, which in
//! turn makes the core stop reading the socket. Completions and log records are not
//! bounded (there is at most one completion per awaited call, and logs are few).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::Semaphore;

/// Events queued for Python and not yet taken, at most.
pub(crate) const EVENT_LIMIT: usize = 4096;

/// Makes one queued item's Python value, on the asyncio thread.
pub(crate) type Build = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// What the Rust side shares with one loop.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    events: Semaphore,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
    next_token: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: Vec<Build>,
    /// Events among `items` (each holds a semaphore permit).
    events: usize,
    /// A wake-up byte is written and not yet consumed by `take`.
    signalled: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn enqueue(&self, item: Build, event: bool) {
        let wake = {
            let mut q = lock(&self.queue);
            q.items.push(item);
            if event {
                q.events += 1;
            }
            !std::mem::replace(&mut q.signalled, true)
        };
        if wake {
            // A full socket buffer means a wake-up is pending anyway.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// Queues a completion or a log record: never waits.
    pub(crate) fn push(&self, item: Build) {
        self.enqueue(item, false);
    }

    /// Queues an event, waiting while Python has [`EVENT_LIMIT`] events not yet taken.
    pub(crate) async fn push_event(&self, item: Build) {
        if let Ok(permit) = self.events.acquire().await {
            permit.forget();
        }
        self.enqueue(item, true);
    }

    /// Completes the Python future registered under `token` with what `build` makes
    /// (`Ok`: its result; `Err`: the exception to raise).
    pub(crate) fn complete(&self, token: u64, result: Result<Build, Build>) {
        self.push(Box::new(move |py| {
            let (ok, build) = match result {
                Ok(b) => (true, b),
                Err(b) => (false, b),
            };
            let value = build(py)?;
            Ok(("d", token, ok, value).into_pyobject(py)?.into_any())
        }));
    }
}

/// One event loop's end of the bridge (`vantiq_connector_sdk._native.Bridge`).
#[pyclass(frozen, module = "vantiq_connector_sdk._native")]
pub(crate) struct Bridge {
    pub(crate) shared: Arc<Shared>,
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            events: Semaphore::new(EVENT_LIMIT),
            wake_tx,
            wake_rx,
            next_token: AtomicU64::new(1),
        });
        crate::logs::attach(&shared);
        Ok(Bridge { shared })
    }

    /// The file descriptor the loop watches for wake-ups.
    fn fileno(&self) -> i32 {
        self.shared.wake_rx.as_raw_fd()
    }

    /// A fresh token for a future that a Rust task will complete.
    fn token(&self) -> u64 {
        self.shared.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes every queued item, as a list of tuples (see the Python dispatcher).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut sink = [0u8; 256];
        loop {
            match (&self.shared.wake_rx).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let (items, events) = {
            let mut q = lock(&self.shared.queue);
            q.signalled = false;
            let events = std::mem::take(&mut q.events);
            (std::mem::take(&mut q.items), events)
        };
        self.shared.events.add_permits(events);
        let list = PyList::empty(py);
        for build in items {
            // One item that cannot be made (a number Python cannot hold, say) must not
            // lose the others: it is handed over as an error for the dispatcher to log.
            match build(py) {
                Ok(item) => list.append(item)?,
                Err(e) => list.append(("e", e.into_value(py)))?,
            }
        }
        Ok(list)
    }
}
