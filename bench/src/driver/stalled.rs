//! Issue 10's bound: the peak resident-memory growth of a connector process while a
//! handler streams 2,000,000 rows in chunks of 1,000 (the echo's `rows` query) to a
//! server that has stopped reading; afterwards every row must arrive, in order.
//!
//! Each round starts a fresh process (its `VmHWM`, the kernel's high-water mark of its
//! resident memory, then covers only this run): connect, note `VmRSS`, stop reading
//! ([`vantiq_sim::Sim::stop_reading`]), send the query, wait until the process's memory has not grown
//! for 2 s (the connector is blocked on a full outbox, or has queued everything),
//! resume reading, take the answer and check its rows. The figure is `VmHWM` at the end
//! minus `VmRSS` before the query. Measured for the echo builds (the current one and the
//! baselines): the other columns have no such bound to check.

use std::time::{Duration, Instant};

use super::columns::{launch, Connector, Running};
use super::workload::SRC;
use super::{log, rotation, Bench};
use crate::config::{server_config, TOKEN};
use crate::sys;
use serde_json::json;
use vantiq_sim::Sim;

/// Rows streamed.
pub const ROWS: u64 = 2_000_000;
/// Rows per answer.
pub const CHUNK: u64 = 1_000;
/// The memory is taken as settled when it has not grown for this long.
const STEADY: Duration = Duration::from_secs(2);
/// How often the process's memory is sampled while the server does not read.
const SAMPLE: Duration = Duration::from_millis(20);
/// A round gives up waiting for the memory to settle after this.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// A fresh emulator with the one source, and `connector` connected to it (this part
/// needs the emulator's `stop_reading`, which the load server does not offer).
async fn setup(connector: &Connector) -> Result<(Sim, Running), String> {
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

/// One round: the peak growth in MiB, and how long the memory took to settle.
async fn round(connector: &Connector) -> Result<(f64, Duration), String> {
    let (sim, mut running) = setup(connector).await?;
    let pid = running.pid().ok_or("not a process")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = sys::rss_kib(pid).ok_or("no VmRSS")?;
    sim.stop_reading(SRC).await.map_err(|e| e.to_string())?;
    let query = tokio::spawn({
        let sim = sim.clone();
        async move {
            sim.query(
                SRC,
                json!({"op": "rows", "count": ROWS, "chunk": CHUNK}),
                Duration::from_secs(600),
            )
            .await
        }
    });
    let began = Instant::now();
    let (mut peak, mut grew) = (before, Instant::now());
    while grew.elapsed() < STEADY {
        if began.elapsed() > SETTLE_LIMIT {
            query.abort();
            return Err(format!(
                "memory still growing after {} s",
                SETTLE_LIMIT.as_secs()
            ));
        }
        if let Some(exit) = running.exited() {
            query.abort();
            return Err(exit);
        }
        let now = sys::rss_kib(pid).unwrap_or(0);
        if now > peak {
            (peak, grew) = (now, Instant::now());
        }
        tokio::time::sleep(SAMPLE).await;
    }
    let settled = grew.duration_since(began);
    if query.is_finished() {
        return Err("the query was answered while the server did not read".into());
    }
    let stalled_peak = peak;
    sim.resume_reading(SRC).await.map_err(|e| e.to_string())?;
    let answer = query
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the query after resuming: {e}"))?;
    let hwm = sys::hwm_kib(pid).ok_or("no VmHWM")?.max(peak);
    log(&format!(
        "stalled stream {}: VmRSS {before} KiB before, {stalled_peak} KiB at most while not read, VmHWM {hwm} KiB at the end",
        connector.name()
    ));
    if answer.status != 200 || answer.rows.len() as u64 != ROWS {
        return Err(format!(
            "answered {} with {} of {ROWS} rows",
            answer.status,
            answer.rows.len()
        ));
    }
    if let Some(i) = (0..answer.rows.len()).find(|&i| answer.rows[i] != json!({ "i": i })) {
        return Err(format!("row {i} out of order: {}", answer.rows[i]));
    }
    let violations = sim.violations();
    if !violations.is_empty() {
        return Err(format!("protocol violations: {:?}", violations[0]));
    }
    Ok((hwm.saturating_sub(before) as f64 / 1024.0, settled))
}

impl Bench {
    /// The stalled-stream figure for the echo builds, rounds interleaved.
    pub async fn stalled(&mut self) {
        let id = "stalled_stream_rss";
        let echoes: Vec<Connector> = self
            .connectors
            .iter()
            .filter(|c| c.echo_build)
            .cloned()
            .collect();
        let mut growth = vec![Vec::new(); echoes.len()];
        let mut failed = vec![false; echoes.len()];
        for r in 0..self.opts.rounds {
            for k in rotation(r, echoes.len()) {
                if failed[k] {
                    continue;
                }
                match round(&echoes[k]).await {
                    Ok((mib, settled)) => {
                        log(&format!(
                            "{id} {}: {mib:.1} MiB, settled after {:.1} s",
                            echoes[k].name(),
                            settled.as_secs_f64()
                        ));
                        growth[k].push(mib);
                    }
                    Err(e) => {
                        failed[k] = true;
                        self.note(id, format!("{}: {e}", echoes[k].name()));
                    }
                }
            }
        }
        for (k, c) in echoes.iter().enumerate() {
            if !failed[k] {
                let workload = format!(
                    "rows {ROWS} in chunks of {CHUNK} to a server not reading; VmHWM at the end − VmRSS before"
                );
                self.record(id, c.name(), &growth[k], workload);
            }
        }
    }
}
