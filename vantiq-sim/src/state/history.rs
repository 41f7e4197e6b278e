//! Each source's connection history (connects, refusals, `reconnectRequired`, drops,
//! disconnections, faults), kept short, and the word that says its state now: what the
//! console and `sources` show.

use super::sources::SourceState;
use crate::types::HistoryEvent;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many events each source keeps (the oldest go first).
const KEEP: usize = 50;

/// A source's recent connection events.
#[derive(Default)]
pub(super) struct History {
    events: VecDeque<HistoryEvent>,
    /// When the current connection completed its handshake (Unix milliseconds).
    pub(super) connected_at_ms: Option<u64>,
    /// Whether the last connection attempt was refused.
    pub(super) refused: bool,
}

impl History {
    /// Records an event now.
    pub(super) fn push(&mut self, event: &str, detail: impl Into<String>) {
        if self.events.len() == KEEP {
            self.events.pop_front();
        }
        self.refused = event == "refused";
        if event == "connected" {
            self.connected_at_ms = Some(now_ms());
        }
        self.events.push_back(HistoryEvent {
            at_ms: now_ms(),
            event: event.to_owned(),
            detail: detail.into(),
        });
    }

    /// The events kept, oldest first.
    pub(super) fn events(&self) -> Vec<HistoryEvent> {
        self.events.iter().cloned().collect()
    }
}

/// The source's state as a word: `connected`, `reconnecting` (a socket holds the source
/// but has not completed a handshake since `reconnectRequired`), `refused`,
/// `disconnected`, or `never connected`.
pub(super) fn state_word(st: &SourceState) -> &'static str {
    match (&st.owner, st.connected) {
        (Some(_), true) => "connected",
        (Some(_), false) => "reconnecting",
        (None, _) if st.history.refused => "refused",
        (None, _) if st.connections > 0 => "disconnected",
        (None, _) => "never connected",
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
