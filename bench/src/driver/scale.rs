//! Many sources in one connector process: the time until all are connected and the
//! process's resident memory once they are idle, for each source count, with the rounds
//! of all columns interleaved; then the memory per additional idle source.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::columns::{launch, Connector, Launch};
use super::workload::{many_sources, wait_all, CONNECT_LIMIT};
use super::{rotation, Bench};
use crate::config::server_config;
use crate::sys;

/// One round: start `connector` with `n` sources; the time from process start until the
/// emulator shows all connected (ms), and the process's VmRSS one second later (KiB).
async fn connect_round(connector: &Connector, n: usize) -> Result<(f64, Option<f64>), String> {
    let (sim, names) = many_sources(n).await?;
    let config = server_config(&sim.http_url(), &names)?;
    let start = Instant::now();
    let mut running = launch(connector, &config)?;
    if let Err(e) = wait_all(&sim, &names, None, CONNECT_LIMIT).await {
        return Err(match running.exited() {
            Some(exit) => format!("{e}; {exit}"),
            None => e,
        });
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kib = running.pid().and_then(sys::rss_kib).map(|k| k as f64);
    drop(running);
    drop(sim);
    // Let the sockets of this round go before the next one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok((ms, kib))
}

impl Bench {
    /// Why `connector` cannot be measured with `n` sources, if it cannot.
    fn cannot_connect(&self, connector: &Connector, n: usize, fd_limit: usize) -> Option<String> {
        if matches!(connector.launch, Launch::Ceiling { .. }) && 2 * n + 500 > fd_limit {
            return Some(format!(
                "not measured (driver and client ends in one process need {} files, limit {fd_limit}); the floor process stands for it",
                2 * n + 500
            ));
        }
        (n + 500 > fd_limit).then(|| format!("not measured (open files limit {fd_limit})"))
    }

    /// Connect time and memory for every source count of `--sizes`.
    pub async fn connect(&mut self) {
        let fd_limit = sys::open_files_limit().unwrap_or(1024) as usize;
        let mut given_up: HashMap<String, String> = HashMap::new();
        for n in self.opts.sizes.clone() {
            let id = format!("connect_{n}");
            // The columns measured at this size, with their rounds.
            let mut here: Vec<(Connector, usize)> = Vec::new();
            for c in self.many_source_columns() {
                let who = c.name().to_owned();
                if let Some(why) = given_up.get(&who) {
                    self.note(&id, format!("{who}: not measured ({why})"));
                } else if let Some(why) = self.cannot_connect(&c, n, fd_limit) {
                    self.note(&id, format!("{who}: {why}"));
                } else {
                    let rounds = match (n >= 10_000, c.slow) {
                        (true, true) => 1,
                        (true, false) => self.opts.rounds.min(3),
                        (false, _) => self.opts.rounds,
                    };
                    here.push((c, rounds));
                }
            }
            let mut times = vec![Vec::new(); here.len()];
            let mut rss = vec![Vec::new(); here.len()];
            let most = here.iter().map(|(_, r)| *r).max().unwrap_or(0);
            for r in 0..most {
                for k in rotation(r, here.len()) {
                    let (c, rounds) = &here[k];
                    let who = c.name().to_owned();
                    if r >= *rounds || given_up.contains_key(&who) {
                        continue;
                    }
                    match connect_round(c, n).await {
                        Ok((ms, kib)) => {
                            times[k].push(ms);
                            rss[k].extend(kib);
                        }
                        Err(e) => {
                            self.note(&id, format!("{who}: {e}"));
                            given_up.insert(who, format!("gave up at {n} sources: {e}"));
                        }
                    }
                }
            }
            for (k, (c, _)) in here.iter().enumerate() {
                if given_up.contains_key(c.name()) {
                    continue;
                }
                let workload = format!("{n} sources, {} rounds", times[k].len());
                self.record(&id, c.name(), &times[k], workload);
                let mib: Vec<f64> = rss[k].iter().map(|k| k / 1024.0).collect();
                self.record(
                    &format!("rss_{n}"),
                    c.name(),
                    &mib,
                    format!("{n} sources, VmRSS after all connected + 1 s idle"),
                );
            }
        }
        self.memory_per_source();
    }

    /// Memory per additional idle source, against the one-source process.
    fn memory_per_source(&mut self) {
        for n in self.opts.sizes.clone().into_iter().filter(|n| *n > 1) {
            for c in self.connectors.clone() {
                let who = c.name();
                let base = self
                    .find("rss_1")
                    .and_then(|f| f.get(who))
                    .map(|s| s.median);
                let at_n = self
                    .find(&format!("rss_{n}"))
                    .and_then(|f| f.get(who))
                    .map(|s| s.samples.clone());
                if let (Some(base), Some(at_n)) = (base, at_n) {
                    let per: Vec<f64> = at_n
                        .iter()
                        .map(|mib| (mib - base) * 1024.0 / (n - 1) as f64)
                        .collect();
                    self.record(
                        &format!("rss_per_source_{n}"),
                        who,
                        &per,
                        format!("(VmRSS with {n} sources − median VmRSS with 1) / {}", n - 1),
                    );
                }
            }
        }
    }
}
