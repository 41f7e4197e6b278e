//! The SDK's series, read from each source's counters at scrape time.
//!
//! Nothing here runs per message: the connection tasks only bump the atomic
//! counters behind [`crate::Stats`], and a scrape reads them. A scrape's
//! snapshot of one source is not atomic across counters (each is read on
//! its own), as with any lock-free counters.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::connection::latency::LatencySnapshot;
use crate::connection::{ConnectionState, SourceConnection, Stats};

/// The SDK's collector: one per connector set.
#[derive(Debug)]
pub(super) struct SdkCollector {
    connections: Vec<SourceConnection>,
}

/// One source as a scrape sees it.
struct Source<'a> {
    name: &'a str,
    connected: bool,
    stats: Stats,
    latency: LatencySnapshot,
}

/// A counter: its name without `_total`, its help, and how to read it.
type CounterSeries = (&'static str, &'static str, fn(&Stats) -> u64);

const COUNTERS: [CounterSeries; 8] = [
    (
        "vantiq_connector_notifications_sent",
        "Notifications written to the server, re-sends included.",
        |s| s.sent,
    ),
    (
        "vantiq_connector_notifications_acknowledged",
        "Notifications the server acknowledged.",
        |s| s.acknowledged,
    ),
    (
        "vantiq_connector_notifications_rejected",
        "Notifications the server acknowledged with an error status.",
        |s| s.rejected,
    ),
    (
        "vantiq_connector_notifications_resent",
        "Notifications sent again after a connection was lost before their acknowledgement.",
        |s| s.resent,
    ),
    (
        "vantiq_connector_notifications_dropped",
        "Notifications dropped from a full buffer (OverflowPolicy::DropOldest).",
        |s| s.dropped,
    ),
    (
        "vantiq_connector_publishes_received",
        "Published messages received from the server.",
        |s| s.publishes,
    ),
    (
        "vantiq_connector_reconnects",
        "Connections made after the first.",
        |s| s.reconnections,
    ),
    (
        "vantiq_connector_malformed_frames",
        "Server messages that could not be decoded and were skipped.",
        |s| s.malformed,
    ),
];

impl SdkCollector {
    pub(super) fn new(connections: Vec<SourceConnection>) -> Self {
        SdkCollector { connections }
    }

    fn sources(&self) -> Vec<Source<'_>> {
        self.connections
            .iter()
            .map(|c| Source {
                name: c.source(),
                connected: c.state() == ConnectionState::Connected,
                stats: c.stats(),
                latency: c.query_latency().snapshot(),
            })
            .collect()
    }
}

impl Collector for SdkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = self.sources();
        let connected = ConstGauge::new(0i64);
        let mut metric = encoder.encode_descriptor(
            "vantiq_connector_connected",
            "1 while the source is connected and configured, else 0.",
            None,
            connected.metric_type(),
        )?;
        for s in &sources {
            ConstGauge::new(i64::from(s.connected))
                .encode(metric.encode_family(&[("source", s.name)])?)?;
        }
        let mut metric = encoder.encode_descriptor(
            "vantiq_connector_notifications_buffered",
            "Notifications waiting in the buffer.",
            None,
            connected.metric_type(),
        )?;
        for s in &sources {
            ConstGauge::new(i64::try_from(s.stats.buffered).unwrap_or(i64::MAX))
                .encode(metric.encode_family(&[("source", s.name)])?)?;
        }
        for (name, help, read) in COUNTERS {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &sources {
                ConstCounter::new(read(&s.stats))
                    .encode(metric.encode_family(&[("source", s.name)])?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "vantiq_connector_queries",
            "Queries given their final answer, by outcome (an error answer, the handler's or the SDK's, is `error`).",
            None,
            MetricType::Counter,
        )?;
        for s in &sources {
            for (outcome, n) in [
                ("ok", s.stats.queries_answered),
                ("error", s.stats.queries_failed),
            ] {
                ConstCounter::new(n)
                    .encode(metric.encode_family(&[("source", s.name), ("outcome", outcome)])?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "vantiq_connector_query_duration",
            "Time from a query's frame to its final answer (measured while the metrics endpoint serves).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for s in &sources {
            metric
                .encode_family(&[("source", s.name)])?
                .encode_histogram::<NoLabelSet>(
                    s.latency.sum,
                    s.latency.count,
                    &s.latency.buckets,
                    None,
                )?;
        }
        Ok(())
    }
}
