//! One connected socket, served: frames in -> protocol -> frames out.
//!
//! The loop reads frames and feeds them to the protocol's state machines
//! ([`Session`], [`Delivery`], [`Keepalive`]), drains the outbox within the
//! flow-control window, and writes through the socket's cancel-safe
//! `poll_io` (writes, then reads), one branch of a `select!`, so that a slow write never stops the
//! reading of acknowledgements and pongs (and a stream of reads never starves
//! writes). Every decision is the state machines'; this file only carries
//! them out. Handlers run above, never here, and handing them an event never
//! waits (see `events`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use super::events::{Event, EventSender, QueryEvent};
use super::outbox::Outgoing as Queued;
use super::supervisor::{announce_connected, decode_frame};
use super::{ConnectionState, Shared};
use crate::protocol::delivery::{Acked, Timeout, Unacknowledged};
use crate::protocol::keepalive::Beat;
use crate::protocol::{Action, Delivery, Keepalive, Session};
use crate::transport::{Frame, Io, Outgoing, OwnText, Socket};

/// Frames queued for writing at most, before the outbox is left alone.
const BATCH: usize = 256;

/// Events (publishes, queries, statuses for the handler) handed over in one
/// turn of the loop, at most, before the loop looks at the outbox and the
/// writer again.
const READ_BURST: usize = 64;

/// Frames read in one turn of the loop, at most. Acknowledgements hand
/// nothing over and are cheap, so more of them are taken per turn: each
/// opens the window by one, and the notifications they let out then go in
/// one write to the socket instead of one per 64 (a write on loopback also
/// wakes the reader, the largest cost of a notification in the profile).
const READ_FRAMES: usize = 1024;

/// How a served connection ended.
pub(super) enum End {
    /// The connector was closed.
    Shutdown,
    /// `reconnectRequired`: connect again at once.
    Reconnect,
    /// The connection was lost.
    Lost(String),
}

/// The clock, as the protocol's state machines take it (tokio's, so that
/// tests with a paused clock drive them too).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// What the loop keeps between frames.
struct Link<'a> {
    shared: &'a Arc<Shared>,
    session: Session,
    delivery: &'a mut Delivery<OwnText>,
    epoch: u64,
    events: &'a EventSender,
    /// Frames to write, in order.
    pending: VecDeque<Frame>,
    drained: Vec<Queued>,
    /// Whether a connection is up on this socket (configured, its close
    /// event not yet sent).
    live: bool,
    /// Events handed to the runtime in the current read burst.
    handed: usize,
}

