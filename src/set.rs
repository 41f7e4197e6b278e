//! The connector set: every source of one server configuration, run together.
//! Python's `VantiqConnectorSet`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::config::ServerConfig;
use crate::connection::{SourceConnection, Stats};
use crate::error::Error;
use crate::handler::{Handler, Handlers, SharedHandler, SourceState};
use crate::health::HealthProbe;
use crate::protocol::message::Publishes;
use crate::settings::Settings;
use crate::transport::{TlsError, Transport};

/// One [`SourceConnection`] per source of a [`ServerConfig`], each with its
/// handler, and the TCP health probe they share. Cheap to clone: clones
/// share the connections.
///
/// Handlers are given before the set exists, so none can be set too late:
///
/// ```no_run
/// use vantiq_connector_sdk::{ConnectorSet, Handlers};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let set = ConnectorSet::from_server_config()? // serverConfig/server.config
///     .handler(Handlers::new().on_publish(|ctx, msg| async move {
///         ctx.connection().send_notification(&msg).await
///     }))
///     .build()?;
/// set.run_until(vantiq_connector_sdk::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ConnectorSet {
    inner: Arc<SetInner>,
}

struct SetInner {
    config: Arc<ServerConfig>,
    sources: Vec<SourceEntry>,
    health: HealthProbe,
    endpoint: crate::metrics::Endpoint,
}

