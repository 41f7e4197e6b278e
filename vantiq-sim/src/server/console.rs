//! The browser console: its page and assets, embedded in the binary (it works offline and
//! needs no build step), and the event stream that keeps the page up to date.
//!
//! `GET /sim/events` is a stream of Server-Sent Events, each saying what to read again
//! through the control API: `sources` (every source's status, sent whole: it is small;
//! its reconnect secrets only counted, as `reconnect_secret_count`),
//! `notifications` (`{"source", "count"}`: the page fetches the ones it has not seen, by
//! sequence number) and `violations` (`{"count"}`). Since the data is read by sequence
//! number or count, a change reported late is never a change missed. Changes are
//! gathered for at most a tenth of a second between events, so a benchmark running while
//! the console is open costs the emulator a few scans a second.

use super::control::without_secrets;
use super::http::AppState;
use crate::state::{Changes, Core};
use crate::types::SourceStatus;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::stream::{self, Stream};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// The shortest time between two scans for changes.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The page and its assets (no data in them, so open even with a control token).
pub(crate) fn asset_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/console/console.js",
            get(|| asset("text/javascript; charset=utf-8", CONSOLE_JS)),
        )
        .route(
            "/console/console.css",
            get(|| asset("text/css; charset=utf-8", CONSOLE_CSS)),
        )
}

/// The event stream (data: behind the control token).
pub(crate) fn data_routes() -> Router<AppState> {
    Router::new().route("/sim/events", get(events))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn events(
    axum::extract::State(core): axum::extract::State<Arc<Core>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = Watch {
        changes: core.changes(),
        core,
        counts: HashMap::new(),
        queue: VecDeque::new(),
        last_scan: None,
    };
    let stream = stream::unfold(watch, |mut w| async move {
        loop {
            if let Some(event) = w.queue.pop_front() {
                return Some((Ok(event), w));
            }
            w.next_changes().await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One page's view: what it was last told.
struct Watch {
    core: Arc<Core>,
    changes: Changes,
    /// Each source's notification count as last reported.
    counts: HashMap<String, u64>,
    queue: VecDeque<Event>,
    last_scan: Option<Instant>,
}

impl Watch {
    /// Waits for changes, then queues an event for each.
    async fn next_changes(&mut self) {
        if let Some(last) = self.last_scan {
            tokio::time::sleep_until(last + MIN_INTERVAL).await;
        }
        let c = &mut self.changes;
        let changed = |rx_changed: Result<bool, _>| rx_changed.unwrap_or(false);
        let (mut sources, mut notifications, mut violations) = (
            changed(c.sources.has_changed()),
            changed(c.notifications.has_changed()),
            changed(c.violations.has_changed()),
        );
        if !(sources || notifications || violations) {
            // `changed()` marks what it saw as seen: note which one woke.
            tokio::select! {
                _ = c.sources.changed() => sources = true,
                _ = c.notifications.changed() => notifications = true,
                _ = c.violations.changed() => violations = true,
            }
        }
        self.last_scan = Some(Instant::now());
        if sources {
            self.changes.sources.borrow_and_update();
            self.queue
                .push_back(json_event("sources", &page_sources(&self.core)));
        }
        if notifications {
            self.changes.notifications.borrow_and_update();
            for (source, count) in self.core.notification_counts() {
                if self.counts.get(&source) != Some(&count) {
                    let data = json!({"source": source, "count": count});
                    self.queue.push_back(json_event("notifications", &data));
                    self.counts.insert(source, count);
                }
            }
        }
        if violations {
            self.changes.violations.borrow_and_update();
            let data = json!({"count": self.core.violation_count()});
            self.queue.push_back(json_event("violations", &data));
        }
    }
}

/// Every source's status for the page: its reconnect secrets counted, never shown.
fn page_sources(core: &Core) -> Vec<SourceStatus> {
    core.sources().into_iter().map(without_secrets).collect()
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    let text = serde_json::to_string(data).expect("status and counts always serialise");
    Event::default().event(name).data(text)
}
