//! The `vantiq-sql-connector` binary: reads `server.config` (as every connector of the
//! SDK, and as jdbcSource does) and serves its sources. See the README.
//!
//! Exit status: 0 after SIGINT/SIGTERM, 2 for a bad server.config, 1 when the server
//! rejects the token (or another fatal error).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use vantiq_connector_sdk::{shutdown_signal, ConnectorSet, ServerConfig};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = vantiq_connector_sdk::setup_logging() {
        eprintln!("vantiq-sql-connector: logging not set up: {e}");
    }
    let config = match std::env::args().nth(1) {
        Some(path) => ServerConfig::from_file(std::path::Path::new(&path)),
        None => ServerConfig::load(),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vantiq-sql-connector: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let handler = vantiq_sql_connector::SqlConnector::new();
    let metrics = handler.metrics.clone();
    let set = match ConnectorSet::builder(config).handler(handler).build() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("vantiq-sql-connector: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    metrics.register(&set);
    if let Err(e) = set.declare_healthy() {
        eprintln!(
            "vantiq-sql-connector: health probe not started on port {}: {e}",
            set.server_config().tcp_probe_port()
        );
        return ExitCode::from(1);
    }
    match set.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vantiq-sql-connector: {e}");
            return ExitCode::from(1);
        }
    }
}
