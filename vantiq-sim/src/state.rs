//! The emulator's state: credentials, sources (configuration, owning session, notifications,
//! pending queries), violations, and the operations the library and the control API
//! perform on them.
//!
//! Locking: each source has its own mutex, held only for short synchronous sections (never
//! across an await), so notification bursts on one source never slow another. Everything a
//! session must send as part of a state change (the `configureExtension` of a handshake,
//! the `reconnectRequired` of a configuration change) is queued while that source's lock is
//! held, so the configuration sent and the configuration stored can never disagree.

use crate::answers;
use crate::load::{self, LoadRun, QueryLoad, QueryLoadReport, Taken};
use crate::server::ListenerSlot;
use crate::types::{
    kinds, FrameMode, FrameType, Notification, QueryOutcome, SimError, SourceStatus, Violation,
};
use crate::wire;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// How many publish frames may wait in one session's queue before publishers wait: enough
/// for the writer to batch, little enough to bound memory when a connector reads slowly.
const PUBLISH_CREDIT: usize = 4096;

/// Locks a mutex, ignoring poisoning: the data behind these locks stays consistent even if
/// a holder panicked (every update is a single step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a session's writer task sends.
pub(crate) enum Out {
    /// A protocol message (handshake answer, query, reconnectRequired), sent in the
    /// session's frame type.
    Control(Message),
    /// A publish, sent in the session's frame type; it holds one unit of the session's
    /// publish credit until written.
    Data(Message),
    /// A frame sent exactly as given (`Sim::send_raw`).
    Raw(Message),
}

/// The state's handle on one WebSocket session: how to send to it, and how to end it.
pub(crate) struct SessionLink {
    /// Unique session number (for logs, and to tell sessions apart).
    pub(crate) id: u64,
    /// The connector's address.
    pub(crate) peer: SocketAddr,
    tx: mpsc::UnboundedSender<Out>,
    /// Publish credit: publishers take a unit per frame, the writer returns it once written.
    pub(crate) credit: Semaphore,
    /// Acknowledgements owed, counted rather than queued so the reader never waits on the
    /// writer (a connector blocked writing while we block acknowledging would deadlock).
    pub(crate) acks_pending: AtomicU64,
    /// Wakes the writer when acknowledgements are owed.
    pub(crate) ack_wake: Notify,
    /// Ends the session abruptly (no close frame).
    pub(crate) kill: Notify,
    /// Set to make the link half-open (see `io.rs`).
    pub(crate) silent: Arc<AtomicBool>,
    /// The query load run on this session, if any (see `load.rs`); the reader answers it.
    pub(crate) load: Mutex<Option<LoadRun>>,
    /// How the frame type sent is chosen.
    mode: FrameMode,
    /// The frame type sent now: [`TEXT`] or [`BINARY`].
    sending: AtomicU8,
    /// The frame type the connector last sent: [`NONE`], [`TEXT`] or [`BINARY`].
    received: AtomicU8,
}

const NONE: u8 = 0;
const TEXT: u8 = 1;
const BINARY: u8 = 2;

fn frame_code(t: FrameType) -> u8 {
    match t {
        FrameType::Text => TEXT,
        FrameType::Binary => BINARY,
    }
}

fn frame_of(code: u8) -> Option<FrameType> {
    match code {
        TEXT => Some(FrameType::Text),
        BINARY => Some(FrameType::Binary),
        _ => None,
    }
}

impl SessionLink {
    /// A link for session `id`, sending through `tx`.
    pub(crate) fn new(
        id: u64,
        peer: SocketAddr,
        tx: mpsc::UnboundedSender<Out>,
        silent: Arc<AtomicBool>,
        mode: FrameMode,
    ) -> Self {
        let sending = match mode {
            FrameMode::Binary => BINARY,
            FrameMode::Follow | FrameMode::Text => TEXT,
        };
        Self {
            id,
            peer,
            tx,
            credit: Semaphore::new(PUBLISH_CREDIT),
            acks_pending: AtomicU64::new(0),
            ack_wake: Notify::new(),
            kill: Notify::new(),
            silent,
            load: Mutex::new(None),
            mode,
            sending: AtomicU8::new(sending),
            received: AtomicU8::new(NONE),
        }
    }

