//! The connector's own Prometheus series, served with the SDK's on `metricsPort`.
//!
//! | series | type |
//! |---|---|
//! | `sql_queries_total{source,outcome}` | counter: queries by outcome (`rows`, `empty`, `error`, `rejected`) |
//! | `sql_rows_total{source}` | counter: rows sent in query answers |
//! | `sql_publishes_total{source,outcome}` | counter: publishes by outcome (`ok`, `failed`, `retried`, `dropped`) |
//! | `sql_publishes_pending{source}` | gauge: publishes kept for a retry while the database is unreachable |
//! | `sql_poll_seconds{source}` | histogram: time to run the `pollQuery` and send its rows |
//! | `sql_poll_rows_total{source}` | counter: rows sent as notifications by polling |
//! | `sql_polls_failed_total{source}` | counter: polls that failed |
//! | `sql_pool_connections{source,state}` | gauge: pool connections (`open`, `idle`) |

use vantiq_connector_sdk::metrics::prometheus_client::metrics::counter::Counter;
use vantiq_connector_sdk::metrics::prometheus_client::metrics::family::Family;
use vantiq_connector_sdk::metrics::prometheus_client::metrics::gauge::Gauge;
use vantiq_connector_sdk::metrics::prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram,
};
use vantiq_connector_sdk::metrics::prometheus_client::registry::Unit;
use vantiq_connector_sdk::ConnectorSet;

type One = [(&'static str, String); 1];
type Two = [(&'static str, String); 2];

fn one(source: &str) -> One {
    [("source", source.to_owned())]
}

fn two(source: &str, key: &'static str, value: &str) -> Two {
    [("source", source.to_owned()), (key, value.to_owned())]
}

fn poll_histogram() -> Histogram {
    // 1 ms to about 32 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The connector's metrics; clones share the series.
#[derive(Clone)]
pub struct SqlMetrics {
    queries: Family<Two, Counter>,
    rows: Family<One, Counter>,
    publishes: Family<Two, Counter>,
    pending: Family<One, Gauge>,
    poll_seconds: Family<One, Histogram, fn() -> Histogram>,
    poll_rows: Family<One, Counter>,
    polls_failed: Family<One, Counter>,
    pool: Family<Two, Gauge>,
}

impl Default for SqlMetrics {
    fn default() -> Self {
        SqlMetrics {
            queries: Family::default(),
            rows: Family::default(),
            publishes: Family::default(),
            pending: Family::default(),
            poll_seconds: Family::new_with_constructor(poll_histogram),
            poll_rows: Family::default(),
            polls_failed: Family::default(),
            pool: Family::default(),
        }
    }
}

impl SqlMetrics {
    /// Serves these series with the set's.
    pub fn register(&self, set: &ConnectorSet) {
        let m = set.metrics();
        m.register("sql_queries", "Queries by outcome", self.queries.clone());
        m.register("sql_rows", "Rows sent in query answers", self.rows.clone());
        m.register(
            "sql_publishes",
            "Publishes by outcome",
            self.publishes.clone(),
        );
        m.register(
            "sql_publishes_pending",
            "Publishes kept for a retry while the database is unreachable",
            self.pending.clone(),
        );
        m.register(
            "sql_poll_rows",
            "Rows sent as notifications by polling",
            self.poll_rows.clone(),
        );
        m.register(
            "sql_polls_failed",
            "Polls that failed",
            self.polls_failed.clone(),
        );
        m.register(
            "sql_pool_connections",
            "Connections of the source's pool (open, idle)",
            self.pool.clone(),
        );
        let histogram = self.poll_seconds.clone();
        m.with_registry(|registry| {
            registry.register_with_unit(
                "sql_poll",
                "Time to run the pollQuery and send its rows",
                Unit::Seconds,
                histogram,
            )
        });
    }

    /// A query ended with `outcome`.
    pub fn query(&self, source: &str, outcome: &str) {
        self.queries
            .get_or_create(&two(source, "outcome", outcome))
            .inc();
    }

    /// `n` rows went out in an answer.
    pub fn rows(&self, source: &str, n: usize) {
        self.rows.get_or_create(&one(source)).inc_by(n as u64);
    }

    /// A publish ended with `outcome`.
    pub fn publish(&self, source: &str, outcome: &str) {
        self.publishes
            .get_or_create(&two(source, "outcome", outcome))
            .inc();
    }

    /// `n` publishes wait for a retry.
    pub fn pending(&self, source: &str, n: usize) {
        self.pending.get_or_create(&one(source)).set(n as i64);
    }

    /// A poll ran in `seconds` and sent `rows` rows (`ok` false if it failed).
    pub fn poll(&self, source: &str, seconds: f64, rows: usize, ok: bool) {
        self.poll_seconds
            .get_or_create(&one(source))
            .observe(seconds);
        self.poll_rows
            .get_or_create(&one(source))
            .inc_by(rows as u64);
        if !ok {
            self.polls_failed.get_or_create(&one(source)).inc();
        }
    }

    /// The pool has `open` connections, `idle` of them idle.
    pub fn pool(&self, source: &str, (open, idle): (u32, usize)) {
        self.pool
            .get_or_create(&two(source, "state", "open"))
            .set(i64::from(open));
        self.pool
            .get_or_create(&two(source, "state", "idle"))
            .set(idle as i64);
    }
}
