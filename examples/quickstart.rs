//! Five minutes with the SDK, no Vantiq account needed:
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! It starts the `vantiq-sim` emulator in this process, runs the `echo`
//! connector against it, and plays a short session, printing each step: the
//! configuration arriving, publishes echoed back as notifications, a query
//! answered in partial chunks, a query error, and a reconfiguration.

#[path = "common/echo_handler.rs"]
mod echo_handler;

use std::error::Error;
use std::time::{Duration, Instant};

use serde_json::json;
use vantiq_connector_sdk::{ConnectorSet, ServerConfig};
use vantiq_sim::Sim;

const WAIT: Duration = Duration::from_secs(10);

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    // Connector logs go to stderr (colored only on a terminal); only warnings,
    // to keep the session readable (RUST_LOG overrides).
    vantiq_connector_sdk::logging::setup_logging_with(
        &vantiq_connector_sdk::logging::LoggingSettings {
            level: "warn".into(),
            ..Default::default()
        },
    )?;

    step(
        1,
        "Starting the vantiq-sim emulator with one source, `echo`",
    );
    let token = "quickstart-token";
    let sim = Sim::builder()
        .token(token)
        .source("echo", json!({"greeting": "hello from the server"}))
        .start()
        .await?;
    println!(
        "    emulator listening at {} (websocket {})",
        sim.http_url(),
        sim.ws_url()
    );

    step(
        2,
        "Starting the echo connector (what server.config would say, built in code)",
    );
    let config = ServerConfig::builder(sim.http_url())
        .token(token)
        .source("echo")
        .build()?;
    println!(
        "    targetServer={} -> {}",
        config.target_server(),
        config.websocket_url()
    );
    let set = ConnectorSet::builder(config)
        .handler(echo_handler::Echo::default())
        .build()?;
    let runner = {
        let set = set.clone();
        tokio::spawn(async move { set.run().await })
    };
    let status = sim.wait_connected("echo", WAIT).await?;
    println!(
        "    connected; the server sent the configuration {}",
        status.config
    );
    let out = sim.query("echo", json!({"op": "config"}), WAIT).await?;
    println!(
        "    the connector holds it: {}",
        serde_json::to_string(&out.rows)?
    );

    step(
        3,
        "Publishing three messages; the connector echoes each as a notification",
    );
    for i in 1..=3 {
        let msg = json!({"reading": i, "unit": "celsius"});
        sim.publish("echo", msg.clone()).await?;
        println!("    PUBLISH {msg} TO SOURCE echo");
    }
    for n in sim.wait_notifications("echo", 3, WAIT).await? {
        println!("    notification #{} <- {}", n.seq, n.object);
    }

    step(
        4,
        "SELECT * FROM SOURCE echo WITH op: \"rows\", count: 7, chunk: 3",
    );
    let out = sim
        .query("echo", json!({"op": "rows", "count": 7, "chunk": 3}), WAIT)
        .await?;
    for frame in &out.frames {
        println!("    status {} body {}", frame["status"], frame["body"]);
    }
    println!(
        "    final status {}, {} rows in all",
        out.status,
        out.rows.len()
    );

    step(
        5,
        "SELECT * FROM SOURCE echo WITH op: \"fail\", reason: \"disk on fire\"",
    );
    let out = sim
        .query(
            "echo",
            json!({"op": "fail", "reason": "disk on fire"}),
            WAIT,
        )
        .await?;
    println!(
        "    status {} error {}",
        out.status,
        out.error.unwrap_or_default()
    );

    step(
        6,
        "A handler that panics, on purpose: the SDK logs one ERROR line (below), answers the query with an error, and the connector goes on",
    );
    let out = sim.query("echo", json!({"op": "panic"}), WAIT).await?;
    println!(
        "    status {} error {}",
        out.status,
        out.error.unwrap_or_default()
    );

    step(
        7,
        "Changing the source's configuration on the server (reconnectRequired)",
    );
    sim.set_config("echo", json!({"greeting": "a new configuration"}))
        .await?;
    sim.wait_connections("echo", 2, WAIT).await?;
    let out = sim.query("echo", json!({"op": "config"}), WAIT).await?;
    println!(
        "    reconnected; the connector now holds {}",
        serde_json::to_string(&out.rows)?
    );

    step(8, "Closing the connector");
    set.close().await;
    runner.await??;
    let stats = set
        .connection("echo")
        .map(|c| c.stats())
        .unwrap_or_default();
    let violations = sim.violations();

    println!("\nSummary");
    println!("    connections made:          {}", stats.connections);
    println!(
        "    notifications sent/acked:  {}/{}",
        stats.sent, stats.acknowledged
    );
    println!(
        "    queries answered/failed:   {}/{}",
        stats.queries_answered, stats.queries_failed
    );
    println!("    protocol violations:       {}", violations.len());
    println!("    time:                      {:.2?}", started.elapsed());
    if !violations.is_empty() {
        return Err(format!("the emulator saw protocol violations: {violations:?}").into());
    }
    println!("\nNext: write your own connector (README, \"Your own connector\"), or drive this one by hand with the vantiq-sim CLI.");
    Ok(())
}
