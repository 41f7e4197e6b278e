//! What the console's event stream watches: a change of any source's state, new
//! notifications, new violations. Each is a counter that only says "look again"; the data
//! itself is read by sequence number or count, so a change seen late is never a change
//! missed.

use super::{lock, Core, SourceEntry};
use std::sync::Arc;
use tokio::sync::watch;

/// Receivers that wake on each kind of change.
pub(crate) struct Changes {
    /// Any source's connection state or configuration.
    pub(crate) sources: watch::Receiver<u64>,
    /// Notifications recorded on any source.
    pub(crate) notifications: watch::Receiver<u64>,
    /// Violations recorded (or cleared).
    pub(crate) violations: watch::Receiver<usize>,
}

impl Core {
    /// Receivers for every kind of change, all marked unseen.
    pub(crate) fn changes(&self) -> Changes {
        let mut changes = Changes {
            sources: self.conn_version.subscribe(),
            notifications: self.activity.subscribe(),
            violations: self.violation_count.subscribe(),
        };
        changes.sources.mark_changed();
        changes.notifications.mark_changed();
        changes.violations.mark_changed();
        changes
    }

    /// Says that notifications were recorded (the reader calls it once per batch).
    pub(crate) fn notifications_recorded(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Each source's notification count so far (its next sequence number), by name.
    pub(crate) fn notification_counts(&self) -> Vec<(String, u64)> {
        let entries: Vec<Arc<SourceEntry>> = lock(&self.sources).values().cloned().collect();
        entries
            .iter()
            .map(|e| (e.name.clone(), *e.notif_count.borrow()))
            .collect()
    }

    /// How many violations are recorded.
    pub(crate) fn violation_count(&self) -> usize {
        *self.violation_count.borrow()
    }
}
