//! The load server of the single-source figures: a lean server for one source, built on
//! vantiq-sim's wire format ([`vantiq_sim::frames`]) and raw WebSocket frames
//! ([`crate::rawws`]), run inside the driver.
//!
//! Why not the emulator itself: a `vantiq-sim` session hands every message between a
//! reader task, a writer task and the caller, parses each notification into a JSON tree to
//! record it, and frames every message through a WebSocket stream. That is right for a
//! test server and costs about 1 µs a message, which made the emulator, not the
//! connectors, the limit of the publish, notification and query figures (issue 17). Here
//! one task per connection does everything: publishes are appended to the output buffer
//! from a frame template (the object's number the only part formatted), notifications are
//! checked by vantiq-sim's borrowing reader (the same rules as the emulator's session) and
//! counted, their acknowledgements appended per read burst, queries come from a template
//! and their answers are read with vantiq-sim's borrowing answer reader; the output is
//! written once per burst.
//!
//! What it checks, for every column alike: every notification is a well-formed one for the
//! source (anything else is a violation, reported in the run's notes); a job ends only when
//! all its notifications (and, for queries, all final answers) have arrived; no more
//! notifications arrive than were asked for ([`Job`] fails otherwise); every answer has a
//! reply address issued and not yet finally answered, and a well-formed body.
//!
//! It serves the handshake (`validate` with the token; `connectExtension` for its one
//! source; the configuration), pings, and frames of either type, answering in the type the
//! connector last sent. It does not serve what only the other parts need (many sources,
//! restarts, reading stopped): those run on the emulator.

mod jobs;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

pub use jobs::{Job, Report};

/// Violations kept in full (all are counted).
const KEEP_VIOLATIONS: usize = 20;

/// A job handed to the session, and where its report goes.
struct Command {
    job: Job,
    done: oneshot::Sender<Result<Report, String>>,
}

/// What the accept loop and the sessions share.
struct Shared {
    token: String,
    source: String,
    config: Value,
    /// The session serving the source: its number and its job queue.
    owner: Mutex<Option<(u64, mpsc::UnboundedSender<Command>)>>,
    /// Handshakes completed so far.
    connections: watch::Sender<u64>,
    violations: Mutex<Vec<String>>,
    violation_count: AtomicU64,
    next_session: AtomicU64,
}

impl Shared {
    fn violation(&self, kind: &str, detail: String) {
        self.violation_count.fetch_add(1, Ordering::Relaxed);
        let mut kept = crate::lock(&self.violations);
        if kept.len() < KEEP_VIOLATIONS {
            kept.push(format!("{kind}: {detail}"));
        }
    }
}

/// A running load server for one source, on a thread of its own. Cheap to clone; stops
/// (with every session) when the last clone is dropped.
#[derive(Clone)]
pub struct LoadServer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped to stop the server's thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LoadServer {
    /// Listens on a free loopback port for connectors of `source`, authenticating with
    /// `token` and configuring them with `config`.
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub async fn start(token: &str, source: &str, config: Value) -> std::io::Result<LoadServer> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            token: token.into(),
            source: source.into(),
            config,
            owner: Mutex::new(None),
            connections: watch::Sender::new(0),
            violations: Mutex::new(Vec::new()),
            violation_count: AtomicU64::new(0),
            next_session: AtomicU64::new(1),
        });
        // A thread of its own with a one-threaded runtime: the server's work is never
        // scheduled among the driver's tasks, and no idle worker thread searches for work
        // on the cores the connector needs.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("load-server".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    rt.block_on(async move {
                        let Ok(listener) = TcpListener::from_std(listener) else {
                            return;
                        };
                        tokio::select! {
                            () = accept_loop(listener, shared) => {}
                            _ = stopped => {}
                        }
                    });
                }
            })?;
        Ok(LoadServer {
            inner: Arc::new(Inner {
                addr,
                shared,
                stop: Some(stop),
                thread: Some(thread),
            }),
        })
    }

    /// The URL to give connectors as `targetServer`.
    pub fn http_url(&self) -> String {
        format!("http://{}/", self.inner.addr)
    }

    /// Waits until a connector has completed the handshake for the source.
    ///
    /// # Errors
    ///
    /// None did within `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> Result<(), String> {
        let mut rx = self.inner.shared.connections.subscribe();
        let connected = tokio::time::timeout(limit, rx.wait_for(|n| *n > 0)).await;
        match connected {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no connector connected within {} s",
                limit.as_secs()
            )),
        }
    }

    /// Runs `job` on the connected source and returns its report.
    ///
    /// # Errors
    ///
    /// The source is not connected, its connection ended, the job stalled (nothing for 5
    /// s), more notifications arrived than were asked for, or `limit` passed.
    pub async fn run(&self, job: Job, limit: Duration) -> Result<Report, String> {
        let (done, report) = oneshot::channel();
        let sent = crate::lock(&self.inner.shared.owner)
            .as_ref()
            .is_some_and(|(_, tx)| tx.send(Command { job, done }).is_ok());
        if !sent {
            return Err("the source is not connected".into());
        }
        match tokio::time::timeout(limit, report).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the connection ended during the job".into()),
            Err(_) => Err(format!("job not done within {} s", limit.as_secs())),
        }
    }

    /// How many protocol violations were seen, and the first few.
    pub fn violations(&self) -> (u64, Vec<String>) {
        let shared = &self.inner.shared;
        (
            shared.violation_count.load(Ordering::Relaxed),
            crate::lock(&shared.violations).clone(),
        )
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Sessions live in the set: aborting this task (the server dropped) ends them all.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session::run(shared.clone(), stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}
