//! The outbox: everything a source connection will write, in order.
//!
//! Notifications and query answers share one FIFO queue so that an answer
//! never overtakes a notification sent before it (the echo `notify` query
//! relies on that: its notifications arrive before its answer). Handles push
//! from any task; the connection task drains the queue when it is connected
//! and the flow-control window allows. Only notifications count against the
//! capacity: answers are bounded by the queries in flight.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::stats::Counters as Stats;
use crate::error::NotifyError;
use crate::settings::OverflowPolicy;

/// One item to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A notification frame; `resend` when it is going out again after a
    /// connection was lost before the server acknowledged it.
    Notification {
        /// The whole frame.
        frame: Utf8Bytes,
        /// Whether it was sent before.
        resend: bool,
    },
    /// An answer to a query that came on connection `epoch`.
    Answer {
        /// The connection the query came on.
        epoch: u64,
        /// The query's reply address.
        reply_address: Arc<str>,
        /// The response code.
        status: u16,
        /// The serialised body (`None` for 204).
        body: Option<String>,
    },
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    notifications: usize,
    closed: bool,
}

/// The queue of one source connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the connection task: there is something to write.
    data: Notify,
    /// Wakes producers waiting for room.
    space: Notify,
    capacity: usize,
    policy: OverflowPolicy,
    stats: Arc<Stats>,
    /// The source, for log lines written from the producer's task.
    source: Arc<str>,
}

