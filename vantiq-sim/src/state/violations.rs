//! Protocol violations: recording them (and logging each), reading them, waiting for them.

use super::{lock, with_timeout, Core};
use crate::types::{SimError, Violation};
use std::time::Duration;

impl Core {
    /// Records a protocol violation (and logs it).
    pub(crate) fn violation(&self, source: Option<&str>, kind: &str, detail: String) {
        tracing::warn!(source, kind, "protocol violation: {detail}");
        let count = {
            let mut all = lock(&self.violations);
            all.push(Violation {
                source: source.map(str::to_owned),
                kind: kind.to_owned(),
                detail,
            });
            all.len()
        };
        self.violation_count.send_replace(count);
    }

    /// Every violation so far.
    pub(crate) fn violations(&self) -> Vec<Violation> {
        lock(&self.violations).clone()
    }

    /// Forgets the violations recorded so far.
    pub(crate) fn clear_violations(&self) {
        lock(&self.violations).clear();
        self.violation_count.send_replace(0);
    }

    /// Waits until at least `n` violations are recorded.
    pub(crate) async fn wait_violations(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Violation>, SimError> {
        let mut rx = self.violation_count.subscribe();
        let wait = async {
            let _ = rx.wait_for(|count| *count >= n).await;
            Ok(self.violations())
        };
        with_timeout(timeout, wait, || {
            format!("{} of {n} violations recorded", self.violations().len())
        })
        .await
    }
}