    /// Notes the type of a data frame the connector sent; in [`FrameMode::Follow`] the
    /// session answers in that type from now on.
    pub(crate) fn frame_received(&self, t: FrameType) {
        let code = frame_code(t);
        self.received.store(code, Ordering::Relaxed);
        if self.mode == FrameMode::Follow {
            self.sending.store(code, Ordering::Relaxed);
        }
    }

    /// The frame type the session sends now.
    pub(crate) fn frame_type(&self) -> FrameType {
        frame_of(self.sending.load(Ordering::Relaxed)).unwrap_or(FrameType::Text)
    }

    /// The frame type the connector last sent, if it sent any data frame.
    pub(crate) fn frame_type_received(&self) -> Option<FrameType> {
        frame_of(self.received.load(Ordering::Relaxed))
    }

    /// How the session's frame type is chosen.
    pub(crate) fn frame_mode(&self) -> FrameMode {
        self.mode
    }

    /// Queues a protocol message; false if the session has ended.
    pub(crate) fn send(&self, msg: Message) -> bool {
        self.tx.send(Out::Control(msg)).is_ok()
    }

    /// Queues a publish, waiting for credit; false if the session has ended.
    async fn send_data(&self, msg: Message) -> bool {
        match self.credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        self.tx.send(Out::Data(msg)).is_ok()
    }

    /// Ends the session abruptly.
    pub(crate) fn kill(&self) {
        self.kill.notify_one();
    }
}

/// The session serving a source, and the secret it presented.
struct Owner {
    link: Arc<SessionLink>,
    secret: Option<String>,
}

/// A query waiting for its final answer.
struct PendingQuery {
    session: u64,
    frames: Vec<Value>,
    rows: Vec<Value>,
    done: oneshot::Sender<Result<QueryOutcome, SimError>>,
}

/// The mutable part of a source.
pub(crate) struct SourceState {
    config: Value,
    connections: u64,
    secrets: Vec<String>,
    owner: Option<Owner>,
    connected: bool,
    notifications: VecDeque<Notification>,
    next_seq: u64,
    queries: HashMap<u64, PendingQuery>,
    /// Queries that timed out, by query number -> session: their late answers are ignored
    /// rather than reported (answering late is not a protocol violation).
    expired: HashMap<u64, u64>,
}

/// One configured source.
pub(crate) struct SourceEntry {
    /// The source name.
    pub(crate) name: String,
    publish_prefix: String,
    state: Mutex<SourceState>,
    /// Notifications received so far (the next sequence number), for waiters.
    notif_count: watch::Sender<u64>,
}

impl SourceEntry {
    fn new(name: String, config: Value) -> Self {
        Self {
            publish_prefix: wire::publish_prefix(&name),
            name,
            state: Mutex::new(SourceState {
                config,
                connections: 0,
                secrets: Vec::new(),
                owner: None,
                connected: false,
                notifications: VecDeque::new(),
                next_seq: 0,
                queries: HashMap::new(),
                expired: HashMap::new(),
            }),
            notif_count: watch::Sender::new(0),
        }
    }

    fn status(&self) -> SourceStatus {
        let st = lock(&self.state);
        SourceStatus {
            name: self.name.clone(),
            connected: st.connected,
            connections: st.connections,
            config: st.config.clone(),
            reconnect_secrets: st.secrets.clone(),
            frame_type: st.owner.as_ref().map(|o| o.link.frame_type()),
        }
    }

    /// The owning session if it completed its handshake.
    fn connected_link(&self) -> Result<Arc<SessionLink>, SimError> {
        let st = lock(&self.state);
        match (&st.owner, st.connected) {
            (Some(owner), true) => Ok(owner.link.clone()),
            _ => Err(SimError::NotConnected(self.name.clone())),
        }
    }

    /// The owning session, handshake completed or not.
    fn owner_link(&self) -> Result<Arc<SessionLink>, SimError> {
        let st = lock(&self.state);
        match &st.owner {
            Some(owner) => Ok(owner.link.clone()),
            None => Err(SimError::NotConnected(self.name.clone())),
        }
    }

    /// Tells notification waiters that `count` notifications have been received.
    pub(crate) fn announce(&self, count: u64) {
        self.notif_count.send_if_modified(|c| {
            let more = count > *c;
            if more {
                *c = count;
            }
            more
        });
    }
}

