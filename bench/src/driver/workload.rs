//! What the connectors are given and how the driver waits for it: the workload sizes, the
//! published object, the warm-up, and waits on the emulator that fail on a stall instead
//! of a fixed time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vantiq_sim::{QueryLoad, QueryLoadReport, Sim};

/// The source of the single-source figures.
pub const SRC: &str = "echo";
/// Queries in flight for the concurrent-query figure.
pub const IN_FLIGHT: usize = 64;
/// Any connector gives up on a source count when connecting takes longer than this.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(60);
/// Publishes sent per `publish_many` call in the windowed publish figure.
pub const WINDOW_CHUNK: usize = 1000;
/// Chunks outstanding (published, not all echoed) at most in the windowed figure.
pub const WINDOW_CHUNKS: usize = 4;
/// A single query's time limit.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A wait fails when no notification arrived for this long.
pub const STALL: Duration = Duration::from_secs(5);

/// How many messages a connector is given per round: a slow one (the Python SDK) gets a
/// tenth, so that its rounds take about as long as the others' (rates are compared).
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Publishes per round (both publish figures).
    pub publishes: usize,
    /// Notifications asked for with the `notify` query per round.
    pub notifications: usize,
    /// Sequential queries per round (latency).
    pub latency_queries: usize,
    /// Queries per round with [`IN_FLIGHT`] in flight.
    pub concurrent_queries: usize,
}

impl Workload {
    /// The workload of a run (`quick`) for a connector (`slow`: the Python SDK).
    pub fn new(quick: bool, slow: bool) -> Workload {
        let full = if quick {
            Workload {
                publishes: 50_000,
                notifications: 50_000,
                latency_queries: 1_000,
                concurrent_queries: 10_000,
            }
        } else {
            Workload {
                publishes: 200_000,
                notifications: 200_000,
                latency_queries: 5_000,
                concurrent_queries: 100_000,
            }
        };
        if slow {
            Workload {
                publishes: full.publishes / 10,
                notifications: full.notifications / 10,
                latency_queries: full.latency_queries,
                concurrent_queries: full.concurrent_queries / 20,
            }
        } else {
            full
        }
    }
}

/// A published object.
pub fn object(i: usize) -> Value {
    json!({"i": i, "payload": "0123456789"})
}

/// The query of the latency and query-rate figures: one row.
pub fn rows_query() -> Value {
    json!({"op":"rows","count":1})
}

/// How many notifications the source has received so far.
fn received(sim: &Sim) -> u64 {
    sim.notifications(SRC, 0).last().map_or(0, |n| n.seq + 1)
}

/// Waits until the source has received `target` notifications in all; fails when none
/// arrives for [`STALL`].
pub async fn wait_progress(sim: &Sim, target: u64) -> Result<(), String> {
    let mut last = received(sim);
    let mut last_change = Instant::now();
    loop {
        match sim
            .wait_notifications(SRC, target as usize, Duration::from_millis(500))
            .await
        {
            Ok(_) => return Ok(()),
            Err(_) => {
                let now = received(sim);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= STALL {
                    return Err(format!(
                        "stalled: {now} of {target} notifications received, none for {} s",
                        STALL.as_secs()
                    ));
                }
            }
        }
    }
}

/// Checks that a query load got `n` successful answers with a row each.
pub fn check_load(report: &QueryLoadReport, n: usize) -> Result<(), String> {
    if report.answered != n as u64 || report.errors != 0 || report.rows != n as u64 {
        return Err(format!(
            "{} of {n} queries answered, {} errors, {} rows",
            report.answered, report.errors, report.rows
        ));
    }
    Ok(())
}

/// A warm-up: a few publishes echoed and a few queries answered.
pub async fn warm_up(sim: &Sim, total: &AtomicU64) -> Result<(), String> {
    for _ in 0..5 {
        sim.publish_many(SRC, (0..200).map(object))
            .await
            .map_err(|e| e.to_string())?;
        let target = total.fetch_add(200, Ordering::Relaxed) + 200;
        wait_progress(sim, target).await?;
    }
    for _ in 0..200 {
        sim.query(SRC, rows_query(), QUERY_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
    }
    let report = sim
        .query_load(SRC, rows_query(), QueryLoad::new(2000, IN_FLIGHT as u64))
        .await
        .map_err(|e| e.to_string())?;
    check_load(&report, 2000)
}

/// Waits until every source in `names` is connected with at least the number of
/// handshakes in `min_connections` (1 when absent).
pub async fn wait_all(
    sim: &Sim,
    names: &[String],
    min_connections: Option<&HashMap<String, u64>>,
    limit: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    for name in names {
        let n = min_connections
            .and_then(|m| m.get(name).copied())
            .unwrap_or(1);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if sim.wait_connections(name, n, left).await.is_err() {
            let connected = sim.sources().iter().filter(|s| s.connected).count();
            return Err(format!(
                "{connected} of {} sources connected after {} s",
                names.len(),
                limit.as_secs()
            ));
        }
    }
    Ok(())
}

/// An emulator with `n` sources `s0..`, and their names.
pub async fn many_sources(n: usize) -> Result<(Sim, Vec<String>), String> {
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let mut builder = Sim::builder()
        .token(crate::config::TOKEN)
        .keep_notifications(16);
    for (i, name) in names.iter().enumerate() {
        builder = builder.source(name.clone(), json!({"i": i}));
    }
    let sim = builder.start().await.map_err(|e| e.to_string())?;
    Ok((sim, names))
}
