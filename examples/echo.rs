//! The `echo` connector: the behaviour of
//! `shared/conformance/echo-contract.md`, on the SDK.
//!
//! Run it in a directory with `serverConfig/server.config` (or
//! `server.config`), or against the emulator:
//!
//! ```text
//! cargo run -p vantiq-sim -- serve --token secret --source echo &
//! mkdir -p serverConfig && printf 'targetServer=http://127.0.0.1:8088\nauthToken=secret\nsources=echo\n' > serverConfig/server.config
//! cargo run --release --example echo
//! ```
//!
//! With `ECHO_RAW=1` in the environment it runs on the SDK's raw path
//! (issue 17): publishes are echoed as their text (`Handler::on_publish_raw`,
//! no JSON tree) and the `notify` query's notifications are sent from
//! pre-serialised text (`send_raw_notification`). The frames on the wire
//! are the same; the benchmark's column "echo (raw)" runs it this way.
//!
//! Exit status: 0 after SIGINT/SIGTERM, 2 for a bad configuration, 1 when
//! the server rejects the token (or another fatal error).

#[path = "common/echo_handler.rs"]
mod echo_handler;

use std::process::ExitCode;

use vantiq_connector_sdk::{shutdown_signal, ConnectorSet, Error, ServerConfig};

// One thread: echo's handlers only move messages, so a second worker thread
// would add nothing but hand-offs between threads (on a 2-core machine the
// benchmark measured about 20 % more queries per second this way). A
// connector whose handlers do heavy work should use the default
// multi-threaded runtime (`#[tokio::main]`); the SDK runs on either.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if let Err(e) = vantiq_connector_sdk::setup_logging() {
        eprintln!("echo: logging not set up: {e}");
    }
    let config = match ServerConfig::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("echo: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let echo = match std::env::var("ECHO_RAW").as_deref() {
        Ok("1") => echo_handler::Echo::raw(),
        _ => echo_handler::Echo::default(),
    };
    let set = match ConnectorSet::builder(config).handler(echo).build() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("echo: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // The Kubernetes TCP probe (tcpProbePort, default 8000): healthy while the
    // process runs. A port already taken is not fatal for echo.
    if let Err(e) = set.declare_healthy() {
        tracing::warn!(error = %e, port = set.server_config().tcp_probe_port(), "health probe not started");
    }
    match set.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::AuthenticationFailed { .. }) => {
            eprintln!("echo: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::from(1)
        }
    }
}