/// Releases session `session`'s hold on the source (if it has one): the source is no
/// longer connected and the session's queries fail. Returns the released link.
fn detach(st: &mut SourceState, name: &str, session: Option<u64>) -> Option<Arc<SessionLink>> {
    let owner = st
        .owner
        .take_if(|o| session.is_none_or(|id| o.link.id == id))?;
    let id = owner.link.id;
    st.connected = false;
    let lost: Vec<u64> = st
        .queries
        .iter()
        .filter(|(_, q)| q.session == id)
        .map(|(qid, _)| *qid)
        .collect();
    for qid in lost {
        if let Some(q) = st.queries.remove(&qid) {
            let _ = q.done.send(Err(SimError::ConnectionLost(name.to_owned())));
        }
    }
    st.expired.retain(|_, s| *s != id);
    Some(owner.link)
}

/// Why a `connectExtension` was refused: status, error code, message.
pub(crate) type Refusal = (u16, &'static str, String);

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
    auth_failures: AtomicU64,
    /// How each session chooses the frame type it sends.
    pub(crate) frame_mode: FrameMode,
    /// How long an authenticated session may go without `connectExtension` before the
    /// emulator records a [`kinds::NO_CONNECT`] note.
    pub(crate) connect_grace: Duration,
    next_session: AtomicU64,
    next_query: AtomicU64,
    /// Bumped by stop(): every connection accepted before ends at once.
    pub(crate) generation: watch::Sender<u64>,
    /// Sessions alive (socket still open), so stop() can wait until they are all gone.
    pub(crate) live_sessions: watch::Sender<usize>,
    /// The listening address and accept task.
    pub(crate) listener: Mutex<ListenerSlot>,
}

/// Counts a session as alive until dropped.
pub(crate) struct SessionGuard(Arc<Core>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.live_sessions.send_modify(|n| *n -= 1);
    }
}

