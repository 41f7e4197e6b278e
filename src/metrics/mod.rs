//! Prometheus metrics and HTTP health probes (issue 14).
//!
//! With `metricsPort` in server.config (or [`crate::Settings::metrics_addr`]),
//! [`crate::ConnectorSet::run`] serves, on its own tasks:
//!
//! - `GET /metrics`: every source's counters in the Prometheus text format,
//!   or OpenMetrics when the scraper's `Accept` header prefers it;
//! - `GET /healthz`: 200 unless the set was declared unhealthy (it stays 200
//!   while sources reconnect: a restart would not help them);
//! - `GET /readyz`: 200 when every source is connected and configured and the
//!   set is not declared unhealthy, else 503 naming what is not ready.
//!
//! Anything else gets 404 (405 for another method on these paths). The
//! series are read from the per-source counters at scrape time (see
//! `collector`), so serving them adds nothing per message; the only hot-path
//! work is the query latency histogram (`connection/latency.rs`), on while an endpoint
//! serves. Connector code adds its own series through `Metrics`
//! (`ConnectorSet::metrics`), with the `prometheus_client` crate
//! re-exported here so that its version matches.
//!
//! The series (each with a `source` label):
//!
//! | series | type |
//! |---|---|
//! | `vantiq_connector_connected` | gauge, 1 while connected and configured |
//! | `vantiq_connector_notifications_sent_total` | counter (re-sends included) |
//! | `vantiq_connector_notifications_acknowledged_total` | counter |
//! | `vantiq_connector_notifications_rejected_total` | counter (acknowledged with an error status) |
//! | `vantiq_connector_notifications_resent_total` | counter |
//! | `vantiq_connector_notifications_dropped_total` | counter (`OverflowPolicy::DropOldest`) |
//! | `vantiq_connector_notifications_buffered` | gauge |
//! | `vantiq_connector_publishes_received_total` | counter |
//! | `vantiq_connector_queries_total` | counter, label `outcome` = `ok` or `error` |
//! | `vantiq_connector_query_duration_seconds` | histogram, query frame to final answer |
//! | `vantiq_connector_reconnects_total` | counter (connections after the first) |
//! | `vantiq_connector_malformed_frames_total` | counter |
//! | `vantiq_connector_build_info` | gauge 1, label `version` (no `source`) |

#[cfg(feature = "metrics")]
mod collector;
#[cfg(feature = "metrics")]
mod http;
#[cfg(feature = "metrics")]
mod registry;

#[cfg(feature = "metrics")]
pub use prometheus_client;
#[cfg(feature = "metrics")]
pub use registry::{Format, Metrics};

use std::net::SocketAddr;

use crate::config::ServerConfig;
use crate::connection::SourceConnection;
use crate::error::Error;
use crate::health::HealthProbe;
use crate::settings::Settings;

/// What a connector set keeps for its metrics endpoint: where it is to
/// listen (and which setting said so), and the registry it serves.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    addr: Option<(SocketAddr, &'static str)>,
    #[cfg(feature = "metrics")]
    metrics: Metrics,
}

impl Endpoint {
    pub(crate) fn new(
        config: &ServerConfig,
        settings: &Settings,
        connections: &[SourceConnection],
        health: &HealthProbe,
    ) -> Self {
        let addr = match (settings.metrics_addr, config.metrics_addr()) {
            (Some(addr), _) => Some((addr, "Settings::metrics_addr")),
            (None, Some(addr)) => Some((addr, "metricsPort")),
            (None, None) => None,
        };
        #[cfg(not(feature = "metrics"))]
        let _ = (connections, health);
        Endpoint {
            addr,
            #[cfg(feature = "metrics")]
            metrics: Metrics::new(connections.to_vec(), health.clone()),
        }
    }

    /// The registry the endpoint serves.
    #[cfg(feature = "metrics")]
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts serving, when an address is configured; serving stops when the
    /// returned guard is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::MetricsEndpoint`] naming the key, when the address cannot be
    /// bound (a port in use, say) or the SDK was built without the `metrics`
    /// feature.
    pub(crate) fn start(&self) -> Result<Option<Serving>, Error> {
        let Some((addr, key)) = self.addr else {
            return Ok(None);
        };
        #[cfg(feature = "metrics")]
        {
            http::serve(&self.metrics, addr, key).map(Some)
        }
        #[cfg(not(feature = "metrics"))]
        Err(Error::MetricsEndpoint {
            key,
            addr,
            reason: "this build of vantiq-connector-sdk has no `metrics` feature".into(),
        })
    }
}

/// The endpoint while it serves; dropping it stops the server.
#[cfg(feature = "metrics")]
pub(crate) use http::Serving;
/// Without the `metrics` feature nothing is ever served.
#[cfg(not(feature = "metrics"))]
pub(crate) enum Serving {}
