//! [`Metrics`]: the registry a connector set serves, shared with connector
//! code, and the readiness the probes report.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Metric, Registry};
use tokio::sync::watch;

use super::collector::SdkCollector;
use crate::connection::{ConnectionState, SourceConnection};
use crate::health::HealthProbe;

/// How many sources a `/readyz` body names at most; the rest are counted.
const NAMED_NOT_READY: usize = 20;

/// The metrics of a connector set: the SDK's series of every source, and
/// whatever connector code registers. Get it from
/// [`crate::ConnectorSet::metrics`]; clones share it. It is served on
/// `metricsPort` while the set runs, and can be rendered in-process with
/// [`Metrics::render`].
///
/// ```
/// use vantiq_connector_sdk::metrics::prometheus_client::metrics::counter::Counter;
/// use vantiq_connector_sdk::metrics::Format;
/// use vantiq_connector_sdk::{ConnectorSet, ServerConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ServerConfig::builder("https://dev.vantiq.com").token("t").source("db").build()?;
/// let set = ConnectorSet::builder(config).build()?;
/// let rows: Counter = Counter::default();
/// set.metrics().register("myconnector_rows_written", "Rows written to the database", rows.clone());
/// rows.inc_by(3); // from any task, lock-free
/// assert!(set.metrics().render(Format::Prometheus).contains("myconnector_rows_written_total 3"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Mutex<Registry>,
    connections: Vec<SourceConnection>,
    health: HealthProbe,
    local_addr: watch::Sender<Option<SocketAddr>>,
}

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("sources", &self.shared.connections.len())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl Metrics {
    pub(crate) fn new(connections: Vec<SourceConnection>, health: HealthProbe) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "vantiq_connector_build",
            "The SDK's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(SdkCollector::new(connections.clone())));
        Metrics {
            shared: Arc::new(Shared {
                registry: Mutex::new(registry),
                connections,
                health,
                local_addr: watch::Sender::new(None),
            }),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic in a user's closure cannot leave the registry half-changed
        // in a way that matters to encoding: poisoning is ignored.
        self.shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a metric of connector code (a `Counter`, `Gauge`,
    /// `Histogram` or `Family` of [`prometheus_client`]): it is served with
    /// the SDK's series from then on. Keep the handle and update it from any
    /// task; updates are atomic and never wait for a scrape. Name it after
    /// your connector (`myconnector_rows_written`), per Prometheus' naming
    /// rules; a counter's `_total` is added for you.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry().register(name, help, metric);
    }

    /// Runs `f` on the registry itself, for what [`Metrics::register`] does
    /// not do: units, sub-registries with a prefix or labels, collectors.
    /// Scrapes wait while `f` runs: do no slow work in it.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry())
    }

    /// Every series, as a scrape would get them.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        let registry = self.registry();
        let written = match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        };
        // Writing to a String does not fail; a collector that fails would be
        // a bug, and a scrape still gets what was written.
        if let Err(e) = written {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }

    /// The address the endpoint listens on, while it does (useful with port
    /// 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.shared.local_addr.borrow()
    }

    /// A receiver of [`Metrics::local_addr`]'s changes: the endpoint's
    /// address once it listens, `None` once it stops.
    pub fn watch_local_addr(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.shared.local_addr.subscribe()
    }

    pub(super) fn set_local_addr(&self, addr: Option<SocketAddr>) {
        self.shared.local_addr.send_replace(addr);
    }

    pub(super) fn connections(&self) -> &[SourceConnection] {
        &self.shared.connections
    }

    /// `/healthz`: alive unless declared unhealthy.
    pub(super) fn is_live(&self) -> bool {
        self.shared.health.is_healthy() != Some(false)
    }

    /// `/readyz`: `Err` with the body naming what is not ready.
    pub(super) fn readiness(&self) -> Result<(), String> {
        let mut reasons = Vec::new();
        if self.shared.health.is_healthy() == Some(false) {
            reasons.push("declared unhealthy".to_owned());
        }
        let not_ready: Vec<_> = self
            .shared
            .connections
            .iter()
            .filter_map(|c| {
                let state = c.state();
                (state != ConnectionState::Connected).then(|| (c.source(), state))
            })
            .collect();
        for (source, state) in not_ready.iter().take(NAMED_NOT_READY) {
            let state = match state {
                ConnectionState::Disconnected => "disconnected",
                ConnectionState::Connecting => "connecting",
                ConnectionState::Connected => "connected",
                ConnectionState::Closed => "closed",
            };
            reasons.push(format!("source {source} {state}"));
        }
        if not_ready.len() > NAMED_NOT_READY {
            reasons.push(format!(
                "{} more sources not connected",
                not_ready.len() - NAMED_NOT_READY
            ));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(format!("not ready: {}\n", reasons.join(", ")))
        }
    }
}
