//! What the machine and the emulator sustain without any connector: the kernel's round
//! trip between two processes, and the `vantiq-sim` emulator driven one way by a raw client
//! in the driver (how far the emulator itself would carry a connector; the single-source
//! figures run on the leaner [`crate::loadsrv`]). Recorded in the `ceiling` column, beside
//! the ceiling of each single-source figure (the trivial client, see [`crate::driver`]).

use std::time::{Duration, Instant};

use serde_json::json;
use vantiq_sim::Sim;

use super::workload::{object, Workload, SRC};
use super::Bench;
use crate::config::TOKEN;
use crate::stats::percentile;
use crate::{floor, pingpong};

/// A fresh emulator with the one source, and a raw floor session connected to it.
async fn raw_session() -> Result<(Sim, floor::Session), String> {
    let sim = Sim::builder()
        .token(TOKEN)
        .source(SRC, json!({}))
        .keep_notifications(1024)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let session = floor::connect(&sim.ws_url(), TOKEN, SRC)
        .await
        .map_err(|e| e.to_string())?;
    Ok((sim, session))
}

impl Bench {
    /// The kernel's floor for a round trip: no connector can answer faster (see
    /// `vantiq_bench::pingpong`).
    pub async fn kernel_round_trip(&mut self) -> Result<(), String> {
        const TRIPS: usize = 20_000;
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        for _ in 0..self.opts.rounds {
            let floor_bin = self.opts.floor_bin();
            let mut lat = tokio::task::spawn_blocking(move || pingpong::measure(&floor_bin, TRIPS))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            lat.sort_by(f64::total_cmp);
            p50.push(percentile(&lat, 50.0));
            p99.push(percentile(&lat, 99.0));
        }
        let workload = format!(
            "{TRIPS} round trips of {} bytes per round",
            pingpong::MESSAGE_BYTES
        );
        self.record("kernel_rtt_p50", "ceiling", &p50, workload.clone());
        self.record("kernel_rtt_p99", "ceiling", &p99, workload);
        Ok(())
    }

    /// The emulator alone, one way at a time, with a raw client in the driver.
    pub async fn sim_alone(&mut self) -> Result<(), String> {
        let w = Workload::new(self.opts.quick, false);
        let n = w.publishes;
        let mut pub_samples = Vec::new();
        let mut notif_samples = Vec::new();
        for _ in 0..self.opts.rounds {
            let (sim, session) = raw_session().await?;
            let reader = tokio::spawn(session.count_frames(n));
            let start = Instant::now();
            sim.publish_many(SRC, (0..n).map(object))
                .await
                .map_err(|e| e.to_string())?;
            let got = reader.await.map_err(|e| e.to_string())?;
            if got != n {
                return Err(format!("counting reader got {got} of {n}"));
            }
            pub_samples.push(n as f64 / start.elapsed().as_secs_f64());
            drop(sim);

            let (sim, session) = raw_session().await?;
            let start = Instant::now();
            let writer = tokio::spawn(session.blast_notifications(n));
            sim.wait_notifications(SRC, n, Duration::from_secs(120))
                .await
                .map_err(|e| e.to_string())?;
            notif_samples.push(n as f64 / start.elapsed().as_secs_f64());
            writer.abort();
        }
        self.record(
            "sim_publish_only",
            "ceiling",
            &pub_samples,
            format!("{n} publishes per round"),
        );
        self.record(
            "sim_notify_only",
            "ceiling",
            &notif_samples,
            format!("{n} notifications per round"),
        );
        Ok(())
    }
}
