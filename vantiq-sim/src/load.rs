//! The query load generator: many queries kept in flight on one source, issued and
//! answered inside the source's session, for benchmarks.
//!
//! [`crate::Sim::query`] serves one query per call: the caller's task registers it, the
//! session's writer sends it, the reader wakes the caller with the answer. That is three
//! tasks per query, and on a small machine the wake-ups between them, not the connector,
//! set the pace. A load run instead lives in the session: the reader records each final
//! answer and queues the next query at once, from a frame template serialised once, so a
//! query costs the emulator one parse and one formatted frame. The frames are exactly those
//! [`crate::Sim::query`] sends, and answers are checked by the same rules (`answers.rs`),
//! violations recorded as usual.

use crate::answers;
use crate::types::kinds;
use crate::wire;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// How to load a source with queries: [`crate::Sim::query_load`] sends `queries` queries,
/// keeping `in_flight` of them unanswered at a time (1 measures sequential latency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryLoad {
    /// How many queries to send in all.
    pub queries: u64,
    /// How many may await their final answer at once (at least 1).
    pub in_flight: u64,
    /// The time allowed for the whole run.
    #[serde(with = "millis", rename = "timeout_ms")]
    pub timeout: Duration,
}

impl QueryLoad {
    /// `queries` queries with `in_flight` outstanding at a time, within 60 seconds.
    pub fn new(queries: u64, in_flight: u64) -> Self {
        Self {
            queries,
            in_flight,
            timeout: Duration::from_secs(60),
        }
    }

    /// The same load with another time limit for the whole run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a [`crate::Sim::query_load`] run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryLoadReport {
    /// Queries that received a final answer (all of them, when the run returns `Ok`).
    pub answered: u64,
    /// Of those, how many ended with an error status (>= 300).
    pub errors: u64,
    /// Rows received in all (status 100 and 200 answers).
    pub rows: u64,
    /// From the first query sent to the last final answer received.
    #[serde(with = "millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// Each query's time from being queued for sending to its final answer being read, in
    /// the order the queries were sent.
    #[serde(skip)]
    pub latencies: Vec<Duration>,
}

impl QueryLoadReport {
    /// Final answers per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (0 to 100) of the latencies, by the nearest-rank method;
    /// `None` when nothing was answered.
    pub fn latency_percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.max(1) - 1).copied()
    }
}

/// A [`QueryLoadReport`] reduced to its figures, as the control API and the CLI give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryLoadSummary {
    /// Queries that received a final answer.
    pub answered: u64,
    /// Of those, how many ended with an error status (>= 300).
    pub errors: u64,
    /// Rows received in all.
    pub rows: u64,
    /// The whole run, in milliseconds.
    pub elapsed_ms: f64,
    /// Final answers per second.
    pub rate: f64,
    /// Latency percentiles in microseconds: `p50`, `p90`, `p99` and `max`.
    pub latency_us: LatencySummary,
}

/// Latency percentiles of a query load, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The slowest query.
    pub max: f64,
}

impl QueryLoadReport {
    /// The report's figures without the individual latencies.
    pub fn summary(&self) -> QueryLoadSummary {
        let us = |p: f64| {
            self.latency_percentile(p)
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        QueryLoadSummary {
            answered: self.answered,
            errors: self.errors,
            rows: self.rows,
            elapsed_ms: self.elapsed.as_secs_f64() * 1e3,
            rate: self.rate(),
            latency_us: LatencySummary {
                p50: us(50.0),
                p90: us(90.0),
                p99: us(99.0),
                max: us(100.0),
            },
        }
    }
}

/// Durations as whole milliseconds (fractions kept) in JSON.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1e3).map_err(serde::de::Error::custom)
    }
}

/// What the session should do about an answer that belongs to a run.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Recorded; send these next queries (possibly none).
    Recorded {
        next: Option<Message>,
        /// The run is complete: hand its report over.
        complete: bool,
    },
    /// The run was abandoned (its caller timed out): ignore the late answer.
    Ignored,
    /// A second answer after the final one: a violation.
    AfterFinal,
    /// An answer to a number of the run's block that was never sent: a violation.
    NeverSent,
}

