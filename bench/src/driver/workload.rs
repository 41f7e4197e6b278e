//! What the connectors are given: the workload sizes, the published object, the jobs of
//! the load server and the warm-up; and the waits on the emulator of the many-source parts.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use vantiq_sim::Sim;

use crate::loadsrv::{Job, LoadServer, Report};

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
/// The time limit of one job of the load server (a stall of 5 s fails it sooner).
pub const JOB_LIMIT: Duration = Duration::from_secs(600);

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

/// How many times the messages of a round the driver's ceiling gets (see
/// [`Workload::for_ceiling`]).
pub const CEILING_SCALE: usize = 4;

impl Workload {
    /// The workload of the driver's ceiling: [`CEILING_SCALE`] times the messages per
    /// round (the sequential queries excepted), so that its rounds, at several times the
    /// others' rates, last about as long as theirs and a few milliseconds of scheduling
    /// do not decide its figure (rates are what is compared).
    pub fn for_ceiling(self) -> Workload {
        Workload {
            publishes: self.publishes * CEILING_SCALE,
            notifications: self.notifications * CEILING_SCALE,
            latency_queries: self.latency_queries,
            concurrent_queries: self.concurrent_queries * CEILING_SCALE,
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

/// The published object's JSON text cut around its number: `before`, `i`, `after` is
/// [`object`]`(i)` serialised (the load server formats only the number).
pub fn object_template() -> (String, String) {
    let text = object(0).to_string();
    let at = text.find(r#""i":0"#).expect("the object has its number") + 4;
    (text[..at].to_owned(), text[at + 1..].to_owned())
}

/// The publish job of `n` objects, all at once or `windowed` (see [`WINDOW_CHUNK`]).
pub fn publish_job(n: usize, windowed: bool) -> Job {
    let (before, after) = object_template();
    Job::Publish {
        n,
        before,
        after,
        window: windowed.then_some((WINDOW_CHUNK, WINDOW_CHUNKS)),
    }
}

/// The job of `n` [`rows_query`] queries with `in_flight` unanswered at a time.
pub fn queries_job(n: usize, in_flight: usize) -> Job {
    Job::Queries {
        n: n as u64,
        in_flight: in_flight as u64,
        params: rows_query(),
    }
}

/// Checks that a query job got `n` successful answers with a row each.
pub fn check_queries(report: &Report, n: usize) -> Result<(), String> {
    if report.answered != n as u64 || report.errors != 0 || report.rows != n as u64 {
        return Err(format!(
            "{} of {n} queries answered, {} errors, {} rows",
            report.answered, report.errors, report.rows
        ));
    }
    Ok(())
}

/// The echo's `notify` query for `n` notifications, as a job.
pub fn notify_job(n: usize) -> Job {
    Job::Notify {
        n,
        params: json!({"op":"notify","count": n}),
    }
}

/// A warm-up: a few publishes echoed, one `notify` query of the size of `w`'s rounds, and
/// a few queries answered, one at a time and [`IN_FLIGHT`] at a time.
pub async fn warm_up(server: &LoadServer, w: &Workload) -> Result<(), String> {
    for _ in 0..5 {
        server.run(publish_job(200, false), JOB_LIMIT).await?;
    }
    server.run(notify_job(w.notifications), JOB_LIMIT).await?;
    for (n, in_flight) in [(200, 1), (2000, IN_FLIGHT)] {
        let report = server.run(queries_job(n, in_flight), JOB_LIMIT).await?;
        check_queries(&report, n)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_makes_the_object() {
        let (before, after) = object_template();
        for i in [0, 7, 123_456] {
            assert_eq!(format!("{before}{i}{after}"), object(i).to_string());
        }
    }
}
