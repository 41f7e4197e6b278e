//! Delivery of notifications on one connection: the flow-control window,
//! the notifications in flight, acknowledgement matching, the ack timeout and
//! the order in which unacknowledged notifications are sent again.
//!
//! Pure: the connection task passes the time in (`now`) and carries out what
//! the methods return; nothing here reads a clock or touches a socket, so
//! every rule is tested with plain `#[test]`s and proptests.
//!
//! The rules:
//! - While the server acknowledges, at most `window` notifications are in
//!   flight; each status message on a connected session acknowledges the
//!   oldest one (the server answers in order).
//! - If nothing in flight is acknowledged for `ack_timeout` and the server
//!   has acknowledged before, the link is taken to be dead
//!   ([`Timeout::LinkDead`]); if it never has, it is taken to be a server that
//!   does not acknowledge ([`Timeout::AcksUnsupported`]), and delivery becomes
//!   at-most-once for the source: every later notification is settled when
//!   written.
//! - While the connection task does not read (its handlers are behind), no
//!   acknowledgement can arrive: the window is lifted (so a handler waiting
//!   for room in the buffer cannot deadlock) and the ack clock stops.
//! - When a connection ends, the unacknowledged notifications are handed
//!   back oldest first, to go out again before anything newer. A server that
//!   has acknowledged nothing of this source yet gets them again once, after
//!   the first connection that ends so (a real server whose first link died
//!   before its first acknowledgement loses nothing); after that they are
//!   settled instead, so a server that never acknowledges (Vantiq's mock
//!   servers, which the official Python SDK never re-sends to) is not sent
//!   the same notifications again at every reconnection.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What an expired ack deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// The server acknowledged before and has stopped: the link is dead.
    /// `in_flight` notifications are waiting.
    LinkDead {
        /// Notifications in flight.
        in_flight: usize,
    },
    /// The server has never acknowledged: from now on delivery is
    /// at-most-once. `settled` notifications in flight are taken as settled.
    AcksUnsupported {
        /// Notifications that were in flight and are now settled.
        settled: usize,
    },
}

/// What was unacknowledged when a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unacknowledged<F> {
    /// To be sent again, oldest first, before anything newer.
    Resend(VecDeque<F>),
    /// The server has acknowledged nothing of this source yet, and was sent
    /// unacknowledged notifications again once already: this many are taken
    /// as settled, not sent again.
    Settled(usize),
}

/// What an acknowledgement matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// It settled the oldest notification in flight.
    Notification,
    /// Nothing was in flight: a status for something else.
    Nothing,
}

/// The delivery state of one source. It lives as long as the source (the
/// knowledge that a server acknowledges survives reconnections); the frames
/// in flight belong to the current connection.
#[derive(Debug)]
pub struct Delivery<F> {
    window: usize,
    ack_timeout: Duration,
    /// Whether the server acknowledges, as far as we know.
    acks: bool,
    /// Whether any acknowledgement has been seen.
    acks_seen: bool,
    /// Whether notifications were handed back for re-sending before any
    /// acknowledgement was seen (it happens once).
    resent_unproven: bool,
    /// Written and not yet acknowledged, oldest first.
    in_flight: VecDeque<F>,
    /// When the oldest notification in flight last saw progress.
    last_progress: Option<Instant>,
    /// Whether the ack clock is stopped (reading paused).
    paused: bool,
}

impl<F> Delivery<F> {
    /// A source's delivery state: `window` notifications in flight at most,
    /// `ack_timeout` for progress.
    pub fn new(window: usize, ack_timeout: Duration) -> Self {
        Delivery {
            window: window.max(1),
            ack_timeout,
            acks: true,
            acks_seen: false,
            resent_unproven: false,
            in_flight: VecDeque::new(),
            last_progress: None,
            paused: false,
        }
    }

    /// Whether notifications are tracked until acknowledged.
    pub fn acknowledges(&self) -> bool {
        self.acks
    }

    /// Notifications in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// How many more notifications may be written now.
    pub fn room(&self) -> usize {
        if !self.acks || self.paused {
            usize::MAX
        } else {
            self.window.saturating_sub(self.in_flight.len())
        }
    }

