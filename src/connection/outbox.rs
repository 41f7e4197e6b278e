//! The outbox: everything a source connection will write, in order, bounded
//! in count and in bytes.
//!
//! Notifications and query answers share one FIFO queue so that an answer
//! never overtakes a notification sent before it (the echo `notify` query
//! relies on that: its notifications arrive before its answer). Handles push
//! from any task; the connection task drains the queue when it is connected
//! and the flow-control window allows.
//!
//! Two budgets, so that a server that reads slowly (or not at all) slows the
//! producers down instead of growing memory:
//! - notifications: at most `buffer_capacity` frames and `buffer_bytes`
//!   bytes; when full, the overflow policy decides (wait, drop the oldest,
//!   fail);
//! - answers: at most `answer_buffer_bytes` bytes; `Query::partial` and
//!   `Query::complete` wait for room. The SDK's own error answers (small, one
//!   per query) never wait.
//!
//! Either budget takes one item larger than itself when nothing of its kind
//! waits, so nothing is refused for its size alone.
//!
//! Once closed (the connection ended for good) everything is refused at
//! once, and every producer waiting for room wakes with the error.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::stats::Counters as Stats;
use crate::error::NotifyError;
use crate::settings::{OverflowPolicy, Settings};
use crate::transport::OwnText;

/// Notifications queued beyond which a producer that may wait yields
/// after its push (see [`Outbox::push_notification`]): the default
/// flow-control window's worth.
const AHEAD: usize = 1024;

/// One item to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A notification frame; `resend` when it is going out again after a
    /// connection was lost before the server acknowledged it.
    Notification {
        /// The whole frame.
        frame: OwnText,
        /// Whether it was sent before.
        resend: bool,
    },
    /// An answer to a query that came on connection `epoch`. Boxed, so that
    /// an item is 40 bytes: the queue is a ring of items that a producer
    /// fills far ahead of the connection task, and writing into slots of a
    /// ring of 96-byte items that had left the cache was the largest single
    /// cost of sending a notification.
    Answer(Box<Answer>),
}

/// A query answer waiting to be written.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The connection the query came on.
    pub(crate) epoch: u64,
    /// The query's reply address.
    pub(crate) reply_address: Arc<str>,
    /// The response code.
    pub(crate) status: u16,
    /// The whole frame (`protocol::message::query_response`), written where
    /// the answer was made.
    pub(crate) frame: String,
}

impl Answer {
    /// What the answer counts against the answer budget: its frame.
    fn cost(&self) -> usize {
        self.frame.len()
    }
}

/// Why an answer was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The outbox is closed for good.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    notifications: usize,
    notification_bytes: usize,
    answer_bytes: usize,
    closed: bool,
}

/// The queue of one source connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the connection task: there is something to write.
    data: Notify,
    /// Wakes producers waiting for room (and those waiting on a connection
    /// that ended).
    space: Notify,
    capacity: usize,
    capacity_bytes: usize,
    answer_budget: usize,
    policy: OverflowPolicy,
    stats: Arc<Stats>,
    /// The source, for log lines written from the producer's task.
    source: Arc<str>,
}

