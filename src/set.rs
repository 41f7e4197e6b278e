//! The connector set: every source of one server configuration, run together.
//! Python's `VantiqConnectorSet`.

use std::future::Future;
use std::sync::Arc;

use crate::config::ServerConfig;
use crate::connection::{SourceConnection, Stats};
use crate::error::Error;
use crate::handler::{Handler, SharedHandler};
use crate::health::HealthProbe;
use crate::settings::Settings;
use crate::transport::{TlsError, Transport};

/// One [`SourceConnection`] per source of a [`ServerConfig`], with the TCP
/// health probe they share.
///
/// ```no_run
/// use vantiq_connector_sdk::{ConnectorSet, Handlers};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let set = ConnectorSet::from_server_config()?; // serverConfig/server.config
/// set.set_handler_for_all(Handlers::new().on_publish(|ctx, msg| async move {
///     ctx.connection().send_notification(&msg).await
/// }));
/// set.run_until(vantiq_connector_sdk::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectorSet {
    config: Arc<ServerConfig>,
    connections: Vec<SourceConnection>,
    health: HealthProbe,
    endpoint: crate::metrics::Endpoint,
}

/// Why a connector set could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// server.config could not be loaded or is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The TLS settings could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl ConnectorSet {
    /// Loads server.config from the working directory
    /// (`serverConfig/server.config`, then `server.config`, with
    /// `CONNECTOR_AUTH_TOKEN` as the token's fallback) and makes the set with
    /// default [`Settings`]. This is what `VantiqConnectorSet()` does.
    ///
    /// # Errors
    ///
    /// [`SetupError::Config`] naming the problem and the file.
    pub fn from_server_config() -> Result<Self, SetupError> {
        Self::new(ServerConfig::load()?, Settings::default())
    }

    /// Makes the set for `config` with `settings`.
    ///
    /// # Errors
    ///
    /// [`SetupError::Tls`] if the CA file of the configuration cannot be used.
    pub fn new(config: ServerConfig, settings: Settings) -> Result<Self, SetupError> {
        let transport = Arc::new(Transport::new(&config, &settings)?);
        let config = Arc::new(config);
        let settings = Arc::new(settings);
        let health = HealthProbe::new(std::net::SocketAddr::new(
            config.tcp_probe_host(),
            config.tcp_probe_port(),
        ));
        let connections = config
            .sources()
            .iter()
            .map(|name| {
                SourceConnection::new(
                    name,
                    config.clone(),
                    settings.clone(),
                    transport.clone(),
                    health.clone(),
                )
            })
            .collect::<Vec<_>>();
        let endpoint = crate::metrics::Endpoint::new(&config, &settings, &connections, &health);
        Ok(ConnectorSet {
            config,
            connections,
            health,
            endpoint,
        })
    }

    /// The server configuration.
    pub fn server_config(&self) -> &ServerConfig {
        &self.config
    }

    /// The source names, in the order of `sources`.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.connections.iter().map(SourceConnection::source)
    }

    /// The connection of source `name` (Python's
    /// `get_connection_for_source`).
    pub fn connection(&self, name: &str) -> Option<&SourceConnection> {
        self.connections.iter().find(|c| c.source() == name)
    }

    /// Every connection, in the order of `sources` (Python's
    /// `get_connections`).
    pub fn connections(&self) -> &[SourceConnection] {
        &self.connections
    }

    /// Iterates the connections.
    pub fn iter(&self) -> std::slice::Iter<'_, SourceConnection> {
        self.connections.iter()
    }

    /// Uses the same handler for every source (Python's
    /// `configure_handlers_for_all`). Set per-source handlers with
    /// [`SourceConnection::set_handler`] instead.
    pub fn set_handler_for_all(&self, handler: impl Handler) {
        let shared: SharedHandler = Arc::new(handler);
        for c in &self.connections {
            c.set_shared_handler(shared.clone());
        }
    }

    /// Runs every connection until all are closed (Python's
    /// `run_connectors`). If one fails for good (a rejected token, say), the
    /// others are closed and the first error is returned.
    ///
    /// # Errors
    ///
    /// The first [`Error`] of a source connection; at once
    /// [`Error::MetricsEndpoint`] if the metrics endpoint cannot listen.
    pub async fn run(&self) -> Result<(), Error> {
        // Serves /metrics, /healthz and /readyz until `run` returns.
        let _metrics = self.endpoint.start()?;
        let mut tasks = tokio::task::JoinSet::new();
        for c in &self.connections {
            let c = c.clone();
            tasks.spawn(async move { c.run().await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined.unwrap_or_else(|e| {
                Err(Error::ConnectFailed {
                    source_name: "?".into(),
                    reason: format!("connection task failed: {e}"),
                })
            });
            if let Err(e) = result {
                if first_error.is_none() {
                    first_error = Some(e);
                    for c in &self.connections {
                        c.inner().shutdown.send_replace(true);
                    }
                }
            }
        }
        self.health.declare_unhealthy();
        first_error.map_or(Ok(()), Err)
    }

    /// Runs until `shutdown` completes (a signal, say: see
    /// [`crate::shutdown_signal`]), then closes every connection cleanly.
    ///
    /// # Errors
    ///
    /// As [`ConnectorSet::run`].
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let run = self.run();
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => result,
            () = shutdown => {
                tracing::info!("shutting down");
                self.close().await;
                run.await
            }
        }
    }

    /// Closes every connection (close frames sent, close handlers run) and
    /// releases the health probe's port.
    pub async fn close(&self) {
        let closing: Vec<_> = self.connections.iter().map(|c| c.close()).collect();
        futures_util::future::join_all(closing).await;
        self.health.declare_unhealthy();
    }

    /// Declares the set healthy: the TCP health probe listens on
    /// `tcpProbePort` (default 8000).
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub fn declare_healthy(&self) -> std::io::Result<()> {
        self.health.declare_healthy()
    }

    /// Declares the set unhealthy: the probe stops listening.
    pub fn declare_unhealthy(&self) {
        self.health.declare_unhealthy()
    }

    /// `Some(true)` or `Some(false)` as last declared, `None` before any
    /// declaration.
    pub fn is_healthy(&self) -> Option<bool> {
        self.health.is_healthy()
    }

    /// The health probe itself (its address, say).
    pub fn health_probe(&self) -> &HealthProbe {
        &self.health
    }

    /// The metrics the set serves on `metricsPort` (Prometheus' `/metrics`),
    /// where connector code registers its own series.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.endpoint.metrics()
    }

    /// The counters of every source, by name.
    pub fn stats(&self) -> Vec<(String, Stats)> {
        self.connections
            .iter()
            .map(|c| (c.source().to_owned(), c.stats()))
            .collect()
    }
}

impl<'a> IntoIterator for &'a ConnectorSet {
    type Item = &'a SourceConnection;
    type IntoIter = std::slice::Iter<'a, SourceConnection>;
    fn into_iter(self) -> Self::IntoIter {
        self.connections.iter()
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what Kubernetes sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
