//! `floor`: the bare WebSocket client of the benchmark (see `vantiq_bench::floor`). It
//! reads `serverConfig/server.config` (or `server.config`) in its working directory, like
//! the connectors, serves every source listed there on its own socket, and runs until
//! killed. A lost connection is retried every 10 ms.

use std::process::ExitCode;
use std::time::Duration;

use vantiq_bench::config::ServerConfig;
use vantiq_bench::floor;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match ServerConfig::load_from(std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let tasks = floor::spawn_all(&config, Duration::from_millis(10));
    for t in tasks {
        let _ = t.await;
    }
    ExitCode::SUCCESS
}
