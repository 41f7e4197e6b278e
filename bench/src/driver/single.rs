//! One source: publish echo (all at once, and windowed), notifications, sequential query
//! latency and queries with 64 in flight. Each figure sets every column up on its own
//! load server ([`crate::loadsrv`]), warms it up, then runs the rounds interleaved (see
//! [`crate::driver`]).

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use super::columns::{launch_single, Connector, Launch, Running};
use super::workload::{
    check_queries, notify_job, publish_job, queries_job, warm_up, Workload, IN_FLIGHT, JOB_LIMIT,
    SRC,
};
use super::{log, rotation, Bench};
use crate::config::{server_config, TOKEN};
use crate::loadsrv::LoadServer;

/// One column set up for one figure.
struct Live {
    who: String,
    server: LoadServer,
    running: Running,
    workload: Workload,
    /// The rounds' values, one list per figure id.
    samples: Vec<Vec<f64>>,
    failed: bool,
}

/// A fresh load server for the one source, and `connector` connected to it.
async fn setup(connector: &Connector) -> Result<(LoadServer, Running), String> {
    let server = LoadServer::start(TOKEN, SRC, json!({"bench": true}))
        .await
        .map_err(|e| e.to_string())?;
    let config = server_config(&server.http_url(), &[SRC.into()])?;
    let mut running = launch_single(connector, &config)?;
    if let Err(e) = server.wait_connected(Duration::from_secs(30)).await {
        return Err(format!("did not connect: {e}; {:?}", running.exited()));
    }
    Ok((server, running))
}

impl Bench {
    /// Runs the figures `ids` (measured together by `round`) for every column: each set
    /// up and warmed up, then the rounds interleaved. A column whose setup or round fails
    /// gets a note on `ids[0]` and no result.
    async fn single_figure<D, F, Fut>(&mut self, ids: &[&str], describe: D, round: F)
    where
        D: Fn(&Workload) -> String,
        F: Fn(LoadServer, Workload) -> Fut,
        Fut: Future<Output = Result<Vec<f64>, String>>,
    {
        if !self.opts.wants_figure(ids[0]) {
            return;
        }
        log(&format!("single source: {}", ids.join(", ")));
        let mut live = Vec::new();
        for connector in self.connectors.clone() {
            let who = connector.name().to_owned();
            let (server, running) = match setup(&connector).await {
                Ok(x) => x,
                Err(e) => {
                    self.note(ids[0], format!("{who}: {e}"));
                    continue;
                }
            };
            let mut workload = Workload::new(self.opts.quick, connector.slow);
            if let Some(n) = self.opts.notifications {
                workload.notifications = if connector.slow { (n / 10).max(1) } else { n };
            }
            if matches!(connector.launch, Launch::Ceiling { .. }) {
                workload = workload.for_ceiling();
            }
            if let Err(e) = warm_up(&server, &workload).await {
                self.note(ids[0], format!("{who}: warm-up failed: {e}"));
                continue;
            }
            live.push(Live {
                who,
                server,
                running,
                workload,
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
                match round(l.server.clone(), l.workload).await {
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
            let (count, first) = l.server.violations();
            if count > 0 {
                self.notes.push(format!(
                    "{} ({}): {count} protocol violations recorded by the load server, first: {:?}",
                    l.who, ids[0], first[0]
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
        for (id, windowed) in [("publish_echo", false), ("publish_echo_windowed", true)] {
            self.single_figure(
                &[id],
                move |w| {
                    if windowed {
                        format!(
                            "{} publishes per round, at most {} outstanding",
                            w.publishes,
                            super::workload::WINDOW_CHUNK * super::workload::WINDOW_CHUNKS
                        )
                    } else {
                        format!("{} publishes per round, all pushed at once", w.publishes)
                    }
                },
                move |server, w| async move {
                    let n = w.publishes;
                    let report = server.run(publish_job(n, windowed), JOB_LIMIT).await?;
                    Ok(vec![report.rate(n)])
                },
            )
            .await;
        }

        self.single_figure(
            &["notify"],
            |w| format!("notify count {} per round", w.notifications),
            |server, w| async move {
                let n = w.notifications;
                let report = server.run(notify_job(n), JOB_LIMIT).await?;
                Ok(vec![report.rate(n)])
            },
        )
        .await;

        self.single_figure(
            &["latency_p50", "latency_p99"],
            |w| format!("{} sequential queries per round", w.latency_queries),
            |server, w| async move {
                let n = w.latency_queries;
                let report = server
                    .run(queries_job(n, 1), JOB_LIMIT)
                    .await
                    .map_err(|e| format!("sequential queries: {e}"))?;
                check_queries(&report, n)?;
                Ok(vec![report.latency_us(50.0), report.latency_us(99.0)])
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
            |server, w| async move {
                let n = w.concurrent_queries;
                let report = server
                    .run(queries_job(n, IN_FLIGHT), JOB_LIMIT)
                    .await
                    .map_err(|e| format!("concurrent queries: {e}"))?;
                check_queries(&report, n)?;
                Ok(vec![report.rate(n)])
            },
        )
        .await;
    }
}
