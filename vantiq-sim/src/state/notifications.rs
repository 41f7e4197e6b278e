//! Notifications: recording what connectors send, reading them back, and waiting for
//! them.

use super::lock;
use super::sources::SourceEntry;
use super::Core;
use crate::types::{Notification, SimError};
use serde_json::Value;
use std::time::Duration;

impl Core {
    /// Stores a notification; returns the number received so far (for `announce`).
    pub(crate) fn record_notification(&self, entry: &SourceEntry, object: Value) -> u64 {
        let mut st = lock(&entry.state);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.notifications.push_back(Notification { seq, object });
        if let Some(keep) = self.keep_notifications {
            while st.notifications.len() > keep {
                st.notifications.pop_front();
            }
        }
        st.next_seq
    }

    /// The source's notifications with `seq >= since` (those still kept).
    pub(crate) fn notifications(&self, name: &str, since: u64) -> Vec<Notification> {
        let Ok(entry) = self.entry(name) else {
            return Vec::new();
        };
        let st = lock(&entry.state);
        let first = st.next_seq - st.notifications.len() as u64;
        let skip = since.saturating_sub(first) as usize;
        st.notifications.iter().skip(skip).cloned().collect()
    }

    /// Waits until the source has received at least `count` notifications in total.
    pub(crate) async fn wait_notification_count(
        &self,
        name: &str,
        count: u64,
        timeout: Duration,
    ) -> Result<(), SimError> {
        let mut rx = self.entry(name)?.notif_count.subscribe();
        let reached = async {
            loop {
                if *rx.borrow_and_update() >= count {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, reached).await.map_err(|_| {
            let got = *rx.borrow();
            SimError::timeout(
                format!("source {name:?} received {got} of {count} notifications"),
                timeout,
            )
        })
    }
}
