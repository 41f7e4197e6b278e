//! Sources: each one's configuration, the session serving it and the secret it
//! presented, and the operations on them (add, remove, configure, reconnect, drop, go
//! silent, publish), including the `connectExtension` handshake and the end of a session.

use super::history::{state_word, History};
use super::link::SessionLink;
use super::{lock, Core};
use crate::types::{Notification, QueryOutcome, SimError, SourceStatus};
use crate::wire;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

/// The session serving a source, and the secret it presented.
pub(super) struct Owner {
    pub(super) link: Arc<SessionLink>,
    pub(super) secret: Option<String>,
}

/// A query waiting for its final answer.
pub(super) struct PendingQuery {
    pub(super) session: u64,
    pub(super) frames: Vec<Value>,
    pub(super) rows: Vec<Value>,
    pub(super) done: oneshot::Sender<Result<QueryOutcome, SimError>>,
    /// Where the answer frames go as they arrive, when the query is streamed (the control
    /// API's `stream=1`): then neither `frames` nor `rows` keeps them.
    pub(super) stream: Option<tokio::sync::mpsc::Sender<Value>>,
}

/// The mutable part of a source.
pub(crate) struct SourceState {
    pub(super) config: Value,
    pub(super) connections: u64,
    pub(super) secrets: Vec<String>,
    pub(super) owner: Option<Owner>,
    pub(super) connected: bool,
    pub(super) notifications: VecDeque<Notification>,
    pub(super) next_seq: u64,
    pub(super) queries: HashMap<u64, PendingQuery>,
    /// Queries that timed out, by query number -> session: their late answers are ignored
    /// rather than reported (answering late is not a protocol violation).
    pub(super) expired: HashMap<u64, u64>,
    /// Connection events, for the console and `sources`.
    pub(super) history: History,
}

/// One configured source.
pub(crate) struct SourceEntry {
    /// The source name.
    pub(crate) name: String,
    pub(super) publish_prefix: String,
    pub(super) state: Mutex<SourceState>,
    /// Notifications received so far (the next sequence number), for waiters.
    pub(super) notif_count: watch::Sender<u64>,
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
                history: History::default(),
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
            reconnect_secret_count: st.secrets.len(),
            frame_type: st.owner.as_ref().map(|o| o.link.frame_type()),
            reading_stopped: st.owner.as_ref().is_some_and(|o| o.link.reading_stopped()),
            state: state_word(&st).to_owned(),
            connected_at_ms: st.history.connected_at_ms.filter(|_| st.connected),
            history: st.history.events(),
        }
    }

    /// The owning session if it completed its handshake.
    pub(super) fn connected_link(&self) -> Result<Arc<SessionLink>, SimError> {
        let st = lock(&self.state);
        match (&st.owner, st.connected) {
            (Some(owner), true) => Ok(owner.link.clone()),
            _ => Err(SimError::NotConnected(self.name.clone())),
        }
    }

    /// The owning session, handshake completed or not.
    pub(super) fn owner_link(&self) -> Result<Arc<SessionLink>, SimError> {
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
pub(super) fn detach(
    st: &mut SourceState,
    name: &str,
    session: Option<u64>,
) -> Option<Arc<SessionLink>> {
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

impl Core {
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
                st.history
                    .push("reconnectRequired", "the configuration changed");
            } else {
                st.history.push("configured", "the configuration changed");
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
            st.history.push("reconnectRequired", "asked for");
        }
        tracing::info!(source = name, "reconnectRequired sent");
        self.bump();
        Ok(())
    }

    /// Cuts the source's connection abruptly (no close frame).
    pub(crate) fn drop_connection(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        let link = {
            let mut st = lock(&entry.state);
            let link = detach(&mut st, name, None)
                .ok_or_else(|| SimError::NotConnected(name.to_owned()))?;
            st.history.push(
                "dropped",
                format!("session {} cut (no close frame)", link.id),
            );
            link
        };
        tracing::info!(source = name, session = link.id, "dropping connection");
        link.kill();
        self.bump();
        Ok(())
    }

    /// Makes the source's link half-open: nothing read, nothing sent, pings unanswered.
    pub(crate) fn go_silent(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        let link = entry.owner_link()?;
        lock(&entry.state)
            .history
            .push("silent", "half-open: nothing read, nothing sent");
        tracing::info!(source = name, session = link.id, "connection goes silent");
        link.silent.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Stops reading the source's connection, keeping it open (the connector's writes back
    /// up); returns once the session's reader has stopped.
    pub(crate) async fn stop_reading(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        let link = entry.owner_link()?;
        if !link.stop_reading().await {
            return Err(SimError::NotConnected(name.to_owned()));
        }
        lock(&entry.state)
            .history
            .push("reading stopped", "the connection stays open");
        tracing::info!(
            source = name,
            session = link.id,
            "stopped reading the connection"
        );
        self.bump();
        Ok(())
    }

    /// Reads the source's connection again after [`Core::stop_reading`].
    pub(crate) fn resume_reading(&self, name: &str) -> Result<(), SimError> {
        let entry = self.entry(name)?;
        let link = entry.owner_link()?;
        if !link.resume_reading() {
            return Err(SimError::NotConnected(name.to_owned()));
        }
        lock(&entry.state).history.push("reading resumed", "");
        tracing::info!(
            source = name,
            session = link.id,
            "reading the connection again"
        );
        self.bump();
        Ok(())
    }

    /// Sends a frame as is to the source's session.
    pub(crate) fn send_raw(&self, name: &str, msg: Message) -> Result<(), SimError> {
        let link = self.entry(name)?.owner_link()?;
        if link.send_raw(msg) {
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
                    let displaced = detach(&mut st, name, Some(old));
                    let detail = format!("session {old} displaced: the same reconnect secret");
                    st.history.push("displaced", detail);
                    displaced
                }
                Some(_) => {
                    let detail = format!(
                        "session {} from {}: a different reconnect secret",
                        link.id, link.peer
                    );
                    st.history.push("refused", detail);
                    drop(st);
                    self.bump();
                    return Err((
                        409,
                        "io.vantiq.extension.source.already.connected",
                        format!(
                            "The source {name} is already served by another connector \
                             (a different reconnect secret was presented)."
                        ),
                    ));
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
            let detail = format!("session {} from {}", link.id, link.peer);
            st.history.push("connected", detail);
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

    /// A session ended: if it still served `entry`, the source is disconnected.
    pub(crate) fn session_ended(&self, entry: &SourceEntry, session: u64, reason: &str) {
        let released = {
            let mut st = lock(&entry.state);
            let released = detach(&mut st, &entry.name, Some(session));
            if released.is_some() {
                st.history.push("disconnected", reason);
            }
            released
        };
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
            let mut st = lock(&entry.state);
            if detach(&mut st, &entry.name, None).is_some() {
                st.history.push("disconnected", "server stopped");
            }
        }
        self.bump();
    }
}