/// One load run, kept by the session serving its source until the next run replaces it.
pub(crate) struct LoadRun {
    /// The first query number of the run's block; the run owns `first..first + total`.
    first: u64,
    total: u64,
    in_flight: u64,
    /// Queries sent so far: the next one is `first + sent`.
    sent: u64,
    /// When each sent query was queued, by `number - first`.
    sent_at: Vec<Instant>,
    /// Whether each sent query has had its final answer.
    finished: Vec<bool>,
    report: QueryLoadReport,
    started: Instant,
    /// The query frame around the query number: `prefix`, number, `suffix`.
    prefix: String,
    suffix: String,
    abandoned: bool,
    done: Option<oneshot::Sender<QueryLoadReport>>,
}

/// Stands for the query number while the frame template is serialised; a control
/// character, escaped by JSON, so it cannot clash with anything in the reply prefix.
const MARK: &str = "\u{1}n";

impl LoadRun {
    /// A run of `load` on `source`, owning query numbers `first..first + load.queries`.
    pub(crate) fn new(
        source: &str,
        params: &Value,
        load: &QueryLoad,
        first: u64,
        done: oneshot::Sender<QueryLoadReport>,
    ) -> Self {
        let addr = wire::reply_address_with(MARK);
        let template = wire::query_text(source, params, &addr);
        // Find the header itself (the parameters could hold the same text elsewhere), then
        // the mark inside it, escaped as JSON escapes it.
        let header = format!(
            r#""REPLY_ADDR_HEADER":{}"#,
            serde_json::to_string(&addr).expect("a string always serialises")
        );
        let escaped = serde_json::to_string(MARK).expect("a string always serialises");
        let escaped = &escaped[1..escaped.len() - 1];
        let at = template
            .find(&header)
            .and_then(|h| template[h..].find(escaped).map(|m| h + m))
            .expect("the template holds the header it was built with");
        Self {
            first,
            total: load.queries,
            in_flight: load.in_flight.max(1),
            sent: 0,
            sent_at: Vec::with_capacity(load.queries.min(1 << 20) as usize),
            finished: Vec::with_capacity(load.queries.min(1 << 20) as usize),
            report: QueryLoadReport {
                answered: 0,
                errors: 0,
                rows: 0,
                elapsed: Duration::ZERO,
                latencies: Vec::with_capacity(load.queries.min(1 << 20) as usize),
            },
            started: Instant::now(),
            prefix: template[..at].to_owned(),
            suffix: template[at + escaped.len()..].to_owned(),
            abandoned: false,
            done: Some(done),
        }
    }

    /// Whether query number `id` belongs to this run.
    pub(crate) fn owns(&self, id: u64) -> bool {
        id >= self.first && id - self.first < self.total
    }

    /// Whether the run is still waiting for answers.
    pub(crate) fn active(&self) -> bool {
        !self.abandoned && self.report.answered < self.total
    }

    /// The first query number of the run.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The queries that open the run (as many as may be in flight), and the moment the
    /// clock starts.
    pub(crate) fn opening(&mut self) -> Vec<Message> {
        self.started = Instant::now();
        let n = self.in_flight.min(self.total);
        (0..n).filter_map(|_| self.issue()).collect()
    }

    /// The next query's frame, if any remain to send.
    fn issue(&mut self) -> Option<Message> {
        if self.sent >= self.total || self.abandoned {
            return None;
        }
        let number = self.first + self.sent;
        self.sent += 1;
        let mut text = String::with_capacity(self.prefix.len() + self.suffix.len() + 20);
        text.push_str(&self.prefix);
        let _ = write!(text, "{number}");
        text.push_str(&self.suffix);
        self.sent_at.push(Instant::now());
        self.finished.push(false);
        Some(Message::Text(Utf8Bytes::from(text)))
    }

    /// Takes an answer to query number `id` (which the run owns) with `status` and `rows`.
    pub(crate) fn take(&mut self, id: u64, status: u64, rows: usize) -> Taken {
        if self.abandoned {
            return Taken::Ignored;
        }
        let index = (id - self.first) as usize;
        match self.finished.get(index) {
            // Never sent: the connector made the number up.
            None => return Taken::NeverSent,
            Some(true) => return Taken::AfterFinal,
            Some(false) => {}
        }
        self.report.rows += rows as u64;
        if !answers::is_final(status) {
            return Taken::Recorded {
                next: None,
                complete: false,
            };
        }
        self.finished[index] = true;
        self.report.answered += 1;
        if status >= 300 {
            self.report.errors += 1;
        }
        self.report.latencies.push(self.sent_at[index].elapsed());
        let next = self.issue();
        let complete = self.report.answered == self.total;
        if complete {
            self.report.elapsed = self.started.elapsed();
        }
        Taken::Recorded { next, complete }
    }