impl Link<'_> {
    /// Hands an event of a frame read to the runtime.
    fn hand_over(&mut self, event: Event) {
        self.handed += 1;
        self.events.send(event);
    }

    /// Moves what may be written now from the outbox to `pending`.
    fn fill_pending(&mut self) {
        if self.pending.len() >= BATCH || !self.session.is_connected() {
            return;
        }
        let mut drained = std::mem::take(&mut self.drained);
        self.shared.outbox.drain(
            self.delivery.room(),
            BATCH - self.pending.len(),
            &mut drained,
        );
        let (mut sent, mut resent, mut settled) = (0, 0, 0);
        if drained.is_empty() {
            // Kept, with its capacity, for the next drain.
            self.drained = drained;
            return;
        }
        let now = now();
        for item in drained.drain(..) {
            match item {
                Queued::Notification { frame, resend } => {
                    sent += 1;
                    resent += u64::from(resend);
                    settled += u64::from(self.delivery.on_sent(frame.clone(), now));
                    self.pending.push_back(Frame::Own(frame));
                }
                Queued::Answer(answer) => {
                    if answer.epoch != self.epoch {
                        tracing::debug!(reply_address = %answer.reply_address, "dropping an answer to a query of an earlier connection");
                        continue;
                    }
                    match self.session.settle(&answer.reply_address, answer.status) {
                        Ok(()) => self.pending.push_back(Frame::Text(answer.frame.into())),
                        Err(e) => tracing::debug!(error = %e, "refused to send a query answer"),
                    }
                }
            }
        }
        self.drained = drained;
        if sent > 0 {
            self.shared.stats.add_settled(settled);
            self.shared.stats.add_sent(sent, resent);
            if settled > 0 {
                // Settled when written (a server that does not acknowledge).
                self.release_frames_if_idle();
            }
        }
    }

    /// Lets go of the source's frame chunk when none of its notifications
    /// is in flight or buffered (see `frames`).
    fn release_frames_if_idle(&self) {
        if self.delivery.is_settled() && self.shared.outbox.notifications() == 0 {
            self.shared.frames.release();
        }
    }

    /// Takes one frame from the server, read by `now`; `Some` when the
    /// connection ends.
    fn on_frame(
        &mut self,
        frame: Frame,
        keepalive: &mut Keepalive,
        now: std::time::Instant,
    ) -> Option<End> {
        match &frame {
            Frame::Pong => keepalive.on_pong(),
            Frame::Close(reason) => {
                return Some(End::Lost(format!(
                    "the server closed the connection ({})",
                    reason.as_deref().unwrap_or("no reason given")
                )))
            }
            _ => {}
        }
        let Some(Ok(msg)) = decode_frame(self.shared, &frame, self.events.publishes()) else {
            return None;
        };
        let shared = self.shared;
        match self.session.on_message(msg) {
            Action::Send(frame) => self.pending.push_back(Frame::Text(frame.into())),
            Action::Publish { object } => {
                // Only from a port made with `Publishes::Tree`, which the
                // runtime never makes: handed over as text all the same.
                shared.stats.add_publish();
                let object = object.to_string().into_boxed_str();
                self.hand_over(Event::PublishText { object })
            }
            Action::PublishRaw { object } => {
                shared.stats.add_publish();
                self.hand_over(Event::PublishRaw { object })
            }
            Action::PublishText { object } => {
                shared.stats.add_publish();
                self.hand_over(Event::PublishText { object })
            }
            Action::Query {
                params,
                reply_address,
            } => {
                let received = shared.stats.query_latency.start();
                let reply = super::reply::Reply::new(
                    self.shared_arc(),
                    self.epoch,
                    reply_address,
                    received,
                );
                self.events
                    .send(Event::Query(Box::new(QueryEvent { params, reply })))
            }
            Action::Ack { status, body } => {
                if status >= 300 {
                    tracing::warn!(status, body = %body.clone().unwrap_or_default(), "the server reported an error for a message");
                    self.hand_over(Event::Status {
                        status,
                        body: body.map(Box::new),
                    });
                }
                if self.delivery.on_ack(now) == Acked::Notification {
                    // Before the count, so that `flush` returns after it.
                    self.release_frames_if_idle();
                    shared.stats.add_acknowledged(status >= 300);
                }
            }
            Action::Connected { config } | Action::Reconfigured { config } => {
                // A same-socket reconnection completed, or a new
                // configuration arrived unasked: either way a new connection.
                self.end_connection();
                self.announce(config);
            }
            Action::Reconfigure { resend } => {
                tracing::info!("reconnecting on the same socket at the server's request");
                self.end_connection();
                shared.set_state(ConnectionState::Connecting);
                self.pending.push_back(Frame::Text(resend.into()));
            }
            Action::Reconnect => {
                self.pending.push_back(Frame::Close(None));
                return Some(End::Reconnect);
            }
            Action::CloseForGood => {
                tracing::info!(
                    "the server asked this connector to close (testRequestsClientClose)"
                );
                shared.shutdown.send_replace(true);
                self.pending.push_back(Frame::Close(None));
                return Some(End::Shutdown);
            }
            Action::Fail(failure) => {
                return Some(End::Lost(format!(
                    "the server refused the reconnection: {failure:?}"
                )))
            }
            Action::Ignore(why) => tracing::debug!(why, "ignored a server message"),
        }
        None
    }

    /// The connection (not the socket) has ended: what was unacknowledged
    /// goes out again afterwards, the answers of its queries are dropped,
    /// and the runtime runs the close handler.
    fn end_connection(&mut self) {
        self.requeue_unacknowledged();
        self.shared.set_state(ConnectionState::Disconnected);
        self.shared.outbox.purge_answers();
        if std::mem::take(&mut self.live) {
            self.events.send(Event::Closed);
        }
    }

    /// A connection is up: a new connection number, and the connect event.
    fn announce(&mut self, config: serde_json::Value) {
        self.epoch = announce_connected(self.shared, self.events, config);
        self.live = true;
    }

    /// Puts the unacknowledged notifications back at the front of the
    /// outbox, to be sent again.
    fn requeue_unacknowledged(&mut self) {
        let frames = match self.delivery.take_unacknowledged() {
            Unacknowledged::Resend(frames) => frames,
            Unacknowledged::Settled(0) => return,
            Unacknowledged::Settled(count) => {
                tracing::warn!(
                    count,
                    "the server has acknowledged no notification of this source and was sent them again once already: the ones unacknowledged when the connection ended are not sent again"
                );
                self.shared.stats.add_settled(count as u64);
                return;
            }
        };
        if !frames.is_empty() {
            tracing::info!(
                count = frames.len(),
                "re-queueing unacknowledged notifications to send again"
            );
            self.shared.outbox.requeue_front(frames.into_iter());
        }
    }

    fn shared_arc(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Closing: whether everything is delivered and every query answered.
    fn is_drained(&self) -> bool {
        self.pending.is_empty()
            && self.shared.outbox.is_empty()
            && self.delivery.is_settled()
            && self.session.open_queries() == 0
    }
}