    /// Records a written notification. Returns `true` when it is settled at
    /// once (the server does not acknowledge); otherwise it waits in flight.
    pub fn on_sent(&mut self, frame: F, now: Instant) -> bool {
        if !self.acks {
            return true;
        }
        if self.in_flight.is_empty() {
            // The first notification in flight starts the ack clock.
            self.last_progress = Some(now);
        }
        self.in_flight.push_back(frame);
        false
    }

    /// Takes a status message of a connected session.
    pub fn on_ack(&mut self, now: Instant) -> Acked {
        self.acks_seen = true;
        self.last_progress = Some(now);
        match self.in_flight.pop_front() {
            Some(_) => Acked::Notification,
            None => Acked::Nothing,
        }
    }

    /// Whether the ack clock is stopped.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stops (`true`) or restarts the ack clock: no acknowledgement can be
    /// read while the connection task does not read.
    pub fn set_paused(&mut self, paused: bool, now: Instant) {
        if self.paused && !paused {
            self.last_progress = Some(now);
        }
        self.paused = paused;
    }

    /// When [`Delivery::on_timeout`] is due, if anything is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.acks || self.paused || self.in_flight.is_empty() {
            return None;
        }
        self.last_progress.map(|t| t + self.ack_timeout)
    }

    /// The ack deadline has passed (`now` >= [`Delivery::deadline`]).
    /// `None` if it has not after all.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Timeout> {
        if self.deadline().is_none_or(|d| now < d) {
            return None;
        }
        if self.acks_seen {
            return Some(Timeout::LinkDead {
                in_flight: self.in_flight.len(),
            });
        }
        self.acks = false;
        let settled = self.in_flight.len();
        self.in_flight.clear();
        Some(Timeout::AcksUnsupported { settled })
    }

    /// Whether everything written has been acknowledged (or need not be).
    pub fn is_settled(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Ends the connection's part: the unacknowledged notifications, oldest
    /// first, to be sent again before anything newer; or, when the server has
    /// acknowledged nothing of this source and was sent notifications again
    /// once already, their count, taken as settled.
    pub fn take_unacknowledged(&mut self) -> Unacknowledged<F> {
        self.last_progress = None;
        self.paused = false;
        let frames = std::mem::take(&mut self.in_flight);
        if self.acks_seen || frames.is_empty() {
            return Unacknowledged::Resend(frames);
        }
        if std::mem::replace(&mut self.resent_unproven, true) {
            Unacknowledged::Settled(frames.len())
        } else {
            Unacknowledged::Resend(frames)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn the_window_bounds_what_is_in_flight() {
        let now = t0();
        let mut d = Delivery::new(2, TIMEOUT);
        assert_eq!(d.room(), 2);
        assert!(!d.on_sent("a", now));
        assert!(!d.on_sent("b", now));
        assert_eq!(d.room(), 0);
        assert_eq!(d.on_ack(now), Acked::Notification);
        assert_eq!(d.room(), 1);
    }

    #[test]
    fn acks_settle_oldest_first_and_extra_statuses_match_nothing() {
        let now = t0();
        let mut d = Delivery::new(8, TIMEOUT);
        for f in ["a", "b", "c"] {
            d.on_sent(f, now);
        }
        d.on_ack(now);
        assert_eq!(
            d.take_unacknowledged(),
            Unacknowledged::Resend(["b", "c"].into())
        );
        assert_eq!(d.on_ack(now), Acked::Nothing);
    }

    #[test]
    fn a_server_that_acknowledged_nothing_is_sent_them_again_once() {
        let now = t0();
        let mut d = Delivery::new(8, TIMEOUT);
        d.on_sent("a", now);
        d.on_sent("b", now);
        assert_eq!(
            d.take_unacknowledged(),
            Unacknowledged::Resend(["a", "b"].into())
        );
        d.on_sent("a", now);
        d.on_sent("b", now);
        d.on_sent("c", now);
        assert_eq!(d.take_unacknowledged(), Unacknowledged::Settled(3));
        assert_eq!(d.take_unacknowledged(), Unacknowledged::Resend([].into()));
        // Once it acknowledges, everything unacknowledged goes again, every time.
        d.on_sent("d", now);
        d.on_ack(now);
        d.on_sent("e", now);
        assert_eq!(
            d.take_unacknowledged(),
            Unacknowledged::Resend(["e"].into())
        );
        d.on_sent("f", now);
        assert_eq!(
            d.take_unacknowledged(),
            Unacknowledged::Resend(["f"].into())
        );
    }

    #[test]
    fn a_server_that_never_acknowledges_becomes_at_most_once() {
        let now = t0();
        let mut d = Delivery::new(8, TIMEOUT);
        d.on_sent("a", now);
        d.on_sent("b", now);
        assert_eq!(d.deadline(), Some(now + TIMEOUT));
        assert_eq!(d.on_timeout(now + TIMEOUT / 2), None);
        assert_eq!(
            d.on_timeout(now + TIMEOUT),
            Some(Timeout::AcksUnsupported { settled: 2 })
        );
        assert!(!d.acknowledges());
        assert!(d.on_sent("c", now), "settled when written");
        assert_eq!(d.deadline(), None);
        assert_eq!(d.room(), usize::MAX);
    }

    #[test]
    fn a_server_that_stops_acknowledging_means_a_dead_link() {
        let now = t0();
        let mut d = Delivery::new(8, TIMEOUT);
        d.on_sent("a", now);
        d.on_ack(now);
        let later = now + Duration::from_secs(1);
        d.on_sent("b", later);
        assert_eq!(d.deadline(), Some(later + TIMEOUT));
        assert_eq!(
            d.on_timeout(later + TIMEOUT),
            Some(Timeout::LinkDead { in_flight: 1 })
        );
        assert!(d.acknowledges());
    }

    #[test]
    fn progress_moves_the_deadline() {
        let now = t0();
        let mut d = Delivery::new(8, TIMEOUT);
        d.on_sent("a", now);
        d.on_sent("b", now);
        let later = now + Duration::from_secs(3);
        d.on_ack(later);
        assert_eq!(d.deadline(), Some(later + TIMEOUT));
    }

    #[test]
    fn paused_reading_lifts_the_window_and_stops_the_clock() {
        let now = t0();
        let mut d = Delivery::new(1, TIMEOUT);
        d.on_sent("a", now);
        assert_eq!(d.room(), 0);
        d.set_paused(true, now);
        assert_eq!(d.room(), usize::MAX);
        assert_eq!(d.deadline(), None);
        assert_eq!(d.on_timeout(now + TIMEOUT * 10), None);
        let resumed = now + TIMEOUT * 10;
        d.set_paused(false, resumed);
        assert_eq!(d.deadline(), Some(resumed + TIMEOUT));
    }

    #[test]
    fn what_acks_taught_survives_a_new_connection() {
        let now = t0();
        let mut d = Delivery::new(4, TIMEOUT);
        d.on_sent("a", now);
        d.on_timeout(now + TIMEOUT);
        assert_eq!(d.take_unacknowledged(), Unacknowledged::Resend([].into()));
        assert!(
            d.on_sent("b", now),
            "still at-most-once after a reconnection"
        );
    }

    proptest! {
        /// Whatever the interleaving of sends and acks, what is handed back
        /// is exactly the unacknowledged tail, in order, and the window is
        /// never exceeded.
        #[test]
        fn resend_order_is_the_unacknowledged_tail(ops in proptest::collection::vec(any::<bool>(), 0..200), window in 1usize..16) {
            let now = t0();
            let mut d = Delivery::new(window, TIMEOUT);
            let (mut next, mut acked) = (0u32, 0u32);
            for send in ops {
                if send {
                    if d.room() > 0 {
                        d.on_sent(next, now);
                        next += 1;
                    }
                } else if d.on_ack(now) == Acked::Notification {
                    acked += 1;
                }
                prop_assert!(d.in_flight() <= window);
            }
            // The first connection's unacknowledged tail always goes again.
            let Unacknowledged::Resend(back) = d.take_unacknowledged() else {
                panic!("the first loss re-sends");
            };
            let back: Vec<u32> = back.into_iter().collect();
            prop_assert_eq!(back, (acked..next).collect::<Vec<_>>());
        }
    }
}
