//! The emulator's state: credentials, sources (configuration, owning session, notifications,
//! pending queries), violations, and the operations the library and the control API
//! perform on them.
//!
//! Locking: each source has its own mutex, held only for short synchronous sections (never
//! across an await), so notification bursts on one source never slow another. Everything a
//! session must send as part of a state change (the `configureExtension` of a handshake,
//! the `reconnectRequired` of a configuration change) is queued while that source's lock is
//! held, so the configuration sent and the configuration stored can never disagree.
//!
//! The parts: [`link`] (the handle on one session), `sources` (configuration, owner,
//! handshake, faults), `notifications`, `queries` (ordinary queries and load runs) and
//! `violations`. The listener, its generation and the live sessions are the server's
//! (`server/`), not the state's: the state knows sessions only through their links.

mod events;
mod history;
mod link;
mod notifications;
mod queries;
mod sources;
mod violations;

pub(crate) use events::Changes;
pub(crate) use link::{Out, Reading, SessionLink};
pub(crate) use sources::SourceEntry;

use crate::types::{FrameMode, SimError, SourceStatus, Violation};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Locks a mutex, ignoring poisoning: the data behind these locks stays consistent even if
/// a holder panicked (every update is a single step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the emulator knows, shared by the library handle, the listener, the sessions
/// and the control API.
pub(crate) struct Core {
    tokens: HashSet<String>,
    users: HashMap<String, String>,
    acks: AtomicBool,
    keep_notifications: Option<usize>,
    sources: Mutex<HashMap<String, Arc<SourceEntry>>>,
    /// Bumped on every change of any source's connection state, for waiters.
    conn_version: watch::Sender<u64>,
    violations: Mutex<Vec<Violation>>,
    violation_count: watch::Sender<usize>,
    /// Bumped whenever notifications were recorded (once per batch), for the console.
    activity: watch::Sender<u64>,
    auth_failures: AtomicU64,
    /// How each session chooses the frame type it sends.
    pub(crate) frame_mode: FrameMode,
    /// How long an authenticated session may go without `connectExtension` before the
    /// emulator records a [`crate::kinds::NO_CONNECT`] note.
    pub(crate) connect_grace: Duration,
    next_session: AtomicU64,
    next_query: AtomicU64,
}

impl Core {
    /// A core with these credentials; sources are added afterwards.
    pub(crate) fn new(
        tokens: Vec<String>,
        users: Vec<(String, String)>,
        acks: bool,
        keep_notifications: Option<usize>,
        frame_mode: FrameMode,
        connect_grace: Duration,
    ) -> Self {
        Self {
            tokens: tokens.into_iter().collect(),
            users: users.into_iter().collect(),
            acks: AtomicBool::new(acks),
            keep_notifications,
            sources: Mutex::new(HashMap::new()),
            conn_version: watch::Sender::new(0),
            violations: Mutex::new(Vec::new()),
            violation_count: watch::Sender::new(0),
            activity: watch::Sender::new(0),
            auth_failures: AtomicU64::new(0),
            frame_mode,
            connect_grace,
            next_session: AtomicU64::new(1),
            next_query: AtomicU64::new(1),
        }
    }

    // ---- credentials and settings -------------------------------------------------------

    /// With no tokens and no users configured, every credential is accepted.
    fn open(&self) -> bool {
        self.tokens.is_empty() && self.users.is_empty()
    }

    /// Whether `validate` with this token succeeds.
    pub(crate) fn token_ok(&self, token: &str) -> bool {
        self.open() || self.tokens.contains(token)
    }

    /// Whether `authenticate` with these credentials succeeds.
    pub(crate) fn user_ok(&self, username: &str, password: &str) -> bool {
        self.open() || self.users.get(username).is_some_and(|p| p == password)
    }

    /// Counts a rejected credential.
    pub(crate) fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Rejected credentials so far.
    pub(crate) fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// Whether notifications are acknowledged.
    pub(crate) fn acks(&self) -> bool {
        self.acks.load(Ordering::Relaxed)
    }

    /// Switches notification acknowledgements on or off.
    pub(crate) fn set_acks(&self, on: bool) {
        self.acks.store(on, Ordering::Relaxed);
    }

    /// A fresh session number.
    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    fn bump(&self) {
        self.conn_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    // ---- waiting on connection state -----------------------------------------------------

    /// Waits until `pred` holds for the source's status.
    pub(crate) async fn wait_status(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&SourceStatus) -> bool,
    ) -> Result<SourceStatus, SimError> {
        let mut rx = self.conn_version.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                let status = self
                    .status(name)
                    .ok_or_else(|| SimError::UnknownSource(name.to_owned()))?;
                if pred(&status) {
                    return Ok(status);
                }
                let _ = rx.changed().await;
            }
        };
        with_timeout(timeout, wait, || {
            let now = self
                .status(name)
                .map(|s| format!("connected={} connections={}", s.connected, s.connections))
                .unwrap_or_else(|| "source gone".into());
            format!("source {name:?} {what} ({now})")
        })
        .await
    }
}

/// Runs `fut` with a timeout; on timeout the error says what was awaited.
async fn with_timeout<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, SimError>>,
    what: impl FnOnce() -> String,
) -> Result<T, SimError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(SimError::timeout(what(), timeout)),
    }
}
