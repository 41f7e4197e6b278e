//! Queries: sending them, collecting their answers until the final one, judging each
//! answer (`answers.rs`), and the query load runs (`load.rs`) kept in a source's session.

use super::link::SessionLink;
use super::sources::{PendingQuery, SourceEntry};
use super::{lock, Core};
use crate::answers;
use crate::load::{self, LoadRun, QueryLoad, QueryLoadReport, Taken};
use crate::types::{kinds, QueryOutcome, SimError};
use crate::wire;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Hands a streamed query's frame to its stream; when the stream is full the frame waits
/// on the session's link, and the session hands it over before it reads on. A stream
/// whose reader left takes nothing: the frame is dropped.
fn pass_on(link: &SessionLink, stream: &mpsc::Sender<Value>, frame: Value) {
    if let Err(mpsc::error::TrySendError::Full(frame)) = stream.try_send(frame) {
        *lock(&link.backlog) = Some((stream.clone(), frame));
    }
}

/// A query sent and waiting for its final answer ([`Core::finish_query`]).
pub(crate) struct StartedQuery {
    entry: Arc<SourceEntry>,
    id: u64,
    session: u64,
    answer: oneshot::Receiver<Result<QueryOutcome, SimError>>,
}

impl Core {
    /// Sends a query and collects its answers until the final one.
    pub(crate) async fn query(
        &self,
        name: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<QueryOutcome, SimError> {
        let started = self.start_query(name, params, None)?;
        self.finish_query(name, started, timeout).await
    }

    /// Sends a query whose answer frames go to `stream` as they arrive, none kept; the
    /// outcome that [`Core::finish_query`] then gives has no rows and no frames. The
    /// channel closes after the final frame (or when the query ends otherwise). While it
    /// is full, the session stops reading its connector (see `SessionLink::backlog`).
    pub(crate) fn start_streamed_query(
        &self,
        name: &str,
        params: &Value,
        stream: mpsc::Sender<Value>,
    ) -> Result<StartedQuery, SimError> {
        self.start_query(name, params, Some(stream))
    }

    fn start_query(
        &self,
        name: &str,
        params: &Value,
        stream: Option<mpsc::Sender<Value>>,
    ) -> Result<StartedQuery, SimError> {
        let entry = self.entry(name)?;
        let id = self.next_query.fetch_add(1, Ordering::Relaxed);
        let (done, answer) = oneshot::channel();
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
                stream,
            },
        );
        Ok(StartedQuery {
            entry: entry.clone(),
            id,
            session: link.id,
            answer,
        })
    }

    /// Waits (up to `timeout`) for a started query's final answer.
    pub(crate) async fn finish_query(
        &self,
        name: &str,
        started: StartedQuery,
        timeout: Duration,
    ) -> Result<QueryOutcome, SimError> {
        let StartedQuery {
            entry,
            id,
            session,
            mut answer,
        } = started;
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
        if pending.stream.is_none() {
            answers::push_rows(status, body, &mut pending.rows);
        }
        if is_final {
            let error = (status >= 300).then(|| body.cloned().unwrap_or(Value::Null));
            let qid = id.unwrap_or_default();
            if let Some(mut q) = st.queries.remove(&qid) {
                match q.stream.take() {
                    Some(stream) => pass_on(link, &stream, frame),
                    None => q.frames.push(frame),
                }
                let outcome = QueryOutcome {
                    status: u16::try_from(status).unwrap_or(u16::MAX),
                    rows: q.rows,
                    frames: q.frames,
                    error,
                };
                let _ = q.done.send(Ok(outcome));
            }
        } else {
            match &pending.stream {
                Some(stream) => pass_on(link, stream, frame),
                None => pending.frames.push(frame),
            }
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
}
