//! One source: publish echo (all at once, and windowed), notifications, sequential query
//! latency and queries with 64 in flight. Each figure sets every column up on its own
//! emulator, warms it up, then runs the rounds interleaved (see [`crate::driver`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vantiq_sim::{QueryLoad, Sim};

use super::columns::{launch, Connector, Running};
use super::workload::{
    check_load, object, rows_query, wait_progress, warm_up, Workload, IN_FLIGHT, SRC, WINDOW_CHUNK,
    WINDOW_CHUNKS,
};
use super::{log, rotation, Bench};
use crate::config::{server_config, TOKEN};

/// One column set up for one figure.
struct Live {
    who: String,
    sim: Sim,
    running: Running,
    /// Notifications the source has been sent so far (the targets of the waits).
    total: Arc<AtomicU64>,
    workload: Workload,
    /// The rounds' values, one list per figure id.
    samples: Vec<Vec<f64>>,
    failed: bool,
}

/// A fresh emulator with the one source, and `connector` connected to it.
pub(super) async fn setup(connector: &Connector) -> Result<(Sim, Running), String> {
    let sim = Sim::builder()
        .token(TOKEN)
        .source(SRC, json!({"bench": true}))
        .keep_notifications(1024)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let config = server_config(&sim.http_url(), &[SRC.into()])?;
    let mut running = launch(connector, &config)?;
    if let Err(e) = sim.wait_connected(SRC, Duration::from_secs(30)).await {
        return Err(format!("did not connect: {e}; {:?}", running.exited()));
    }
    Ok((sim, running))
}

impl Bench {
    /// Runs the figures `ids` (measured together by `round`) for every column: each set
    /// up and warmed up, then the rounds interleaved. A column whose setup or round fails
    /// gets a note on `ids[0]` and no result.
    async fn single_figure<D, F, Fut>(&mut self, ids: &[&str], describe: D, round: F)
    where
        D: Fn(&Workload) -> String,
        F: Fn(Sim, Arc<AtomicU64>, Workload) -> Fut,
        Fut: Future<Output = Result<Vec<f64>, String>>,
    {
        if !self.opts.wants_figure(ids[0]) {
            return;
        }
        log(&format!("single source: {}", ids.join(", ")));
        let mut live = Vec::new();
        for connector in self.connectors.clone() {
            let who = connector.name().to_owned();
            let (sim, running) = match setup(&connector).await {
                Ok(x) => x,
                Err(e) => {
                    self.note(ids[0], format!("{who}: {e}"));
                    continue;
                }
            };
            let total = Arc::new(AtomicU64::new(0));
            if let Err(e) = warm_up(&sim, &total).await {
                self.note(ids[0], format!("{who}: warm-up failed: {e}"));
                continue;
            }
            live.push(Live {
                who,
                sim,
                running,
                total,
                workload: Workload::new(self.opts.quick, connector.slow),
                samples: vec![Vec::new(); ids.len()],
                failed: false,
            });
        }
        for r in 0..self.opts.rounds {
            for k in rotation(r, live.len()) {
                let l = &mut live[k];
                if l.failed {
                    continue;
                }
                match round(l.sim.clone(), l.total.clone(), l.workload).await {
                    Ok(values) => {
                        for (i, v) in values.into_iter().enumerate() {
                            l.samples[i].push(v);
                        }
                    }
                    Err(e) => {
                        l.failed = true;
                        let text = format!("{}: {e}", l.who);
                        self.note(ids[0], text);
                    }
                }
            }
        }
        for l in live {
            let violations = l.sim.violations();
            if !violations.is_empty() {
                self.notes.push(format!(
                    "{} ({}): {} protocol violations recorded by the emulator, first: {:?}",
                    l.who,
                    ids[0],
                    violations.len(),
                    violations[0]
                ));
            }
            drop(l.running);
            if !l.failed {
                for (i, id) in ids.iter().enumerate() {
                    self.record(id, &l.who, &l.samples[i], describe(&l.workload));
                }
            }
        }
    }

    /// The single-source figures, for every column.
    pub async fn single(&mut self) {
        self.single_figure(
            &["publish_echo"],
            |w| format!("{} publishes per round, all pushed at once", w.publishes),
            |sim, total, w| async move {
                let n = w.publishes;
                let start = Instant::now();
                let target = total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                let publisher = tokio::spawn({
                    let sim = sim.clone();
                    async move { sim.publish_many(SRC, (0..n).map(object)).await }
                });
                let waited = wait_progress(&sim, target).await;
                publisher.abort();
                waited?;
                Ok(vec![n as f64 / start.elapsed().as_secs_f64()])
            },
        )
        .await;

        self.single_figure(
            &["publish_echo_windowed"],
            |w| {
                format!(
                    "{} publishes per round, at most {} outstanding",
                    w.publishes,
                    WINDOW_CHUNK * WINDOW_CHUNKS
                )
            },
            |sim, total, w| async move {
                let n = w.publishes;
                let start = Instant::now();
                let base = total.fetch_add(n as u64, Ordering::Relaxed);
                let mut sent = 0;
                while sent < n {
                    let chunk = WINDOW_CHUNK.min(n - sent);
                    let must_have = (sent + chunk).saturating_sub(WINDOW_CHUNK * WINDOW_CHUNKS);
                    wait_progress(&sim, base + must_have as u64).await?;
                    sim.publish_many(SRC, (sent..sent + chunk).map(object))
                        .await
                        .map_err(|e| e.to_string())?;
                    sent += chunk;
                }
                wait_progress(&sim, base + n as u64).await?;
                Ok(vec![n as f64 / start.elapsed().as_secs_f64()])
            },
        )
        .await;

        self.single_figure(
            &["notify"],
            |w| format!("notify count {} per round", w.notifications),
            |sim, total, w| async move {
                let n = w.notifications;
                let start = Instant::now();
                let target = total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                let query = tokio::spawn({
                    let sim = sim.clone();
                    async move {
                        sim.query(
                            SRC,
                            json!({"op":"notify","count": n}),
                            Duration::from_secs(600),
                        )
                        .await
                    }
                });
                let waited = wait_progress(&sim, target).await;
                if waited.is_err() {
                    query.abort();
                }
                waited?;
                let q = query
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                if q.status != 200 {
                    return Err(format!("notify answered {}", q.status));
                }
                Ok(vec![n as f64 / start.elapsed().as_secs_f64()])
            },
        )
        .await;

        self.single_figure(
            &["latency_p50", "latency_p99"],
            |w| format!("{} sequential queries per round", w.latency_queries),
            |sim, _, w| async move {
                let n = w.latency_queries;
                let report = sim
                    .query_load(SRC, rows_query(), QueryLoad::new(n as u64, 1))
                    .await
                    .map_err(|e| format!("sequential queries: {e}"))?;
                check_load(&report, n)?;
                let us = |p| {
                    report
                        .latency_percentile(p)
                        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
                };
                Ok(vec![us(50.0), us(99.0)])
            },
        )
        .await;

        self.single_figure(
            &["query_tput"],
            |w| {
                format!(
                    "{} queries per round, {IN_FLIGHT} in flight",
                    w.concurrent_queries
                )
            },
            |sim, _, w| async move {
                let n = w.concurrent_queries;
                let report = sim
                    .query_load(
                        SRC,
                        rows_query(),
                        QueryLoad::new(n as u64, IN_FLIGHT as u64),
                    )
                    .await
                    .map_err(|e| format!("concurrent queries: {e}"))?;
                check_load(&report, n)?;
                Ok(vec![report.rate()])
            },
        )
        .await;
    }
}
