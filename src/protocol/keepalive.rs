//! Keepalive of one connection: when to send a WebSocket ping and when a
//! missing pong means the link is half-open.
//!
//! Pure, like [`super::delivery`]: the connection task passes `now` in, sleeps
//! until [`Keepalive::next_wakeup`], and carries out what [`Keepalive::on_wakeup`]
//! says. A ping goes out every `interval` while no pong is outstanding; a pong
//! that has not come back `pong_timeout` after its ping (by default half an
//! interval) declares the link dead, so a half-open link is noticed within one
//! and a half intervals.

use std::time::{Duration, Instant};

/// What to do at a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Nothing yet.
    Wait,
    /// Write a ping.
    Ping,
    /// The pong is overdue: the link is dead.
    Dead {
        /// How long the pong was waited for.
        waited: Duration,
    },
}

/// The ping schedule and the pong deadline of one connection.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    pong_timeout: Duration,
    enabled: bool,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
}

impl Keepalive {
    /// A connection made at `now`; pings every `interval` when `enabled`
    /// (server.config's `sendPings`), and waits `pong_timeout` for each pong.
    pub fn new(now: Instant, interval: Duration, pong_timeout: Duration, enabled: bool) -> Self {
        Keepalive {
            interval,
            pong_timeout,
            enabled,
            next_ping: now + interval,
            pong_deadline: None,
        }
    }

    /// When [`Keepalive::on_wakeup`] has something to do; `None` when pings
    /// are off.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        Some(self.pong_deadline.unwrap_or(self.next_ping))
    }

    /// The time has come (or not yet: then [`Beat::Wait`]).
    pub fn on_wakeup(&mut self, now: Instant) -> Beat {
        if !self.enabled {
            return Beat::Wait;
        }
        if let Some(deadline) = self.pong_deadline {
            if now >= deadline {
                return Beat::Dead {
                    waited: self.pong_timeout,
                };
            }
            return Beat::Wait;
        }
        if now >= self.next_ping {
            self.pong_deadline = Some(now + self.pong_timeout);
            // The next ping is due an interval after this one was written
            // (a late wake-up delays the schedule rather than bunching pings).
            self.next_ping = now + self.interval;
            return Beat::Ping;
        }
        Beat::Wait
    }

    /// A pong arrived.
    pub fn on_pong(&mut self) {
        self.pong_deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_secs(20);

    #[test]
    fn pings_every_interval_while_pongs_come_back() {
        let t = Instant::now();
        let mut k = Keepalive::new(t, I, I / 2, true);
        assert_eq!(k.next_wakeup(), Some(t + I));
        assert_eq!(k.on_wakeup(t + I / 2), Beat::Wait);
        assert_eq!(k.on_wakeup(t + I), Beat::Ping);
        assert_eq!(k.next_wakeup(), Some(t + I + I / 2), "the pong deadline");
        k.on_pong();
        assert_eq!(k.next_wakeup(), Some(t + 2 * I));
        assert_eq!(k.on_wakeup(t + 2 * I), Beat::Ping);
    }

    #[test]
    fn a_missing_pong_is_a_dead_link_half_an_interval_later() {
        let t = Instant::now();
        let mut k = Keepalive::new(t, I, I / 2, true);
        assert_eq!(k.on_wakeup(t + I), Beat::Ping);
        assert_eq!(k.on_wakeup(t + I + I / 4), Beat::Wait);
        assert_eq!(k.on_wakeup(t + I + I / 2), Beat::Dead { waited: I / 2 });
    }

    #[test]
    fn no_second_ping_while_one_is_outstanding() {
        let t = Instant::now();
        let mut k = Keepalive::new(t, I, I / 2, true);
        assert_eq!(k.on_wakeup(t + I), Beat::Ping);
        // Woken early for another reason: no ping, the deadline stands.
        assert_eq!(k.on_wakeup(t + I + Duration::from_secs(1)), Beat::Wait);
    }

    #[test]
    fn the_pong_timeout_is_the_setting() {
        let t = Instant::now();
        let wait = Duration::from_secs(3);
        let mut k = Keepalive::new(t, I, wait, true);
        assert_eq!(k.on_wakeup(t + I), Beat::Ping);
        assert_eq!(k.next_wakeup(), Some(t + I + wait));
        assert_eq!(k.on_wakeup(t + I + wait), Beat::Dead { waited: wait });
    }

    #[test]
    fn disabled_pings_never_wake_or_ping() {
        let t = Instant::now();
        let mut k = Keepalive::new(t, I, I / 2, false);
        assert_eq!(k.next_wakeup(), None);
        assert_eq!(k.on_wakeup(t + 100 * I), Beat::Wait);
    }

    #[test]
    fn a_late_wakeup_does_not_bunch_pings() {
        let t = Instant::now();
        let mut k = Keepalive::new(t, I, I / 2, true);
        let late = t + 5 * I;
        assert_eq!(k.on_wakeup(late), Beat::Ping);
        k.on_pong();
        assert_eq!(k.next_wakeup(), Some(late + I));
    }
}
