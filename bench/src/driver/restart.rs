//! Reconnection after a server restart: 1,000 sources connected; the emulator stops
//! (listener closed, every socket cut) and restarts; the time until every source has made
//! a new handshake, from when the server accepts again and from the stop. Every column is
//! connected to its own emulator first, then the rounds are interleaved.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vantiq_sim::Sim;

use super::columns::{launch, Running};
use super::workload::{many_sources, wait_all, CONNECT_LIMIT};
use super::{log, rotation, Bench};
use crate::config::server_config;

/// Sources connected in the restart figure.
const SOURCES: usize = 1000;

/// One column connected for the restart figure.
struct Live {
    who: String,
    sim: Sim,
    names: Vec<String>,
    _running: Running,
    from_up: Vec<f64>,
    from_stop: Vec<f64>,
    failed: bool,
}

/// One restart: stop, restart, wait for every source's next handshake; the times from
/// when the server accepts again and from the stop, in ms.
async fn round(sim: &Sim, names: &[String]) -> Result<(f64, f64), String> {
    let want: HashMap<String, u64> = sim
        .sources()
        .into_iter()
        .map(|s| (s.name, s.connections + 1))
        .collect();
    sim.stop().await;
    let stopped = Instant::now();
    sim.restart().await.map_err(|e| format!("restart: {e}"))?;
    let up = Instant::now();
    wait_all(sim, names, Some(&want), Duration::from_secs(60))
        .await
        .map_err(|e| format!("after restart: {e}"))?;
    Ok((
        up.elapsed().as_secs_f64() * 1e3,
        stopped.elapsed().as_secs_f64() * 1e3,
    ))
}

impl Bench {
    /// The restart figures for every column.
    pub async fn restart(&mut self) {
        let mut live = Vec::new();
        for c in self.many_source_columns() {
            let who = c.name().to_owned();
            log(&format!("restart: connecting {who}"));
            let setup = async {
                let (sim, names) = many_sources(SOURCES).await?;
                let running = launch(&c, &server_config(&sim.http_url(), &names)?)?;
                wait_all(&sim, &names, None, CONNECT_LIMIT)
                    .await
                    .map_err(|e| format!("did not connect {SOURCES} sources: {e}"))?;
                Ok::<_, String>((sim, names, running))
            };
            match setup.await {
                Ok((sim, names, running)) => live.push(Live {
                    who,
                    sim,
                    names,
                    _running: running,
                    from_up: Vec::new(),
                    from_stop: Vec::new(),
                    failed: false,
                }),
                Err(e) => self.note("restart", format!("{who}: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for r in 0..self.opts.rounds {
            for k in rotation(r, live.len()) {
                let l = &mut live[k];
                if l.failed {
                    continue;
                }
                match round(&l.sim, &l.names).await {
                    Ok((up, stop)) => {
                        l.from_up.push(up);
                        l.from_stop.push(stop);
                    }
                    Err(e) => {
                        l.failed = true;
                        let text = format!("{}: {e}", l.who);
                        self.note("restart", text);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        for l in live.into_iter().filter(|l| !l.failed) {
            let workload = format!("{SOURCES} sources, {} rounds", l.from_up.len());
            self.record("restart", &l.who, &l.from_up, workload.clone());
            self.record("restart_from_stop", &l.who, &l.from_stop, workload);
        }
    }
}
