//! What the load server can be asked to do ([`Job`]), what it reports ([`Report`]), and
//! the state of the job in progress: the publishes still to write, the queries in flight.

use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;
use vantiq_sim::frames;

use crate::rawws::{self, put};

/// A job for the connected source.
#[derive(Debug, Clone)]
pub enum Job {
    /// Publishes objects `0..n` (each `before`, its number, `after`: see
    /// [`crate::driver::workload::object_template`]) and waits for `n` notifications. With
    /// a `window` of `(chunk, chunks)`, publishes go out `chunk` at a time, the next chunk
    /// once all but `chunk × (chunks − 1)` of those sent are echoed.
    Publish {
        /// How many.
        n: usize,
        /// The object's JSON text before its number.
        before: String,
        /// The object's JSON text after its number.
        after: String,
        /// At most this many outstanding, as `(chunk, chunks)`.
        window: Option<(usize, usize)>,
    },
    /// Sends the query `params` (the echo's `notify` with count `n`) and waits for `n`
    /// notifications and its final answer, which must be a 200.
    Notify {
        /// How many notifications the query asks for.
        n: usize,
        /// The query's parameters.
        params: Value,
    },
    /// Sends `n` queries `params`, keeping `in_flight` unanswered, and waits for every final
    /// answer.
    Queries {
        /// How many.
        n: u64,
        /// How many unanswered at a time.
        in_flight: u64,
        /// The query's parameters.
        params: Value,
    },
}

impl Job {
    /// The notifications the job asks for.
    pub fn notifications(&self) -> u64 {
        match self {
            Job::Publish { n, .. } | Job::Notify { n, .. } => *n as u64,
            Job::Queries { .. } => 0,
        }
    }
}

/// What a job measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// From the job's first frame queued to its last message read.
    pub elapsed: Duration,
    /// Queries finally answered.
    pub answered: u64,
    /// Of those, with an error status.
    pub errors: u64,
    /// Rows received.
    pub rows: u64,
    /// Each query's time from being queued to its final answer being read.
    pub latencies: Vec<Duration>,
}

impl Report {
    /// `count` per second of [`Report::elapsed`].
    pub fn rate(&self, count: usize) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile of the latencies in microseconds (nearest rank), 0 if none.
    pub fn latency_us(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted
            .get(rank.max(1) - 1)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    }
}

/// A query frame cut around its reply address's number: `prefix`, number, `suffix`.
pub(super) struct Template {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

/// A number no query of a run is given, put in the template where the number goes.
const MARK: u64 = u64::MAX;

impl Template {
    pub(super) fn new(source: &str, params: &Value) -> Template {
        let addr = frames::reply_address(MARK);
        let text = frames::query(source, params, &addr);
        let header = format!(r#""REPLY_ADDR_HEADER":"{addr}""#);
        let at = text
            .find(&header)
            .map(|h| h + header.len() - 1 - MARK.to_string().len())
            .expect("the query holds its reply address");
        Template {
            prefix: text.as_bytes()[..at].to_vec(),
            suffix: text.as_bytes()[at + MARK.to_string().len()..].to_vec(),
        }
    }

    /// Appends the query frame of number `id`.
    pub(super) fn put(&self, out: &mut Vec<u8>, opcode: rawws::OpCode, id: u64) {
        let mut digits = [0u8; 20];
        let len = {
            let mut cursor = &mut digits[..];
            let _ = write!(cursor, "{id}");
            20 - cursor.len()
        };
        put(
            out,
            opcode,
            &[&self.prefix, &digits[..len], &self.suffix],
            false,
        );
    }
}

/// The publish frames of a job's objects, made before the job's clock starts (and kept
/// for the next job of the same objects): the bytes, and where each frame ends.
pub(super) struct Publishes {
    key: (usize, String, String, rawws::OpCode),
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Publishes {
    /// The frames of objects `0..n`, each `prefix`, `before`, its number, `after`, `}`.
    pub(super) fn new(
        prefix: &[u8],
        n: usize,
        before: &str,
        after: &str,
        opcode: rawws::OpCode,
    ) -> Publishes {
        let mut bytes = Vec::with_capacity(n * (prefix.len() + before.len() + after.len() + 12));
        let mut ends = Vec::with_capacity(n);
        for i in 0..n {
            let digits = i.to_string();
            let parts: [&[u8]; 5] = [
                prefix,
                before.as_bytes(),
                digits.as_bytes(),
                after.as_bytes(),
                b"}",
            ];
            put(&mut bytes, opcode, &parts, false);
            ends.push(bytes.len());
        }
        Publishes {
            key: (n, before.to_owned(), after.to_owned(), opcode),
            bytes,
            ends,
        }
    }

    /// Whether these are the frames of that job.
    pub(super) fn fits(&self, n: usize, before: &str, after: &str, opcode: rawws::OpCode) -> bool {
        self.key.0 == n && self.key.1 == before && self.key.2 == after && self.key.3 == opcode
    }

    /// Appends frames `from..` up to frame `to` (exclusive), at most about `room` bytes
    /// (at least one frame); returns the number of the next frame.
    pub(super) fn copy(&self, out: &mut Vec<u8>, from: usize, to: usize, room: usize) -> usize {
        if from >= to {
            return from;
        }
        let start = if from == 0 { 0 } else { self.ends[from - 1] };
        let fit = self.ends[from..to].partition_point(|e| *e - start <= room);
        let next = from + fit.max(1);
        out.extend_from_slice(&self.bytes[start..self.ends[next - 1]]);
        next
    }
}

/// The job in progress.
pub(super) struct Active {
    pub(super) job: Job,
    pub(super) started: Instant,
    /// Notifications received when the job started; it wants `base + job.notifications()`.
    pub(super) base: u64,
    /// Publishes written so far.
    pub(super) published: usize,
    pub(super) queries: Option<Queries>,
    /// The `notify` query's number and, once it came, its final status.
    pub(super) notify: Option<(u64, Option<u64>)>,
    pub(super) report: Report,
}

/// The queries of a [`Job::Queries`] run.
pub(super) struct Queries {
    pub(super) first: u64,
    pub(super) template: Template,
    pub(super) sent_at: Vec<Instant>,
    pub(super) finished: Vec<bool>,
}

impl Active {
    /// Whether everything the job waits for has arrived, given `seen` notifications.
    pub(super) fn complete(&self, seen: u64) -> bool {
        let notified = seen >= self.base + self.job.notifications();
        match &self.job {
            Job::Publish { .. } => notified,
            Job::Notify { .. } => notified && matches!(self.notify, Some((_, Some(_)))),
            Job::Queries { n, .. } => self.report.answered == *n,
        }
    }

    /// How far the job has got, for a stall's message.
    pub(super) fn progress(&self, seen: u64) -> String {
        match &self.job {
            Job::Queries { n, .. } => format!("{} of {n} queries answered", self.report.answered),
            job => format!(
                "{} of {} notifications received",
                seen - self.base,
                job.notifications()
            ),
        }
    }
}
