//! The bridge from the Rust core's threads to one asyncio event loop.
//!
//! Rust tasks never touch the interpreter: they queue *builders* (closures that make a
//! Python tuple, run later on the asyncio thread) and wake the loop. The loop's callback
//! takes the whole queue at once and dispatches it: one wake-up, one GIL hand-over and
//! one Python list per batch, not per message. Because no Rust thread ever takes the
//! GIL, an interpreter that finalises while connections still run cannot be touched by
//! them.
//!
//! Two ways to wake the loop, chosen when the bridge is made ([`Wake`]):
//! - *reader* (Unix, the default): one byte written to a socket pair whose reading end
//!   the loop watches with `loop.add_reader`;
//! - *thread* (where `add_reader` is missing, as on Windows' Proactor loop, or when
//!   asked for): a Python thread blocks in [`Bridge::wait`] (on a condition variable,
//!   without the GIL) and hands each wake-up to the loop with
//!   `loop.call_soon_threadsafe`.
//!
//! Events (publishes, queries, connects, closes) are bounded: a handler of the core waits
//! for room (a semaphore) when Python has [`EVENT_LIMIT`] of them not yet taken, which in
//! turn makes the core stop reading the socket. Completions and log records are not
//! bounded (there is at most one completion per awaited call, and logs are few).

#[cfg(unix)]
use std::io::{ErrorKind, Read, Write};
#[cfg(unix)]
use std::os::fd::AsRawFd;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::Semaphore;

/// Events queued for Python and not yet taken, at most.
pub(crate) const EVENT_LIMIT: usize = 4096;

/// Makes one queued item's Python value, on the asyncio thread.
pub(crate) type Build = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// How the loop is woken.
enum Wake {
    /// A byte on a socket pair the loop watches (`loop.add_reader`).
    #[cfg(unix)]
    Reader { tx: UnixStream, rx: UnixStream },
    /// A condition variable a Python thread waits on ([`Bridge::wait`]).
    Thread(Condvar),
}

/// What the Rust side shares with one loop.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    events: Semaphore,
    wake: Wake,
    next_token: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: Vec<Build>,
    /// Events among `items` (each holds a semaphore permit).
    events: usize,
    /// A wake-up is signalled and the queue not yet taken by `take`.
    signalled: bool,
    /// The waiting thread has handed this wake-up to the loop already.
    delivered: bool,
    /// The waiting thread is to end.
    closed: bool,
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
            match &self.wake {
                // A full socket buffer means a wake-up is pending anyway.
                #[cfg(unix)]
                Wake::Reader { tx, .. } => {
                    let _ = (&*tx).write(&[1]);
                }
                Wake::Thread(cv) => cv.notify_one(),
            }
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
    /// A bridge that wakes the loop through a socket the loop watches (`thread=False`,
    /// Unix only), or through a thread waiting in `wait` (`thread=True`).
    #[new]
    #[pyo3(signature = (thread=false))]
    fn new(thread: bool) -> PyResult<Self> {
        let wake = if thread {
            Wake::Thread(Condvar::new())
        } else {
            reader_wake()?
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            events: Semaphore::new(EVENT_LIMIT),
            wake,
            next_token: AtomicU64::new(1),
        });
        crate::logs::attach(&shared);
        Ok(Bridge { shared })
    }

    /// The file descriptor the loop watches for wake-ups (the reader mode).
    fn fileno(&self) -> PyResult<i64> {
        match &self.shared.wake {
            #[cfg(unix)]
            Wake::Reader { rx, .. } => Ok(i64::from(rx.as_raw_fd())),
            Wake::Thread(_) => Err(pyo3::exceptions::PyValueError::new_err(
                "this bridge wakes its loop through a thread: it has no file descriptor",
            )),
        }
    }

    /// How this bridge wakes its loop: `"reader"` or `"thread"`.
    #[getter]
    fn mode(&self) -> &'static str {
        match &self.shared.wake {
            #[cfg(unix)]
            Wake::Reader { .. } => "reader",
            Wake::Thread(_) => "thread",
        }
    }

    /// The thread mode's wait, without the GIL: returns `True` once something is queued
    /// that this thread has not yet handed to the loop, `False` once `close_wait` is
    /// called.
    fn wait(&self, py: Python<'_>) -> PyResult<bool> {
        let Wake::Thread(cv) = &self.shared.wake else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "this bridge wakes its loop through a socket",
            ));
        };
        let shared = self.shared.clone();
        Ok(py.detach(move || {
            let mut q = lock(&shared.queue);
            loop {
                if q.closed {
                    return false;
                }
                if q.signalled && !q.delivered {
                    q.delivered = true;
                    return true;
                }
                q = cv.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        }))
    }

    /// Ends the thread mode's `wait` (the loop is closing).
    fn close_wait(&self) {
        lock(&self.shared.queue).closed = true;
        if let Wake::Thread(cv) = &self.shared.wake {
            cv.notify_all();
        }
    }

    /// A fresh token for a future that a Rust task will complete.
    fn token(&self) -> u64 {
        self.shared.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes every queued item, as a list of tuples (see the Python dispatcher).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        #[cfg(unix)]
        if let Wake::Reader { rx, .. } = &self.shared.wake {
            let mut sink = [0u8; 256];
            loop {
                match (&*rx).read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        let (items, events) = {
            let mut q = lock(&self.shared.queue);
            q.signalled = false;
            q.delivered = false;
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

/// The reader mode's socket pair (Unix).
#[cfg(unix)]
fn reader_wake() -> PyResult<Wake> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok(Wake::Reader { tx, rx })
}

/// Elsewhere only the thread mode exists.
#[cfg(not(unix))]
fn reader_wake() -> PyResult<Wake> {
    Err(pyo3::exceptions::PyNotImplementedError::new_err(
        "waking the loop through a socket is implemented on Unix only: use thread=True",
    ))
}