impl Core {
    /// A core with these credentials; sources are added afterwards.
    pub(crate) fn new(
        tokens: Vec<String>,
        users: Vec<(String, String)>,
        acks: bool,
        keep_notifications: Option<usize>,
        addr: SocketAddr,
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
            auth_failures: AtomicU64::new(0),
            frame_mode,
            connect_grace,
            next_session: AtomicU64::new(1),
            next_query: AtomicU64::new(1),
            generation: watch::Sender::new(0),
            live_sessions: watch::Sender::new(0),
            listener: Mutex::new(ListenerSlot { addr, task: None }),
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

    /// Counts a new session as alive until the guard is dropped.
    pub(crate) fn session_guard(self: &Arc<Self>) -> SessionGuard {
        self.live_sessions.send_modify(|n| *n += 1);
        SessionGuard(self.clone())
    }

    fn bump(&self) {
        self.conn_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    // ---- sources -------------------------------------------------------------------------

    /// Adds a source, or replaces the configuration of an existing one (without
    /// `reconnectRequired`: use `set_config` for that).
    pub(crate) fn add_source(&self, name: String, config: Value) {
        let mut sources = lock(&self.sources);
        if let Some(entry) = sources.get(&name) {
            lock(&entry.state).config = config;
        } else {
            sources.insert(name.clone(), Arc::new(SourceEntry::new(name, config)));
        }
        drop(sources);
        self.bump();
    }

    /// Removes a source; its connection (if any) is cut and its queries fail.
    pub(crate) fn remove_source(&self, name: &str) {
        let Some(entry) = lock(&self.sources).remove(name) else {
            return;
        };
        let link = detach(&mut lock(&entry.state), name, None);
        if let Some(link) = link {
            tracing::info!(
                source = name,
                session = link.id,
                "source removed: connection cut"
            );
            link.kill();
        }
        self.bump();
    }

    /// The source called `name`.
    pub(crate) fn entry(&self, name: &str) -> Result<Arc<SourceEntry>, SimError> {
        lock(&self.sources)
            .get(name)
            .cloned()
            .ok_or_else(|| SimError::UnknownSource(name.to_owned()))
    }

    /// The status of one source.
    pub(crate) fn status(&self, name: &str) -> Option<SourceStatus> {
        self.entry(name).ok().map(|e| e.status())
    }

    /// The status of every source, sorted by name.
    pub(crate) fn sources(&self) -> Vec<SourceStatus> {
        let entries: Vec<Arc<SourceEntry>> = lock(&self.sources).values().cloned().collect();
        let mut all: Vec<SourceStatus> = entries.iter().map(|e| e.status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Stores a new configuration; a connected source gets `reconnectRequired`.
    pub(crate) fn set_config(&self, name: &str, config: Value) -> Result<SourceStatus, SimError> {
        let entry = self.entry(name)?;
        {
            let mut st = lock(&entry.state);
            st.config = config;
            if st.connected {
                if let Some(owner) = &st.owner {
                    owner.link.send(wire::reconnect_required(name));
                    tracing::info!(
                        source = name,
                        "configuration changed: reconnectRequired sent"
                    );
                }
                st.connected = false;
            }
        }
        self.bump();
        Ok(entry.status())
    }

    /// Sends `reconnectRequired` to the source's session.
    pub(crate) fn reconnect(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        {
            let mut st = lock(&entry.state);
            let owner = st
                .owner
                .as_ref()
                .ok_or_else(|| SimError::NotConnected(name.to_owned()))?;
            owner.link.send(wire::reconnect_required(name));
            st.connected = false;
        }
        tracing::info!(source = name, "reconnectRequired sent");
        self.bump();
        Ok(())
    }

    /// Cuts the source's connection abruptly (no close frame).
    pub(crate) fn drop_connection(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        let link = detach(&mut lock(&entry.state), name, None)
            .ok_or_else(|| SimError::NotConnected(name.to_owned()))?;
        tracing::info!(source = name, session = link.id, "dropping connection");
        link.kill();
        self.bump();
        Ok(())
    }

    /// Makes the source's link half-open: nothing read, nothing sent, pings unanswered.
    pub(crate) fn go_silent(&self, name: &str) -> Result<(), SimError> {
        let link = self.entry(name)?.owner_link()?;
        tracing::info!(source = name, session = link.id, "connection goes silent");
        link.silent.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a frame as is to the source's session.
    pub(crate) fn send_raw(&self, name: &str, msg: Message) -> Result<(), SimError> {
        let link = self.entry(name)?.owner_link()?;
        if link.tx.send(Out::Raw(msg)).is_ok() {
            Ok(())
        } else {
            Err(SimError::NotConnected(name.to_owned()))
        }
    }

    /// Publishes objects to a connected source, in order; returns how many were queued.
    pub(crate) async fn publish_many(
        &self,
        name: &str,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<usize, SimError> {
        let entry = self.entry(name)?;
        let link = entry.connected_link()?;
        let mut sent = 0;
        for object in objects {
            let msg = wire::publish(&entry.publish_prefix, &object);
            if !link.send_data(msg).await {
                return Err(SimError::NotConnected(name.to_owned()));
            }
            sent += 1;
        }
        Ok(sent)
    }

    /// Sends a query and collects its answers until the final one.
    pub(crate) async fn query(
        &self,
        name: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<QueryOutcome, SimError> {
        let entry = self.entry(name)?;
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        let (done, mut answer) = oneshot::channel();
        let session = {
            let mut st = lock(&entry.state);
            let link = match (&st.owner, st.connected) {
                (Some(owner), true) => owner.link.clone(),
                _ => return Err(SimError::NotConnected(name.to_owned())),
            };
            if !link.send(wire::query(name, params, &wire::reply_address(id))) {
                return Err(SimError::NotConnected(name.to_owned()));
            }
            st.queries.insert(
                id,
                PendingQuery {
                    session: link.id,
                    frames: Vec::new(),
                    rows: Vec::new(),
                    done,
                },
            );
            link.id
        };
        match tokio::time::timeout(timeout, &mut answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SimError::ConnectionLost(name.to_owned())),
            Err(_) => {
                let mut st = lock(&entry.state);
                if st.queries.remove(&id).is_some() {
                    st.expired.insert(id, session);
                    Err(SimError::timeout(
                        format!("no final answer to query {id} on source {name:?}"),
                        timeout,
                    ))
                } else {
                    // The final answer won the race with the timer.
                    drop(st);
                    answer
                        .try_recv()
                        .unwrap_or_else(|_| Err(SimError::ConnectionLost(name.to_owned())))
                }
            }
        }
    }

    /// Runs a query load on the source (see [`crate::Sim::query_load`]).
    pub(crate) async fn query_load(
        &self,
        name: &str,
        params: &Value,
        load: &QueryLoad,
    ) -> Result<QueryLoadReport, SimError> {
        let (link, first, mut report) = self.start_load(name, params, load)?;
        match tokio::time::timeout(load.timeout, &mut report).await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(_)) => Err(SimError::ConnectionLost(name.to_owned())),
            Err(_) => {
                let answered = match lock(&link.load).as_mut() {
                    Some(run) if run.first() == first => run.abandon(),
                    _ => 0,
                };
                if let Ok(done) = report.try_recv() {
                    // The last answer won the race with the timer.
                    return Ok(done);
                }
                Err(SimError::timeout(
                    format!(
                        "query load on source {name:?}: {answered} of {} queries answered",
                        load.queries
                    ),
                    load.timeout,
                ))
            }
        }
    }

    /// Starts a query load run on the source's session (see `load.rs`); the report
    /// arrives on the returned receiver. Returns the session's link too, so the caller can
    /// abandon the run when it times out.
    pub(crate) fn start_load(
        &self,
        name: &str,
        params: &Value,
        load: &QueryLoad,
    ) -> Result<(Arc<SessionLink>, u64, oneshot::Receiver<QueryLoadReport>), SimError> {
        let entry = self.entry(name)?;
        let st = lock(&entry.state);
        let link = match (&st.owner, st.connected) {
            (Some(owner), true) => owner.link.clone(),
            _ => return Err(SimError::NotConnected(name.to_owned())),
        };
        drop(st);
        let mut slot = lock(&link.load);
        if slot.as_ref().is_some_and(LoadRun::active) {
            return Err(SimError::Busy(format!(
                "source {name:?} is already running a query load"
            )));
        }
        let first = self.next_query.fetch_add(load.queries, Ordering::Relaxed);
        let (done, report) = oneshot::channel();
        let mut run = LoadRun::new(name, params, load, first, done);
        // Sent while the run is in place (and its lock held), so no answer can miss it.
        for frame in run.opening() {
            if !link.send(frame) {
                return Err(SimError::NotConnected(name.to_owned()));
            }
        }
        if load.queries == 0 {
            run.finish();
        }
        *slot = Some(run);
        drop(slot);
        Ok((link, first, report))
    }

    // ---- notifications -------------------------------------------------------------------

    /// The source's notifications with `seq >= since` (those still kept).
    pub(crate) fn notifications(&self, name: &str, since: u64) -> Vec<Notification> {
        let Ok(entry) = self.entry(name) else {
            return Vec::new();
        };
        let st = lock(&entry.state);
        let first = st.next_seq - st.notifications.len() as u64;
        let skip = since.saturating_sub(first) as usize;
        st.notifications.iter().skip(skip).cloned().collect()
    }

    /// Waits until the source has received at least `count` notifications in total.
    pub(crate) async fn wait_notification_count(
        &self,
        name: &str,
        count: u64,
        timeout: Duration,
    ) -> Result<(), SimError> {
        let mut rx = self.entry(name)?.notif_count.subscribe();
        let reached = async {
            loop {
                if *rx.borrow_and_update() >= count {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, reached).await.map_err(|_| {
            let got = *rx.borrow();
            SimError::timeout(
                format!("source {name:?} received {got} of {count} notifications"),
                timeout,
            )
        })
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

    // ---- violations ----------------------------------------------------------------------

    /// Records a protocol violation (and logs it).
    pub(crate) fn violation(&self, source: Option<&str>, kind: &str, detail: String) {
        tracing::warn!(source, kind, "protocol violation: {detail}");
        let count = {
            let mut all = lock(&self.violations);
            all.push(Violation {
                source: source.map(str::to_owned),
                kind: kind.to_owned(),
                detail,
            });
            all.len()
        };
        self.violation_count.send_replace(count);
    }

    /// Every violation so far.
    pub(crate) fn violations(&self) -> Vec<Violation> {
        lock(&self.violations).clone()
    }

    /// Forgets the violations recorded so far.
    pub(crate) fn clear_violations(&self) {
        lock(&self.violations).clear();
        self.violation_count.send_replace(0);
    }

    /// Waits until at least `n` violations are recorded.
    pub(crate) async fn wait_violations(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Violation>, SimError> {
        let mut rx = self.violation_count.subscribe();
        let wait = async {
            let _ = rx.wait_for(|count| *count >= n).await;
            Ok(self.violations())
        };
        with_timeout(timeout, wait, || {
            format!("{} of {n} violations recorded", self.violations().len())
        })
        .await
    }

    // ---- called by sessions --------------------------------------------------------------

    /// Handles `connectExtension` from `link`: on success the status and
    /// `configureExtension` are queued and the source is connected.
    pub(crate) fn connect_extension(
        &self,
        link: &Arc<SessionLink>,
        name: &str,
        secret: Option<String>,
    ) -> Result<Arc<SourceEntry>, Refusal> {
        let entry = self.entry(name).map_err(|_| {
            (
                404,
                "io.vantiq.resource.not.found",
                format!("The source {name} does not exist."),
            )
        })?;
        let (displaced, connections) = {
            let mut st = lock(&entry.state);
            let displaced = match &st.owner {
                Some(owner) if owner.link.id == link.id => None,
                Some(owner) if secret.is_some() && owner.secret == secret => {
                    let old = owner.link.id;
                    detach(&mut st, name, Some(old))
                }
                Some(_) => {
                    return Err((
                        409,
                        "io.vantiq.extension.source.already.connected",
                        format!(
                            "The source {name} is already served by another connector \
                             (a different reconnect secret was presented)."
                        ),
                    ))
                }
                None => None,
            };
            if let Some(s) = &secret {
                if !st.secrets.contains(s) {
                    st.secrets.push(s.clone());
                }
            }
            st.owner = Some(Owner {
                link: link.clone(),
                secret,
            });
            link.send(wire::status_ok());
            link.send(wire::configure_extension(name, &st.config));
            st.connected = true;
            st.connections += 1;
            (displaced, st.connections)
        };
        if let Some(old) = displaced {
            tracing::info!(
                source = name,
                old_session = old.id,
                "same reconnect secret: old session displaced"
            );
            old.kill();
        }
        tracing::info!(
            source = name,
            session = link.id,
            peer = %link.peer,
            connections,
            "source connected"
        );
        self.bump();
        Ok(entry)
    }

    /// Stores a notification; returns the number received so far (for `announce`).
    pub(crate) fn record_notification(&self, entry: &SourceEntry, object: Value) -> u64 {
        let mut st = lock(&entry.state);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.notifications.push_back(Notification { seq, object });
        if let Some(keep) = self.keep_notifications {
            while st.notifications.len() > keep {
                st.notifications.pop_front();
            }
        }
        st.next_seq
    }

    /// Handles a query answer (a message with a `status`) from the session behind `link`.
    pub(crate) fn answer_query(
        &self,
        entry: &SourceEntry,
        link: &SessionLink,
        frame: Value,
        raw: &str,
    ) {
        let name = entry.name.as_str();
        let session = link.id;
        let Some(status) = frame.get("status").and_then(Value::as_u64) else {
            let detail = format!("status must be an integer: {}", wire::excerpt(raw));
            return self.violation(Some(name), kinds::BAD_SHAPE, detail);
        };
        let Some(addr) = frame
            .get("headers")
            .and_then(|h| h.get("X-Reply-Address"))
            .and_then(Value::as_str)
        else {
            let detail = format!(
                "a status message from a connector must be a query answer with \
                 headers.X-Reply-Address: {}",
                wire::excerpt(raw)
            );
            return self.violation(Some(name), kinds::BAD_SHAPE, detail);
        };
        let is_final = answers::is_final(status);
        let id = wire::parse_reply_address(addr);
        let body = frame.get("body");
        let shape = answers::Shape::of(body);
        if let Some(id) = id {
            if self.answer_load(link, name, id, status, shape, addr, raw) {
                return;
            }
        }
        let mut problems = answers::problems(status, shape, raw);
        let mut st = lock(&entry.state);
        let Some(pending) = id.and_then(|id| st.queries.get_mut(&id)) else {
            if let Some(id) = id.filter(|id| st.expired.contains_key(id)) {
                if is_final {
                    st.expired.remove(&id);
                }
                tracing::debug!(
                    source = name,
                    addr,
                    "late answer to a timed-out query ignored"
                );
                return;
            }
            drop(st);
            let issued = id.is_some_and(|id| id < self.next_query.load(Ordering::Relaxed));
            let (kind, what) = if issued {
                (
                    kinds::ANSWER_AFTER_FINAL,
                    "an answer to a query that already had its final answer (or belongs to another source)",
                )
            } else {
                (
                    kinds::UNKNOWN_REPLY_ADDRESS,
                    "an answer with a reply address never issued",
                )
            };
            return self.violation(
                Some(name),
                kind,
                format!("{what}: {addr:?} in {}", wire::excerpt(raw)),
            );
        };
        answers::push_rows(status, body, &mut pending.rows);
        if is_final {
            let error = (status >= 300).then(|| body.cloned().unwrap_or(Value::Null));
            let qid = id.unwrap_or_default();
            if let Some(mut q) = st.queries.remove(&qid) {
                q.frames.push(frame);
                let outcome = QueryOutcome {
                    status: u16::try_from(status).unwrap_or(u16::MAX),
                    rows: q.rows,
                    frames: q.frames,
                    error,
                };
                let _ = q.done.send(Ok(outcome));
            }
        } else {
            pending.frames.push(frame);
        }
        if session != st.owner.as_ref().map_or(0, |o| o.link.id) {
            tracing::debug!(
                source = name,
                session,
                "query answered by a session that no longer owns the source"
            );
        }
        drop(st);
        for (kind, detail) in problems.drain(..) {
            self.violation(Some(name), kind, detail);
        }
    }

    /// Takes an answer read by [`answers::read_answer`] if it belongs to the session's
    /// active load run; false otherwise (it then goes down the general path).
    pub(crate) fn answer_load_fast(
        &self,
        link: &SessionLink,
        name: &str,
        view: &answers::AnswerView<'_>,
        raw: &str,
    ) -> bool {
        match wire::parse_reply_address(&view.addr) {
            Some(id) => self.answer_load(link, name, id, view.status, view.body, &view.addr, raw),
            None => false,
        }
    }

    /// Takes an answer to query `id` if it belongs to the session's load run: records it,
    /// sends the next query, hands the report over when the run completes. False when the
    /// answer is not the run's (it is then an ordinary query's).
    #[allow(clippy::too_many_arguments)]
    fn answer_load(
        &self,
        link: &SessionLink,
        name: &str,
        id: u64,
        status: u64,
        body: answers::Shape,
        addr: &str,
        raw: &str,
    ) -> bool {
        let mut slot = lock(&link.load);
        let Some(run) = slot.as_mut().filter(|r| r.owns(id)) else {
            return false;
        };
        let mut problems = Vec::new();
        match run.take(id, status, answers::row_count(status, body)) {
            Taken::Recorded { next, complete } => {
                problems = answers::problems(status, body, raw);
                if let Some(next) = next {
                    link.send(next);
                }
                if complete {
                    run.finish();
                }
            }
            Taken::Ignored => {
                tracing::debug!(
                    source = name,
                    addr,
                    "late answer to an abandoned query load ignored"
                );
            }
            refused @ (Taken::AfterFinal | Taken::NeverSent) => {
                problems.extend(load::refused(&refused, addr, raw));
            }
        }
        drop(slot);
        for (kind, detail) in problems {
            self.violation(Some(name), kind, detail);
        }
        true
    }

    /// A session ended: if it still served `entry`, the source is disconnected.
    pub(crate) fn session_ended(&self, entry: &SourceEntry, session: u64, reason: &str) {
        let released = detach(&mut lock(&entry.state), &entry.name, Some(session));
        if released.is_some() {
            tracing::info!(source = %entry.name, session, reason, "source disconnected");
            self.bump();
        }
    }

    /// Releases every source's session (the server stopped; the sessions themselves end
    /// on the generation change).
    pub(crate) fn detach_all(&self) {
        let entries: Vec<Arc<SourceEntry>> = lock(&self.sources).values().cloned().collect();
        for entry in entries {
            detach(&mut lock(&entry.state), &entry.name, None);
        }
        self.bump();
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
