//! Per-source counters, readable at any time from the API.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use tokio::sync::Notify;

/// A snapshot of one source connection's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Notifications written to the server (re-sends included).
    pub sent: u64,
    /// Notifications the server acknowledged.
    pub acknowledged: u64,
    /// Notifications the server acknowledged with an error status.
    pub rejected: u64,
    /// Notifications sent again after a connection was lost before their
    /// acknowledgement (possible duplicates, at-least-once delivery).
    pub resent: u64,
    /// Notifications dropped by [`crate::OverflowPolicy::DropOldest`].
    pub dropped: u64,
    /// Notifications waiting in the buffer now.
    pub buffered: u64,
    /// Bytes of the notification frames waiting in the buffer now.
    pub buffered_bytes: u64,
    /// Bytes of query answers waiting to be written now.
    pub answer_bytes: u64,
    /// The most bytes of query answers that ever waited to be written at
    /// once (bounded by [`crate::Settings::answer_buffer_bytes`] plus one
    /// answer).
    pub answer_bytes_peak: u64,
    /// Notifications that could not be delivered when the connection was
    /// closed for good: still buffered, or sent and not acknowledged, when
    /// [`crate::Settings::close_timeout`] ran out.
    pub unsent_at_close: u64,
    /// Connections made (handshakes completed).
    pub connections: u64,
    /// Connections made after the first (reconnections).
    pub reconnections: u64,
    /// Queries given a final, successful answer (200 or 204).
    pub queries_answered: u64,
    /// Queries given an error answer, by the handler or by the SDK.
    pub queries_failed: u64,
    /// Server messages that could not be decoded and were skipped.
    pub malformed: u64,
    /// Published messages received from the server.
    pub publishes: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    rejected: AtomicU64,
    resent: AtomicU64,
    dropped: AtomicU64,
    buffered: AtomicU64,
    buffered_bytes: AtomicU64,
    answer_bytes: AtomicU64,
    answer_bytes_peak: AtomicU64,
    unsent_at_close: AtomicU64,
    connections: AtomicU64,
    queries_answered: AtomicU64,
    queries_failed: AtomicU64,
    malformed: AtomicU64,
    publishes: AtomicU64,
    /// Query latencies, for the metrics endpoint (off without one).
    pub(crate) query_latency: super::latency::QueryLatency,
    /// Notifications accepted into the buffer.
    accepted: AtomicU64,
    /// Notifications settled: acknowledged, dropped, or sent to a server that
    /// does not acknowledge. `flush` waits for it to reach `accepted`.
    settled: AtomicU64,
    /// Callers of `flush` waiting now (the hot path notifies only then).
    flushers: AtomicUsize,
    settled_changed: Notify,
}

impl Counters {
    pub(crate) fn add_accepted(&self) -> u64 {
        self.accepted.fetch_add(1, Relaxed) + 1
    }
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Relaxed)
    }
    pub(crate) fn add_settled(&self, n: u64) {
        if n > 0 {
            self.settled
                .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            if self.flushers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                self.settled_changed.notify_waiters();
            }
        }
    }
    /// Waits until at least `target` notifications are settled.
    pub(crate) async fn wait_settled(&self, target: u64) {
        self.flushers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        loop {
            let changed = self.settled_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.settled.load(std::sync::atomic::Ordering::SeqCst) >= target {
                break;
            }
            changed.await;
        }
        self.flushers
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
    pub(crate) fn snapshot(&self) -> Stats {
        let connections = self.connections.load(Relaxed);
        Stats {
            sent: self.sent.load(Relaxed),
            acknowledged: self.acknowledged.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            resent: self.resent.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            buffered: self.buffered.load(Relaxed),
            buffered_bytes: self.buffered_bytes.load(Relaxed),
            answer_bytes: self.answer_bytes.load(Relaxed),
            answer_bytes_peak: self.answer_bytes_peak.load(Relaxed),
            unsent_at_close: self.unsent_at_close.load(Relaxed),
            connections,
            reconnections: connections.saturating_sub(1),
            queries_answered: self.queries_answered.load(Relaxed),
            queries_failed: self.queries_failed.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            publishes: self.publishes.load(Relaxed),
        }
    }
    pub(crate) fn add_sent(&self, n: u64, resent: u64) {
        self.sent.fetch_add(n, Relaxed);
        if resent > 0 {
            self.resent.fetch_add(resent, Relaxed);
        }
    }
    pub(crate) fn add_acknowledged(&self, rejected: bool) {
        self.acknowledged.fetch_add(1, Relaxed);
        self.add_settled(1);
        if rejected {
            self.rejected.fetch_add(1, Relaxed);
        }
    }
    /// Returns the total dropped so far.
    pub(crate) fn add_dropped(&self) -> u64 {
        self.add_settled(1);
        self.dropped.fetch_add(1, Relaxed) + 1
    }
    pub(crate) fn set_buffered(&self, n: usize, bytes: usize) {
        self.buffered.store(n as u64, Relaxed);
        self.buffered_bytes.store(bytes as u64, Relaxed);
    }
    pub(crate) fn set_answer_bytes(&self, bytes: usize) {
        self.answer_bytes.store(bytes as u64, Relaxed);
        self.answer_bytes_peak.fetch_max(bytes as u64, Relaxed);
    }
    pub(crate) fn add_unsent_at_close(&self, n: u64) {
        self.unsent_at_close.fetch_add(n, Relaxed);
    }
    /// Returns the number of connections so far, this one included.
    pub(crate) fn add_connection(&self) -> u64 {
        self.connections.fetch_add(1, Relaxed) + 1
    }
    pub(crate) fn add_query(&self, failed: bool) {
        if failed {
            self.queries_failed.fetch_add(1, Relaxed);
        } else {
            self.queries_answered.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn add_malformed(&self) {
        self.malformed.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_publish(&self) {
        self.publishes.fetch_add(1, Relaxed);
    }
}