/// The socket writes the pending frames and, once they are written, takes
/// more from the outbox while it has them (within the window), so that
/// everything ready goes out in one write to the socket.
impl Outgoing for Link<'_> {
    fn queue(&mut self) -> &mut VecDeque<Frame> {
        &mut self.pending
    }

    fn refill(&mut self) {
        self.fill_pending();
    }
}

/// Serves one connected socket until it ends.
pub(super) async fn serve(
    shared: &Arc<Shared>,
    mut socket: Socket,
    session: Session,
    config: serde_json::Value,
    delivery: &mut Delivery<OwnText>,
    events: &EventSender,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let settings = &shared.settings;
    let pong_timeout = settings.pong_timeout.unwrap_or(settings.ping_interval / 2);
    let mut keepalive = Keepalive::new(
        now(),
        settings.ping_interval,
        pong_timeout,
        shared.config.send_pings(),
    );
    let mut link = Link {
        shared,
        session,
        delivery,
        epoch: 0,
        events,
        pending: VecDeque::new(),
        drained: Vec::new(),
        live: false,
        handed: 0,
    };
    link.announce(config);
    let mut closing: Option<Instant> = None;
    let end = loop {
        if events.take_catch_up() {
            // See `EventSender::take_catch_up`.
            tokio::task::yield_now().await;
        }
        let paused = events.is_full();
        if paused != link.delivery.is_paused() {
            link.delivery.set_paused(paused, now());
        }
        link.fill_pending();
        if let Some(deadline) = closing {
            let drained = link.is_drained();
            if drained || Instant::now() >= deadline {
                if !drained {
                    close_unfinished(&mut link);
                }
                link.pending.push_back(Frame::Close(None));
                break End::Shutdown;
            }
        }
        let ack_deadline = link.delivery.deadline().map(Instant::from_std);
        let beat = keepalive.next_wakeup().map(Instant::from_std);

        // Writes first, so that a stream of incoming frames cannot starve
        // them; reads whenever the writer is busy or has nothing to do.
        tokio::select! {
            biased;
            _ = shutdown.changed(), if closing.is_none() => {
                closing = Some(Instant::now() + settings.close_timeout);
            }
            io = poll_fn(|cx| socket.poll_io(&mut link, !paused, cx)), if socket.has_work(&link.pending) || !paused => {
                match io {
                    Io::Written(Err(e)) => break End::Lost(format!("write failed: {e}")),
                    Io::Written(Ok(())) => {}
                    Io::Read(frame) => {
                        if let Some(end) = read_burst(&mut link, &mut socket, frame, &mut keepalive) {
                            break end;
                        }
                    }
                }
            }
            _ = events.below_limit(), if paused => {}
            _ = shared.outbox.wait_for_data(), if link.pending.is_empty() => {}
            _ = sleep_until(closing.unwrap_or_else(Instant::now)), if closing.is_some() => {}
            _ = sleep_until(beat.unwrap_or_else(Instant::now)), if beat.is_some() => {
                match keepalive.on_wakeup(now()) {
                    Beat::Wait => {}
                    Beat::Ping => link.pending.push_back(Frame::Ping),
                    Beat::Dead { waited } => break End::Lost(format!(
                        "no pong within {waited:?} of a ping"
                    )),
                }
            }
            _ = sleep_until(ack_deadline.unwrap_or_else(Instant::now)), if ack_deadline.is_some() => {
                match link.delivery.on_timeout(now()) {
                    None => {}
                    Some(Timeout::LinkDead { in_flight }) => break End::Lost(format!(
                        "no acknowledgement for {:?} while {in_flight} notifications are in flight",
                        settings.ack_timeout
                    )),
                    Some(Timeout::AcksUnsupported { settled }) => {
                        tracing::warn!("the server has not acknowledged any notification: delivery is at-most-once from now on for this source");
                        shared.stats.add_settled(settled as u64);
                    }
                }
            }
        }
    };

    // Write what is left (a close frame, if any), unless the link is gone.
    if !matches!(end, End::Lost(_)) {
        let flush = poll_fn(|cx| socket.poll_write(&mut link.pending, cx));
        let _ = timeout(settings.close_timeout, flush).await;
    }
    link.end_connection();
    end
}

