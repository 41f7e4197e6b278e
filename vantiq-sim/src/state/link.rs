//! The state's handle on one WebSocket session ([`SessionLink`]): the queue its writer
//! drains, its publish credit, the acknowledgements it owes, how to end it or make it go
//! silent, its query load run, and the frame type it sends.

use crate::load::LoadRun;
use crate::types::{FrameMode, FrameType};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// How many publish frames may wait in one session's queue before publishers wait: enough
/// for the writer to batch, little enough to bound memory when a connector reads slowly.
const PUBLISH_CREDIT: usize = 4096;

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
    /// Whether the reader reads the socket (see [`Reading`]).
    reading: watch::Sender<Reading>,
    /// An answer frame of a streamed query that found its stream full: the reader hands
    /// it over (waiting) before it reads the next frame, so a slow reader of the stream
    /// slows the connector down rather than the emulator keeping what it cannot pass on.
    pub(crate) backlog: Mutex<Option<(mpsc::Sender<serde_json::Value>, serde_json::Value)>>,
}

/// Whether a session's reader reads its socket. While it does not, the socket stays open
/// and nothing polls its read side, so what the connector writes fills the kernel's
/// buffers and then its own writes block: a server that stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Reading as usual.
    On,
    /// Asked to stop; the reader stops before it reads the next frame.
    StopAsked,
    /// The reader has stopped and waits to be resumed.
    Stopped,
    /// The session has ended.
    Ended,
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
            reading: watch::Sender::new(Reading::On),
            backlog: Mutex::new(None),
        }
    }

    /// Asks the reader to stop reading; resolves once it has (false if the session ended
    /// first).
    pub(crate) async fn stop_reading(&self) -> bool {
        self.reading.send_if_modified(|r| {
            let ask = *r == Reading::On;
            if ask {
                *r = Reading::StopAsked;
            }
            ask
        });
        let mut rx = self.reading.subscribe();
        let state = rx
            .wait_for(|r| matches!(r, Reading::Stopped | Reading::Ended))
            .await
            .map(|r| *r);
        matches!(state, Ok(Reading::Stopped))
    }

    /// Lets the reader read again; false if the session has ended.
    pub(crate) fn resume_reading(&self) -> bool {
        let mut ended = false;
        self.reading.send_if_modified(|r| {
            ended = *r == Reading::Ended;
            let resume = matches!(r, Reading::StopAsked | Reading::Stopped);
            if resume {
                *r = Reading::On;
            }
            resume
        });
        !ended
    }

    /// Whether reading is stopped or asked to stop.
    pub(crate) fn reading_stopped(&self) -> bool {
        matches!(
            *self.reading.borrow(),
            Reading::StopAsked | Reading::Stopped
        )
    }

    /// The reader's view of [`Reading`]: what it is asked to do, and where it reports.
    pub(crate) fn reading(&self) -> &watch::Sender<Reading> {
        &self.reading
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

    /// Queues a frame to be sent exactly as given; false if the session has ended.
    pub(crate) fn send_raw(&self, msg: Message) -> bool {
        self.tx.send(Out::Raw(msg)).is_ok()
    }

    /// Queues a publish, waiting for credit; false if the session has ended.
    pub(crate) async fn send_data(&self, msg: Message) -> bool {
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
