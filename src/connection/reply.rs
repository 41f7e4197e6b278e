//! The narrow way the handler runtime answers a query: a [`Reply`] names the
//! connection and reply address the answers go to, and queues them in the
//! outbox, waiting for room in the answer budget.
//!
//! An answer is refused ([`QueryAnswerError::ConnectionLost`]) once the
//! connection the query came on has ended, whichever way it ended (lost, a
//! `reconnectRequired` of either style, closed): the server has dropped the
//! query by then.

use std::sync::Arc;

use super::outbox::{Answer, Refused};
use super::Shared;
use crate::error::QueryAnswerError;
use crate::protocol::session::is_final;

/// Where the answers of one query go.
#[derive(Clone)]
pub(crate) struct Reply {
    shared: Arc<Shared>,
    epoch: u64,
    reply_address: Arc<str>,
    /// When the query's frame arrived, if queries are timed (metrics on).
    received: Option<std::time::Instant>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("source", &self.shared.name)
            .field("reply_address", &self.reply_address)
            .finish()
    }
}

impl Reply {
    pub(super) fn new(
        shared: Arc<Shared>,
        epoch: u64,
        reply_address: Arc<str>,
        received: Option<std::time::Instant>,
    ) -> Self {
        Reply {
            shared,
            epoch,
            reply_address,
            received,
        }
    }

    /// The query's reply address.
    pub(crate) fn reply_address(&self) -> &Arc<str> {
        &self.reply_address
    }

    /// The frame of an answer to this query; `body_json` is serialised JSON
    /// (`None` for 204).
    pub(crate) fn frame(&self, status: u16, body_json: Option<&str>) -> String {
        crate::protocol::message::query_response(&self.reply_address, status, body_json)
    }

    fn answer(&self, status: u16, frame: String) -> Answer {
        Answer {
            epoch: self.epoch,
            reply_address: self.reply_address.clone(),
            status,
            frame,
        }
    }

    fn counted(&self, status: u16) {
        if is_final(status) {
            self.shared.stats.add_query(status >= 400);
            if let Some(received) = self.received {
                self.shared.stats.query_latency.observe(received);
            }
        }
    }

    /// Queues one answer (its [`Reply::frame`]), waiting for room in the
    /// answer budget. `claim` is called once there is room, right before the
    /// answer is queued: an error from it refuses the answer (a final answer
    /// claims its query there, so a future dropped while it waits claims
    /// nothing).
    pub(crate) async fn send(
        &self,
        status: u16,
        frame: String,
        mut claim: impl FnMut() -> Result<(), QueryAnswerError>,
    ) -> Result<(), QueryAnswerError> {
        let shared = &self.shared;
        let epoch = self.epoch;
        let mut refused = QueryAnswerError::ConnectionLost;
        let pushed = shared
            .outbox
            .push_answer(
                self.answer(status, frame),
                || shared.is_current(epoch),
                admit(&mut claim, &mut refused),
            )
            .await;
        match pushed {
            Ok(true) => {
                self.counted(status);
                Ok(())
            }
            Ok(false) => Err(refused),
            Err(Refused::Closed) => Err(QueryAnswerError::ConnectionLost),
        }
    }

    /// Queues one answer if the answer budget has room now, without waking the
    /// connection task (`SourceConnection::wake_writer` does): `Ok(false)` when it would
    /// have to wait (nothing queued, `claim` not called).
    pub(crate) fn send_quietly(
        &self,
        status: u16,
        frame: String,
        mut claim: impl FnMut() -> Result<(), QueryAnswerError>,
    ) -> Result<bool, QueryAnswerError> {
        let shared = &self.shared;
        let epoch = self.epoch;
        let mut refused = QueryAnswerError::ConnectionLost;
        let pushed = shared.outbox.push_answer_quietly(
            self.answer(status, frame),
            || shared.is_current(epoch),
            admit(&mut claim, &mut refused),
        );
        match pushed {
            Ok(Some(true)) => {
                self.counted(status);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Ok(Some(false)) => Err(refused),
            Err(Refused::Closed) => Err(QueryAnswerError::ConnectionLost),
        }
    }

    /// Queues an answer of the SDK's own at once (an error answer: small,
    /// one per query, so it never waits for room).
    pub(crate) fn send_now(&self, status: u16, frame: String) -> Result<(), QueryAnswerError> {
        if !self.shared.is_current(self.epoch) {
            return Err(QueryAnswerError::ConnectionLost);
        }
        self.shared
            .outbox
            .push_answer_now(self.answer(status, frame))
            .map_err(|Refused::Closed| QueryAnswerError::ConnectionLost)?;
        self.counted(status);
        Ok(())
    }
}

/// `claim` as the outbox's `admit`: `true` to queue the answer; a refusal is kept in
/// `refused` for the caller.
fn admit<'a>(
    claim: &'a mut impl FnMut() -> Result<(), QueryAnswerError>,
    refused: &'a mut QueryAnswerError,
) -> impl FnMut() -> bool + 'a {
    move || match claim() {
        Ok(()) => true,
        Err(e) => {
            *refused = e;
            false
        }
    }
}