    /// Hands the report to the waiting caller (once the run is complete).
    pub(crate) fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(self.report.clone());
        }
    }

    /// Gives up on the run (its caller timed out): no more queries, late answers ignored.
    /// Returns how many queries had been answered.
    pub(crate) fn abandon(&mut self) -> u64 {
        self.abandoned = true;
        self.done = None;
        self.report.answered
    }
}

/// The violation for an answer the run could not take: a second final answer, or an
/// answer to a query number never sent.
pub(crate) fn refused(taken: &Taken, addr: &str, raw: &str) -> Option<(&'static str, String)> {
    let (kind, what) = match taken {
        Taken::AfterFinal => (
            kinds::ANSWER_AFTER_FINAL,
            "an answer to a query that already had its final answer",
        ),
        Taken::NeverSent => (
            kinds::UNKNOWN_REPLY_ADDRESS,
            "an answer with a reply address never issued",
        ),
        Taken::Recorded { .. } | Taken::Ignored => return None,
    };
    Some((kind, format!("{what}: {addr:?} in {}", wire::excerpt(raw))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(total: u64, in_flight: u64) -> (LoadRun, oneshot::Receiver<QueryLoadReport>) {
        let (tx, rx) = oneshot::channel();
        let load = QueryLoad::new(total, in_flight);
        (
            LoadRun::new("src", &json!({"op": "rows"}), &load, 100, tx),
            rx,
        )
    }

    fn text(m: &Message) -> String {
        match m {
            Message::Text(t) => t.as_str().to_owned(),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn frames_are_those_of_an_ordinary_query() {
        let (mut r, _rx) = run(3, 2);
        let opening = r.opening();
        assert_eq!(opening.len(), 2);
        for (i, m) in opening.iter().enumerate() {
            let expected = wire::query_text(
                "src",
                &json!({"op": "rows"}),
                &wire::reply_address(100 + i as u64),
            );
            assert_eq!(text(m), expected);
        }
    }

    #[test]
    fn each_final_answer_sends_the_next_until_all_are_answered() {
        let (mut r, mut rx) = run(3, 2);
        r.opening();
        assert!(matches!(
            r.take(100, 100, 1),
            Taken::Recorded {
                next: None,
                complete: false
            }
        ));
        let Taken::Recorded {
            next: Some(m),
            complete: false,
        } = r.take(100, 200, 1)
        else {
            panic!("the final answer must release the third query");
        };
        assert!(text(&m).contains(&wire::reply_address(102)));
        assert!(matches!(r.take(100, 200, 0), Taken::AfterFinal));
        assert!(matches!(
            r.take(101, 500, 0),
            Taken::Recorded {
                next: None,
                complete: false
            }
        ));
        assert!(matches!(
            r.take(102, 204, 0),
            Taken::Recorded {
                next: None,
                complete: true
            }
        ));
        assert!(!r.active());
        r.finish();
        let report = rx.try_recv().expect("the report is handed over");
        assert_eq!((report.answered, report.errors, report.rows), (3, 1, 2));
        assert_eq!(report.latencies.len(), 3);
        assert!(report.latency_percentile(50.0).is_some());
    }

    #[test]
    fn answers_to_numbers_never_sent_are_refused_and_abandoned_runs_ignore_answers() {
        let (mut r, _rx) = run(10, 1);
        r.opening();
        assert!(r.owns(109) && !r.owns(110) && !r.owns(99));
        assert!(matches!(r.take(105, 200, 0), Taken::NeverSent));
        assert_eq!(r.abandon(), 0);
        assert!(matches!(r.take(100, 200, 0), Taken::Ignored));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let report = QueryLoadReport {
            answered: 4,
            errors: 0,
            rows: 0,
            elapsed: Duration::from_millis(1),
            latencies: [4, 1, 3, 2].map(Duration::from_micros).to_vec(),
        };
        assert_eq!(
            report.latency_percentile(50.0),
            Some(Duration::from_micros(2))
        );
        assert_eq!(
            report.latency_percentile(99.0),
            Some(Duration::from_micros(4))
        );
        assert_eq!(
            report.latency_percentile(0.0),
            Some(Duration::from_micros(1))
        );
        assert!((report.rate() - 4000.0).abs() < 1.0);
    }
}