impl Outbox {
    pub(crate) fn new(
        capacity: usize,
        policy: OverflowPolicy,
        stats: Arc<Stats>,
        source: Arc<str>,
    ) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            data: Notify::new(),
            space: Notify::new(),
            capacity: capacity.max(1),
            policy,
            stats,
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every update is a single push or pop), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a notification frame, applying the overflow policy; `wait`
    /// false turns [`OverflowPolicy::Wait`] into an error when full.
    pub(crate) async fn push_notification(
        &self,
        frame: Utf8Bytes,
        wait: bool,
    ) -> Result<(), NotifyError> {
        let mut frame = Some(frame);
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let mut st = self.lock();
                if st.closed {
                    return Err(NotifyError::Closed);
                }
                if st.notifications < self.capacity {
                    st.queue.push_back(Outgoing::Notification {
                        frame: frame.take().expect("pushed once"),
                        resend: false,
                    });
                    st.notifications += 1;
                    self.stats.set_buffered(st.notifications);
                    self.stats.add_accepted();
                    drop(st);
                    self.data.notify_one();
                    return Ok(());
                }
                match (self.policy, wait) {
                    (OverflowPolicy::DropOldest, _) => {
                        if let Some(pos) = st
                            .queue
                            .iter()
                            .position(|o| matches!(o, Outgoing::Notification { .. }))
                        {
                            st.queue.remove(pos);
                            st.notifications -= 1;
                            let dropped = self.stats.add_dropped();
                            tracing::warn!(
                                source = %self.source,
                                dropped_total = dropped,
                                "notification buffer full: dropped the oldest notification"
                            );
                        }
                        continue;
                    }
                    (OverflowPolicy::Fail, _) | (OverflowPolicy::Wait, false) => {
                        return Err(NotifyError::BufferFull);
                    }
                    (OverflowPolicy::Wait, true) => {}
                }
            }
            space.await;
        }
    }

    /// Queues a query answer. Answers are never refused for lack of room.
    pub(crate) fn push_answer(&self, answer: Outgoing) -> Result<(), ()> {
        let mut st = self.lock();
        if st.closed {
            return Err(());
        }
        st.queue.push_back(answer);
        drop(st);
        self.data.notify_one();
        Ok(())
    }

    /// Waits until something may have been queued since the last drain.
    pub(crate) async fn wait_for_data(&self) {
        self.data.notified().await;
    }

    /// Takes items in order into `out`: at most `max_notifications`
    /// notifications and `max_items` items in all, stopping at the first
    /// notification that does not fit, so that nothing is reordered.
    pub(crate) fn drain(
        &self,
        max_notifications: usize,
        max_items: usize,
        out: &mut Vec<Outgoing>,
    ) {
        let mut st = self.lock();
        let mut taken_notifications = 0;
        while out.len() < max_items {
            match st.queue.front() {
                None => break,
                Some(Outgoing::Notification { .. }) if taken_notifications >= max_notifications => {
                    break
                }
                Some(_) => {}
            }
            let item = st.queue.pop_front().expect("front exists");
            if matches!(item, Outgoing::Notification { .. }) {
                taken_notifications += 1;
                st.notifications -= 1;
            }
            out.push(item);
        }
        self.stats.set_buffered(st.notifications);
        drop(st);
        if taken_notifications > 0 {
            self.space.notify_waiters();
        }
    }

    /// Puts notifications that were sent but not acknowledged back at the
    /// front, in their order, to go out again first. They may take the
    /// buffer over its capacity for a while: nothing already accepted is
    /// dropped for that.
    pub(crate) fn requeue_front(&self, frames: impl DoubleEndedIterator<Item = Utf8Bytes>) {
        let mut st = self.lock();
        for frame in frames.rev() {
            st.queue.push_front(Outgoing::Notification {
                frame,
                resend: true,
            });
            st.notifications += 1;
        }
        self.stats.set_buffered(st.notifications);
        drop(st);
        self.data.notify_one();
    }

    /// Whether nothing is waiting to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Refuses everything from now on and wakes every waiting producer.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.space.notify_waiters();
        self.data.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(cap: usize, policy: OverflowPolicy) -> Outbox {
        Outbox::new(cap, policy, Arc::new(Stats::default()), "test".into())
    }

    fn frames(items: &[Outgoing]) -> Vec<String> {
        items
            .iter()
            .map(|o| match o {
                Outgoing::Notification { frame, .. } => frame.to_string(),
                Outgoing::Answer { reply_address, .. } => format!("A:{reply_address}"),
            })
            .collect()
    }

    fn answer(addr: &str) -> Outgoing {
        Outgoing::Answer {
            epoch: 1,
            reply_address: addr.into(),
            status: 200,
            body: None,
        }
    }

    #[tokio::test]
    async fn keeps_order_and_respects_the_window() {
        let ob = outbox(10, OverflowPolicy::Wait);
        ob.push_notification("n1".into(), true).await.unwrap();
        ob.push_answer(answer("q")).unwrap();
        ob.push_notification("n2".into(), true).await.unwrap();
        let mut out = Vec::new();
        ob.drain(1, 100, &mut out);
        // The answer may not overtake n2's predecessor, and n2 must wait for the window.
        assert_eq!(frames(&out), ["n1", "A:q"]);
        out.clear();
        ob.drain(5, 100, &mut out);
        assert_eq!(frames(&out), ["n2"]);
    }

    #[tokio::test]
    async fn drop_oldest_counts_every_drop() {
        let ob = outbox(2, OverflowPolicy::DropOldest);
        for n in ["a", "b", "c", "d"] {
            ob.push_notification(n.into(), true).await.unwrap();
        }
        assert_eq!(ob.stats.snapshot().dropped, 2);
        let mut out = Vec::new();
        ob.drain(10, 10, &mut out);
        assert_eq!(frames(&out), ["c", "d"]);
    }

    #[tokio::test]
    async fn fail_policy_and_non_waiting_send_refuse_when_full() {
        let ob = outbox(1, OverflowPolicy::Fail);
        ob.push_notification("a".into(), true).await.unwrap();
        assert!(matches!(
            ob.push_notification("b".into(), true).await,
            Err(NotifyError::BufferFull)
        ));
        let ob = outbox(1, OverflowPolicy::Wait);
        ob.push_notification("a".into(), true).await.unwrap();
        assert!(matches!(
            ob.push_notification("b".into(), false).await,
            Err(NotifyError::BufferFull)
        ));
    }

    #[tokio::test]
    async fn wait_policy_waits_for_room() {
        let ob = Arc::new(outbox(1, OverflowPolicy::Wait));
        ob.push_notification("a".into(), true).await.unwrap();
        let ob2 = ob.clone();
        let waiter = tokio::spawn(async move { ob2.push_notification("b".into(), true).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let mut out = Vec::new();
        ob.drain(10, 10, &mut out);
        waiter.await.unwrap().unwrap();
        out.clear();
        ob.drain(10, 10, &mut out);
        assert_eq!(frames(&out), ["b"]);
    }

    #[tokio::test]
    async fn requeued_frames_go_first_in_order() {
        let ob = outbox(10, OverflowPolicy::Wait);
        ob.push_notification("new".into(), true).await.unwrap();
        ob.requeue_front(vec![Utf8Bytes::from("old1"), Utf8Bytes::from("old2")].into_iter());
        let mut out = Vec::new();
        ob.drain(10, 10, &mut out);
        assert_eq!(frames(&out), ["old1", "old2", "new"]);
        assert!(matches!(
            out[0],
            Outgoing::Notification { resend: true, .. }
        ));
    }

    #[tokio::test]
    async fn close_wakes_waiters_with_an_error() {
        let ob = Arc::new(outbox(1, OverflowPolicy::Wait));
        ob.push_notification("a".into(), true).await.unwrap();
        let ob2 = ob.clone();
        let waiter = tokio::spawn(async move { ob2.push_notification("b".into(), true).await });
        tokio::task::yield_now().await;
        ob.close();
        assert!(matches!(waiter.await.unwrap(), Err(NotifyError::Closed)));
    }
}