/// This frame, and those already read behind it, up to a burst.
fn read_burst(
    link: &mut Link<'_>,
    socket: &mut Socket,
    first: Option<Result<Frame, crate::transport::TransportError>>,
    keepalive: &mut Keepalive,
) -> Option<End> {
    let mut next = Some(first);
    let mut taken = 0;
    link.handed = 0;
    // One clock read per burst: every frame of it had arrived by now.
    let now = now();
    while let Some(item) = next.take() {
        let ended = match item {
            None => Some(End::Lost("the server closed the connection".into())),
            Some(Err(e)) => Some(End::Lost(e.to_string())),
            Some(Ok(frame)) => link.on_frame(frame, keepalive, now),
        };
        taken += 1;
        if ended.is_some() {
            return ended;
        }
        if link.handed >= READ_BURST
            || taken >= READ_FRAMES
            || link.events.is_full()
            || link.events.should_catch_up()
        {
            return None;
        }
        next = socket.next_now();
    }
    None
}

/// The close timeout ran out: the queries still open get an error answer,
/// and what is not delivered is logged (and counted when the connection
/// ends for good).
fn close_unfinished(link: &mut Link<'_>) {
    let open = link.session.open_queries();
    if open > 0 {
        tracing::warn!(
            open,
            "closing: answering the queries still open with an error"
        );
        for frame in link.session.abandon_open_queries(CLOSING_ERROR) {
            link.pending.push_back(Frame::Text(frame.into()));
        }
    }
    let waiting = link.delivery.in_flight() + link.shared.outbox.notifications();
    if waiting > 0 {
        tracing::warn!(
            unacknowledged = link.delivery.in_flight(),
            buffered = link.shared.outbox.notifications(),
            "closing before every notification was delivered"
        );
    }
}

/// The answer of a query still open when the close timeout ran out.
const CLOSING_ERROR: &str = r#"{"messageCode":"io.vantiq.connector.closing","messageTemplate":"The connector closed before the query was answered.","parameters":[]}"#;