impl Outbox {
    pub(crate) fn new(settings: &Settings, stats: Arc<Stats>, source: Arc<str>) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            data: Notify::new(),
            space: Notify::new(),
            capacity: settings.buffer_capacity.max(1),
            capacity_bytes: settings.buffer_bytes.max(1),
            answer_budget: settings.answer_buffer_bytes.max(1),
            policy: settings.overflow,
            stats,
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent
        // (every update is a single push or pop), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_levels(&self, st: &State) {
        self.publish_notification_levels(st);
        self.stats.set_answer_bytes(st.answer_bytes);
    }

    /// The notification levels only (what a notification's push changes).
    fn publish_notification_levels(&self, st: &State) {
        self.stats
            .set_buffered(st.notifications, st.notification_bytes);
    }

    /// Runs `attempt` under the lock until it returns `Some`, waiting for
    /// room between tries (drains, purges and closing wake the waiters).
    ///
    /// The first try registers no waiter: when there is room, as there
    /// nearly always is, that is the whole cost (a waiter's registration
    /// and removal take the `Notify`'s own lock twice). A try that finds no
    /// room registers, then tries again before sleeping, so a wake-up
    /// between the two is not lost. The waiting part is boxed, so that it
    /// does not make every future that pushes (a handler's, say) as large as
    /// the waiting state machine.
    async fn when_room<R>(&self, mut attempt: impl FnMut(&mut State) -> Option<R>) -> R {
        if let Some(done) = attempt(&mut self.lock()) {
            return done;
        }
        Box::pin(async move {
            loop {
                let space = self.space.notified();
                tokio::pin!(space);
                space.as_mut().enable();
                if let Some(done) = attempt(&mut self.lock()) {
                    return done;
                }
                space.await;
            }
        })
        .await
    }

    /// Queues a notification frame, applying the overflow policy; `wait`
    /// false turns [`OverflowPolicy::Wait`] into an error when full.
    ///
    /// A producer that waits and is more than [`AHEAD`] notifications ahead
    /// of the connection task yields once after its push (unless it runs on
    /// that task: see `events::on_connection_task`): the connection
    /// task then writes while what it writes is still in the cache, instead
    /// of after the producer has filled the whole buffer (10,000 by default,
    /// each written into a slot that had left the cache: the largest cost
    /// of a notification sent in a loop; 1.2x the `notify` rate).
    pub(crate) async fn push_notification(
        &self,
        frame: OwnText,
        wait: bool,
    ) -> Result<(), NotifyError> {
        let mut frame = Some(frame);
        let (result, ahead) = self
            .when_room(|st| loop {
                if st.closed {
                    return Some((Err(NotifyError::Closed), false));
                }
                let len = frame.as_ref().map_or(0, OwnText::len);
                let fits = st.notifications < self.capacity
                    && (st.notifications == 0
                        || st.notification_bytes + len <= self.capacity_bytes);
                if fits {
                    st.queue.push_back(Outgoing::Notification {
                        frame: frame.take().expect("pushed once"),
                        resend: false,
                    });
                    st.notifications += 1;
                    st.notification_bytes += len;
                    self.publish_notification_levels(st);
                    self.stats.add_accepted();
                    self.data.notify_one();
                    return Some((Ok(()), st.notifications > AHEAD));
                }
                match (self.policy, wait) {
                    (OverflowPolicy::DropOldest, _) => self.drop_oldest(st),
                    (OverflowPolicy::Fail, _) | (OverflowPolicy::Wait, false) => {
                        return Some((Err(NotifyError::BufferFull), false));
                    }
                    (OverflowPolicy::Wait, true) => return None,
                }
            })
            .await;
        // A publish's handler polled at once on the connection's task is
        // that task: it writes right after its read burst, and yielding would
        // only hand the handler over to the dispatcher.
        if ahead && wait && !super::events::on_connection_task() {
            tokio::task::yield_now().await;
        }
        result
    }

    /// Makes room under [`OverflowPolicy::DropOldest`]: counted and logged.
    fn drop_oldest(&self, st: &mut State) {
        let oldest = st
            .queue
            .iter()
            .position(|o| matches!(o, Outgoing::Notification { .. }));
        if let Some(Outgoing::Notification { frame, .. }) = oldest.and_then(|i| st.queue.remove(i))
        {
            st.notifications -= 1;
            st.notification_bytes -= frame.len();
            let dropped = self.stats.add_dropped();
            tracing::warn!(
                source = %self.source,
                dropped_total = dropped,
                "notification buffer full: dropped the oldest notification"
            );
        }
    }

    /// Queues a query answer, waiting for room in the answer budget while
    /// `still_valid` holds (it is checked again after every wake-up, so a
    /// waiter whose connection ended gives up). `admit` is asked once, under
    /// the lock, when there is room, right before the answer is queued
    /// (`false`: not queued): a final answer claims its query there, so a
    /// waiting answer whose future is dropped has claimed nothing (`Ok(false)`
    /// either way).
    pub(crate) async fn push_answer(
        &self,
        answer: Answer,
        still_valid: impl Fn() -> bool,
        mut admit: impl FnMut() -> bool,
    ) -> Result<bool, Refused> {
        let mut answer = Some(answer);
        self.when_room(|st| {
            if st.closed {
                return Some(Err(Refused::Closed));
            }
            if !still_valid() {
                return Some(Ok(false));
            }
            self.queue_answer_if_room(st, &mut answer, &mut admit, true)
        })
        .await
    }

    /// Queues a query answer if the answer budget has room now, without waking the
    /// connection task (`Ok(Some(true))`; see [`Outbox::wake_writer`]): `Ok(None)` when
    /// it would have to wait (nothing queued), `Ok(Some(false))` when `still_valid` or
    /// `admit` refused it, as [`Outbox::push_answer`].
    pub(crate) fn push_answer_quietly(
        &self,
        answer: Answer,
        still_valid: impl Fn() -> bool,
        mut admit: impl FnMut() -> bool,
    ) -> Result<Option<bool>, Refused> {
        let mut st = self.lock();
        if st.closed {
            return Err(Refused::Closed);
        }
        if !still_valid() {
            return Ok(Some(false));
        }
        let mut answer = Some(answer);
        match self.queue_answer_if_room(&mut st, &mut answer, &mut admit, false) {
            Some(queued) => queued.map(Some),
            None => Ok(None),
        }
    }

    /// Wakes the connection task to write what was queued quietly.
    pub(crate) fn wake_writer(&self) {
        self.data.notify_one();
    }

    /// The answer queued if there is room (and `admit` agrees): `None` when there is no
    /// room. `wake`: whether the connection task is woken for it.
    fn queue_answer_if_room(
        &self,
        st: &mut State,
        answer: &mut Option<Answer>,
        admit: &mut impl FnMut() -> bool,
        wake: bool,
    ) -> Option<Result<bool, Refused>> {
        let cost = answer.as_ref().map_or(0, Answer::cost);
        if st.answer_bytes == 0 || st.answer_bytes + cost <= self.answer_budget {
            if !admit() {
                return Some(Ok(false));
            }
            self.queue_answer(st, answer.take().expect("pushed once"), wake);
            return Some(Ok(true));
        }
        None
    }

    /// Queues an answer of the SDK's own (an error): never waits.
    pub(crate) fn push_answer_now(&self, answer: Answer) -> Result<(), Refused> {
        let mut st = self.lock();
        if st.closed {
            return Err(Refused::Closed);
        }
        self.queue_answer(&mut st, answer, true);
        Ok(())
    }

    fn queue_answer(&self, st: &mut State, answer: Answer, wake: bool) {
        st.answer_bytes += answer.cost();
        st.queue.push_back(Outgoing::Answer(Box::new(answer)));
        self.publish_levels(st);
        if wake {
            self.data.notify_one();
        }
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
        let mut taken = 0;
        while out.len() < max_items {
            match st.queue.front() {
                None => break,
                Some(Outgoing::Notification { .. }) if taken >= max_notifications => break,
                Some(_) => {}
            }
            let item = st.queue.pop_front().expect("front exists");
            match &item {
                Outgoing::Notification { frame, .. } => {
                    st.notifications -= 1;
                    st.notification_bytes -= frame.len();
                }
                Outgoing::Answer(answer) => st.answer_bytes -= answer.cost(),
            }
            taken += usize::from(matches!(item, Outgoing::Notification { .. }));
            out.push(item);
        }
        self.publish_levels(&st);
        drop(st);
        if !out.is_empty() {
            self.space.notify_waiters();
        }
    }

    /// Puts notifications that were sent but not acknowledged back at the
    /// front, in their order, to go out again first. They may take the
    /// buffer over its capacity for a while: nothing already accepted is
    /// dropped for that.
    pub(crate) fn requeue_front(&self, frames: impl DoubleEndedIterator<Item = OwnText>) {
        let mut st = self.lock();
        for frame in frames.rev() {
            st.notifications += 1;
            st.notification_bytes += frame.len();
            st.queue.push_front(Outgoing::Notification {
                frame,
                resend: true,
            });
        }
        self.publish_levels(&st);
        drop(st);
        self.data.notify_one();
    }

    /// Drops every queued answer (the connection they were for has ended:
    /// they can never be written) and wakes the producers waiting for room,
    /// so that those of the ended connection give up.
    pub(crate) fn purge_answers(&self) {
        let mut st = self.lock();
        let before = st.queue.len();
        let mut freed = 0;
        st.queue.retain(|item| match item {
            Outgoing::Answer(a) => {
                freed += a.cost();
                false
            }
            _ => true,
        });
        st.answer_bytes -= freed;
        if st.queue.len() != before {
            tracing::debug!(source = %self.source, dropped = before - st.queue.len(), "dropped the answers of an earlier connection");
        }
        self.publish_levels(&st);
        drop(st);
        self.space.notify_waiters();
    }

    /// Whether nothing is waiting to be written.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// The notifications waiting now.
    pub(crate) fn notifications(&self) -> usize {
        self.lock().notifications
    }

    /// Refuses everything from now on and wakes every waiting producer.
    /// Returns the notifications left unsent, or `None` if it was closed
    /// already.
    pub(crate) fn close(&self) -> Option<usize> {
        let mut st = self.lock();
        let unsent = (!st.closed).then_some(st.notifications);
        st.closed = true;
        drop(st);
        self.space.notify_waiters();
        self.data.notify_one();
        unsent
    }

    /// Whether [`Outbox::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_five_words() {
        // See `Outgoing::Answer`.
        assert!(
            std::mem::size_of::<Outgoing>() <= 40,
            "{}",
            std::mem::size_of::<Outgoing>()
        );
    }

    fn outbox_with(settings: Settings) -> Outbox {
        Outbox::new(&settings, Arc::new(Stats::default()), "test".into())
    }

    fn outbox(cap: usize, policy: OverflowPolicy) -> Outbox {
        outbox_with(
            Settings::builder()
                .buffer_capacity(cap)
                .overflow(policy)
                .build(),
        )
    }

    fn frames(items: &[Outgoing]) -> Vec<String> {
        items
            .iter()
            .map(|o| match o {
                Outgoing::Notification { frame, .. } => frame.as_str().to_owned(),
                Outgoing::Answer(a) => format!("A:{}", a.reply_address),
            })
            .collect()
    }

    fn answer(addr: &str, body: usize) -> Answer {
        Answer {
            epoch: 1,
            reply_address: addr.into(),
            status: 200,
            frame: crate::protocol::message::query_response(addr, 200, Some(&"x".repeat(body))),
        }
    }

    #[tokio::test]
    async fn keeps_order_and_respects_the_window() {
        let ob = outbox(10, OverflowPolicy::Wait);
        ob.push_notification("n1".into(), true).await.unwrap();
        ob.push_answer_now(answer("q", 0)).unwrap();
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
    async fn the_notification_buffer_is_bounded_in_bytes() {
        let ob = outbox_with(
            Settings::builder()
                .buffer_capacity(1000)
                .buffer_bytes(10)
                .overflow(OverflowPolicy::Fail)
                .build(),
        );
        // One frame larger than the budget is taken when the buffer is empty.
        ob.push_notification(OwnText::from("x".repeat(25)), true)
            .await
            .unwrap();
        assert!(matches!(
            ob.push_notification("y".into(), true).await,
            Err(NotifyError::BufferFull)
        ));
        let mut out = Vec::new();
        ob.drain(10, 10, &mut out);
        for _ in 0..10 {
            ob.push_notification("z".into(), true).await.unwrap();
        }
        assert!(matches!(
            ob.push_notification("z".into(), true).await,
            Err(NotifyError::BufferFull)
        ));
        assert_eq!(ob.stats.snapshot().buffered_bytes, 10);
    }

    #[tokio::test]
    async fn answers_wait_for_room_in_their_budget() {
        let ob = Arc::new(outbox_with(
            Settings::builder().answer_buffer_bytes(200).build(),
        ));
        assert!(ob
            .push_answer(answer("a", 100), || true, || true)
            .await
            .unwrap());
        let ob2 = ob.clone();
        let waiter =
            tokio::spawn(async move { ob2.push_answer(answer("b", 100), || true, || true).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "over the budget: waits");
        let mut out = Vec::new();
        ob.drain(10, 10, &mut out);
        assert!(waiter.await.unwrap().unwrap());
        assert!(ob.stats.snapshot().answer_bytes_peak <= 200 + answer("x", 100).cost() as u64);
    }

    #[tokio::test]
    async fn a_waiting_answer_of_an_ended_connection_gives_up() {
        let ob = Arc::new(outbox_with(
            Settings::builder().answer_buffer_bytes(10).build(),
        ));
        ob.push_answer_now(answer("a", 100)).unwrap();
        let valid = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (ob2, valid2) = (ob.clone(), valid.clone());
        let waiter = tokio::spawn(async move {
            ob2.push_answer(
                answer("b", 1),
                move || valid2.load(std::sync::atomic::Ordering::SeqCst),
                || true,
            )
            .await
        });
        tokio::task::yield_now().await;
        valid.store(false, std::sync::atomic::Ordering::SeqCst);
        ob.purge_answers();
        assert_eq!(waiter.await.unwrap(), Ok(false));
        assert!(ob.is_empty(), "the old connection's answer is gone");
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
        ob.requeue_front(vec![OwnText::from("old1"), OwnText::from("old2")].into_iter());
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
        assert!(matches!(
            ob.push_notification("c".into(), true).await,
            Err(NotifyError::Closed)
        ));
    }
}
