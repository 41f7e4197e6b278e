//! The SQLite connector's own metrics, served with the SDK's on `metricsPort`:
//! an example of custom connector metrics (see docs/sqlite-connector.md).
//!
//! They are `prometheus_client` families (re-exported by the SDK, so the
//! versions match) registered in the set's registry ([`ConnectorSet::metrics`])
//! once, at start. The handler keeps clones: updating one is an atomic
//! addition (and a read lock to find the source's series), never a wait for
//! a scrape.
//!
//! | series | type |
//! |---|---|
//! | `sqlite_rows_inserted_total{source}` | counter: rows inserted by publishes |
//! | `sqlite_inserts_failed_total{source}` | counter: publishes that could not be inserted |
//! | `sqlite_rows_returned_total{source}` | counter: rows sent in query answers |
//! | `sqlite_query_seconds{source}` | histogram: time to run a query's statement and read its rows |

use vantiq_connector_sdk::metrics::prometheus_client::metrics::counter::Counter;
use vantiq_connector_sdk::metrics::prometheus_client::metrics::family::Family;
use vantiq_connector_sdk::metrics::prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram,
};
use vantiq_connector_sdk::metrics::prometheus_client::registry::Unit;
use vantiq_connector_sdk::ConnectorSet;

/// The `source` label of every series.
type Source = [(&'static str, String); 1];

fn label(source: &str) -> Source {
    [("source", source.to_owned())]
}

fn query_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The connector's metrics; clones share the series.
#[derive(Clone)]
pub struct SqliteMetrics {
    inserted: Family<Source, Counter>,
    insert_failed: Family<Source, Counter>,
    returned: Family<Source, Counter>,
    query_seconds: Family<Source, Histogram, fn() -> Histogram>,
}

impl Default for SqliteMetrics {
    fn default() -> Self {
        SqliteMetrics {
            inserted: Family::default(),
            insert_failed: Family::default(),
            returned: Family::default(),
            query_seconds: Family::new_with_constructor(query_histogram),
        }
    }
}

impl SqliteMetrics {
    /// Serves these series with the set's (until then they count unseen).
    pub fn register(&self, set: &ConnectorSet) {
        let metrics = set.metrics();
        metrics.register(
            "sqlite_rows_inserted",
            "Rows inserted by publishes",
            self.inserted.clone(),
        );
        metrics.register(
            "sqlite_inserts_failed",
            "Publishes that could not be inserted (bad keys, unknown columns, constraints)",
            self.insert_failed.clone(),
        );
        metrics.register(
            "sqlite_rows_returned",
            "Rows sent in query answers",
            self.returned.clone(),
        );
        let histogram = self.query_seconds.clone();
        metrics.with_registry(|registry| {
            registry.register_with_unit(
                "sqlite_query",
                "Time to run a query's statement and read its rows",
                Unit::Seconds,
                histogram,
            )
        });
    }

    /// A publish inserted its row (`ok`) or was skipped.
    pub fn insert(&self, source: &str, ok: bool) {
        let family = if ok {
            &self.inserted
        } else {
            &self.insert_failed
        };
        family.get_or_create(&label(source)).inc();
    }

    /// `rows` rows went out in an answer.
    pub fn returned(&self, source: &str, rows: usize) {
        self.returned
            .get_or_create(&label(source))
            .inc_by(rows as u64);
    }

    /// A query's statement ran in `seconds`.
    pub fn query_ran(&self, source: &str, seconds: f64) {
        self.query_seconds
            .get_or_create(&label(source))
            .observe(seconds);
    }
}