impl std::fmt::Debug for SetInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSet")
            .field("config", &self.config)
            .field(
                "connections",
                &self
                    .sources
                    .iter()
                    .map(|s| &s.connection)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One source: its connection, its handler and its state.
struct SourceEntry {
    connection: SourceConnection,
    handler: SharedHandler,
    state: Arc<SourceState>,
    /// Whether a handler was given for it (else it ignores publishes and
    /// answers queries with an error, and says so when it starts).
    has_handler: bool,
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
    /// The proxy could not be used (a proxy variable of the environment,
    /// `HTTPS_PROXY` say, that is not an `http://` proxy URL).
    #[error(transparent)]
    Proxy(#[from] crate::config::ProxyError),
    /// A handler was given for a source that server.config does not list.
    #[error("a handler was given for source `{0}`, which is not in `sources`")]
    UnknownSource(String),
}

/// Applies server.config's `connectKWArgs` (Python's WebSocket keywords)
/// over the settings: the deployment's word wins over the code's defaults.
fn with_connect_options(settings: Settings, options: &crate::config::ConnectOptions) -> Settings {
    let mut b = settings.to_builder();
    if let Some(t) = options.open_timeout {
        b = b.connect_timeout(t);
    }
    if let Some(Some(t)) = options.ping_interval {
        b = b.ping_interval(t);
    }
    match options.ping_timeout {
        Some(Some(t)) => b = b.pong_timeout(Some(t)),
        // `null`: wait for a pong for ever (about as long, here).
        Some(None) => b = b.pong_timeout(Some(Duration::from_secs(u64::from(u32::MAX)))),
        None => {}
    }
    if let Some(t) = options.close_timeout {
        b = b.close_timeout(t);
    }
    if let Some(max) = options.max_size {
        // `null`: no limit of this SDK's (the transport still refuses a frame
        // over twice the limit, which saturates here).
        b = b.max_message_size(max.unwrap_or(usize::MAX / 2));
    }
    b.build()
}

impl From<crate::transport::SetupError> for SetupError {
    fn from(e: crate::transport::SetupError) -> Self {
        match e {
            crate::transport::SetupError::Tls(e) => SetupError::Tls(e),
            crate::transport::SetupError::Proxy(e) => SetupError::Proxy(e),
        }
    }
}

/// Builds a [`ConnectorSet`]: the server configuration, the [`Settings`],
/// and the handlers (one for every source, and any per source).
#[must_use]
pub struct ConnectorSetBuilder {
    config: ServerConfig,
    settings: Settings,
    handler: Option<SharedHandler>,
    per_source: Vec<(String, SharedHandler)>,
    health: Option<HealthProbe>,
}

impl std::fmt::Debug for ConnectorSetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSetBuilder")
            .field("config", &self.config)
            .field("settings", &self.settings)
            .field("handler", &self.handler.is_some())
            .field(
                "per_source",
                &self.per_source.iter().map(|(s, _)| s).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ConnectorSetBuilder {
    /// The SDK's settings (default: [`Settings::default`]).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The handler of every source that has none of its own (Python's
    /// `configure_handlers_for_all`).
    pub fn handler(mut self, handler: impl Handler) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// The handler of source `source` (Python's `configure_handlers` on that
    /// source's connection).
    pub fn source_handler(mut self, source: impl Into<String>, handler: impl Handler) -> Self {
        self.per_source.push((source.into(), Arc::new(handler)));
        self
    }

    /// The TCP health probe the set declares its health on, shared with code
    /// that declares health before the set exists (the Python binding does);
    /// default: a new probe on server.config's `tcpProbeHost`/`tcpProbePort`.
    pub fn health_probe(mut self, probe: HealthProbe) -> Self {
        self.health = Some(probe);
        self
    }

    /// Makes the set.
    ///
    /// # Errors
    ///
    /// [`SetupError::Tls`] if the CA file of the configuration cannot be
    /// used; [`SetupError::UnknownSource`] for a per-source handler of a
    /// source the configuration does not list.
    pub fn build(self) -> Result<ConnectorSet, SetupError> {
        let ConnectorSetBuilder {
            config,
            settings,
            handler,
            per_source,
            health,
        } = self;
        if let Some((name, _)) = per_source
            .iter()
            .find(|(n, _)| !config.sources().contains(n))
        {
            return Err(SetupError::UnknownSource(name.clone()));
        }
        let settings = with_connect_options(settings, config.connect_options());
        let transport = Arc::new(Transport::new(&config, &settings)?);
        let config = Arc::new(config);
        let settings = Arc::new(settings);
        let health = health.unwrap_or_else(|| HealthProbe::new(config.tcp_probe_addr()));
        let fallback: SharedHandler = Arc::new(Handlers::new());
        let sources = config
            .sources()
            .iter()
            .map(|name| {
                let own = per_source
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, h)| h.clone());
                let chosen = own.or_else(|| handler.clone());
                SourceEntry {
                    connection: SourceConnection::new(
                        name,
                        config.clone(),
                        settings.clone(),
                        transport.clone(),
                        health.clone(),
                    ),
                    has_handler: chosen.is_some(),
                    handler: chosen.unwrap_or_else(|| fallback.clone()),
                    state: Arc::default(),
                }
            })
            .collect::<Vec<SourceEntry>>();
        let connections: Vec<SourceConnection> =
            sources.iter().map(|s| s.connection.clone()).collect();
        let endpoint = crate::metrics::Endpoint::new(&config, &settings, &connections, &health);
        Ok(ConnectorSet {
            inner: Arc::new(SetInner {
                config,
                sources,
                health,
                endpoint,
            }),
        })
    }
}

impl ConnectorSet {
    /// Starts a set for `config`.
    pub fn builder(config: ServerConfig) -> ConnectorSetBuilder {
        ConnectorSetBuilder {
            config,
            settings: Settings::default(),
            handler: None,
            per_source: Vec::new(),
            health: None,
        }
    }

    /// Loads server.config from the working directory
    /// (`serverConfig/server.config`, then `server.config`, with
    /// `CONNECTOR_AUTH_TOKEN` as the token's fallback) and starts a set for
    /// it. This is what `VantiqConnectorSet()` does.
    ///
    /// # Errors
    ///
    /// [`SetupError::Config`] naming the problem and the file.
    pub fn from_server_config() -> Result<ConnectorSetBuilder, SetupError> {
        Ok(Self::builder(ServerConfig::load()?))
    }

    /// The server configuration.
    pub fn server_config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The source names, in the order of `sources`.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.iter().map(SourceConnection::source)
    }

    /// The connection of source `name` (Python's
    /// `get_connection_for_source`).
    pub fn connection(&self, name: &str) -> Option<&SourceConnection> {
        self.iter().find(|c| c.source() == name)
    }

    /// Every connection, in the order of `sources` (Python's
    /// `get_connections`).
    pub fn connections(&self) -> Vec<SourceConnection> {
        self.iter().cloned().collect()
    }

    /// Iterates the connections, in the order of `sources`.
    pub fn iter(&self) -> impl Iterator<Item = &SourceConnection> {
        self.inner.sources.iter().map(|s| &s.connection)
    }

    /// Runs every connection until all are closed (Python's
    /// `run_connectors`). If one fails for good (a rejected token, say), the
    /// others are closed and the first error is returned. A set runs once:
    /// after `run` returns, its connections have ended for good.
    ///
    /// # Errors
    ///
    /// The first [`Error`] of a source connection; at once
    /// [`Error::MetricsEndpoint`] if the metrics endpoint cannot listen.
    pub async fn run(&self) -> Result<(), Error> {
        // Serves /metrics, /healthz and /readyz until `run` returns.
        let _metrics = self.inner.endpoint.start()?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for source in &self.inner.sources {
            let id = tasks.spawn(run_entry(source)).id();
            names.insert(id, source.connection.source().to_owned());
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next_with_id().await {
            let result = joined.map(|(_, r)| r).unwrap_or_else(|e| {
                Err(Error::TaskFailed {
                    source_name: names.get(&e.id()).cloned().unwrap_or_default(),
                    reason: e.to_string(),
                })
            });
            if let Err(e) = result {
                if first_error.is_none() {
                    first_error = Some(e);
                    self.iter().for_each(SourceConnection::request_close);
                }
            }
        }
        self.inner.health.declare_unhealthy();
        first_error.map_or(Ok(()), Err)
    }

    /// Runs one source's connection (and its handler) until it is closed or
    /// fails for good: Python's `connect_to_vantiq` on one connection. The
    /// other sources are left alone.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSource`] for a name not in `sources`; otherwise as
    /// [`ConnectorSet::run`] for that source.
    pub async fn run_source(&self, name: &str) -> Result<(), Error> {
        let source = self
            .inner
            .sources
            .iter()
            .find(|s| s.connection.source() == name)
            .ok_or_else(|| Error::UnknownSource(name.to_owned()))?;
        run_entry(source).await
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

    /// Closes every connection for good (see [`SourceConnection::close`])
    /// and releases the health probe's port.
    pub async fn close(&self) {
        let closing: Vec<_> = self.iter().map(|c| c.close()).collect();
        futures_util::future::join_all(closing).await;
        self.inner.health.declare_unhealthy();
    }

    /// Declares the set healthy: the TCP health probe listens on
    /// `tcpProbePort` (default 8000).
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub fn declare_healthy(&self) -> std::io::Result<()> {
        self.inner.health.declare_healthy()
    }

    /// Declares the set unhealthy: the probe stops listening.
    pub fn declare_unhealthy(&self) {
        self.inner.health.declare_unhealthy()
    }

    /// `Some(true)` or `Some(false)` as last declared, `None` before any
    /// declaration.
    pub fn is_healthy(&self) -> Option<bool> {
        self.inner.health.is_healthy()
    }

    /// The health probe itself (its address, say).
    pub fn health_probe(&self) -> &HealthProbe {
        &self.inner.health
    }

    /// The metrics the set serves on `metricsPort` (Prometheus' `/metrics`),
    /// where connector code registers its own series.
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.inner.endpoint.metrics()
    }

    /// The counters of every source, by name.
    pub fn stats(&self) -> Vec<(String, Stats)> {
        self.iter()
            .map(|c| (c.source().to_owned(), c.stats()))
            .collect()
    }
}

/// Runs one source: its dispatcher on a task of its own, its connection on
/// this one.
fn run_entry(source: &SourceEntry) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    let conn = source.connection.clone();
    // At ERROR level so that every event of the source names it, whatever
    // the filter.
    let span = tracing::error_span!("source", source = %conn.source());
    if !source.has_handler {
        tracing::warn!(source = %conn.source(), "no handlers set: publishes are ignored and queries answered with an error");
    }
    // A handler that takes trees gets them built on the dispatcher's side
    // (`Publishes::Text`, see there).
    let publishes = match source.handler.raw_publishes() {
        true => Publishes::Raw,
        false => Publishes::Text,
    };
    // On the one-threaded runtime publishes are taken at once on the
    // connection's task when nothing is queued before them (see
    // `handler::dispatch`).
    let at_once = crate::handler::dispatch::on_one_thread().then(|| {
        source
            .handler
            .clone()
            .at_once(conn.clone(), source.state.clone())
    });
    let (port, events) = crate::connection::events::port(publishes, at_once);
    let dispatcher = source
        .handler
        .clone()
        .dispatcher(conn.clone(), source.state.clone(), events);
    tokio::spawn(dispatcher.instrument(span));
    async move { conn.run(port).await }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options(kwargs: &str) -> crate::config::ConnectOptions {
        ServerConfig::from_properties_str(
            &format!("targetServer=https://x\nauthToken=t\nsources=s\nconnectKWArgs={kwargs}\n"),
            None,
            None,
        )
        .expect("valid config")
        .connect_options()
        .clone()
    }

    #[test]
    fn connect_keywords_apply_over_the_settings() {
        let s = with_connect_options(
            Settings::default(),
            &options(r#"{"ping_interval": 4, "ping_timeout": 1.5, "open_timeout": 3}"#),
        );
        assert_eq!(s.ping_interval(), Duration::from_secs(4));
        assert_eq!(s.pong_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(s.connect_timeout(), Duration::from_secs(3));
        // `null`: a pong is waited for (practically) for ever.
        let s = with_connect_options(Settings::default(), &options(r#"{"ping_timeout": null}"#));
        assert!(s.pong_timeout().unwrap() > Duration::from_secs(100 * 365 * 24 * 3600));
        // Absent: the default, half the ping interval.
        let s = with_connect_options(Settings::default(), &options("{}"));
        assert_eq!(s.pong_timeout(), None);
    }
}
