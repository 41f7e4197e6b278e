//! `vantiq-bench`: the benchmark driver (run it with `bash scripts/bench.sh`).
//!
//! It runs a `vantiq-sim` emulator in its own process and drives, with the same workload
//! through the same emulator, three connectors started as separate processes — the Rust
//! SDK's `echo` example, the same echo on the official Python SDK, and the bare `floor`
//! client — plus the driver's own ceiling (the floor's code inside the driver, or a
//! one-way raw client). Every figure is the median of several rounds with the spread.
//! It prints a table and writes `bench/results/latest.json` and `bench/results/chart.svg`.
//!
//! ```text
//! vantiq-bench [--quick] [--rounds N] [--skip-python] [--only LIST] [--sizes LIST]
//!              [--out DIR]
//! ```
//!
//! `--only` takes a comma-separated list of `single` (throughput and latency), `connect`
//! (connect time and memory) and `restart`; `--sizes` the source counts of `connect`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vantiq_bench::config::{ServerConfig, TOKEN};
use vantiq_bench::report::{self, Figure, Panel, Target, WHO};
use vantiq_bench::stats::{percentile, Summary};
use vantiq_bench::sys;
use vantiq_bench::{floor, metrics_on, pingpong};
use vantiq_sim::{QueryLoad, QueryLoadReport, Sim};

/// The source of the single-source figures.
const SRC: &str = "echo";
/// Queries in flight for the concurrent-query figure.
const IN_FLIGHT: usize = 64;
/// Python gives up on a source count when connecting takes longer than this.
const PYTHON_CONNECT_LIMIT: Duration = Duration::from_secs(60);
/// Any connector gives up on a source count after this.
const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// Command-line options.
#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    rounds: usize,
    skip_python: bool,
    parts: Vec<String>,
    sizes: Vec<usize>,
    out: PathBuf,
    root: PathBuf,
}

impl Opts {
    fn parse() -> Result<Opts, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut o = Opts {
            quick: false,
            rounds: 0,
            skip_python: false,
            parts: vec!["single".into(), "connect".into(), "restart".into()],
            sizes: Vec::new(),
            out: root.join("bench/results"),
            root,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--quick" => o.quick = true,
                "--skip-python" => o.skip_python = true,
                "--rounds" => {
                    o.rounds = value("--rounds")?
                        .parse()
                        .map_err(|e| format!("--rounds: {e}"))?
                }
                "--only" => o.parts = value("--only")?.split(',').map(str::to_owned).collect(),
                "--sizes" => {
                    o.sizes = value("--sizes")?
                        .split(',')
                        .map(|s| s.parse().map_err(|e| format!("--sizes: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "--out" => o.out = PathBuf::from(value("--out")?),
                "-h" | "--help" => {
                    println!(
                        "vantiq-bench [--quick] [--rounds N] [--skip-python] \
                         [--only single,connect,restart] [--sizes 1,100,1000,10000] [--out DIR]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        if o.rounds == 0 {
            o.rounds = if o.quick { 3 } else { 5 };
        }
        if o.sizes.is_empty() {
            o.sizes = if o.quick {
                vec![1, 100, 1000]
            } else {
                vec![1, 100, 1000, 10_000]
            };
        }
        Ok(o)
    }

    /// The echo binary: `BENCH_ECHO_BIN`, or the workspace's release build.
    fn echo_bin(&self) -> PathBuf {
        std::env::var_os("BENCH_ECHO_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target/release/examples/echo"))
    }

    fn floor_bin(&self) -> PathBuf {
        self.root.join("target/release/floor")
    }

    fn python(&self) -> PathBuf {
        std::env::var_os("BENCH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join(".venv/bin/python"))
    }

    fn python_script(&self) -> PathBuf {
        self.root.join("vantiq-sim/tests/python/echo_connector.py")
    }
}

/// How many messages each connector is given per round: the Python SDK gets a tenth,
/// so that its rounds take about as long as the others' (rates are what is compared).
#[derive(Debug, Clone, Copy)]
struct Workload {
    publishes: usize,
    notifications: usize,
    latency_queries: usize,
    concurrent_queries: usize,
}

impl Workload {
    fn for_who(quick: bool, who: &str) -> Workload {
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
        if who == "python" {
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

// ---- connectors ------------------------------------------------------------------------

/// A running connector: a child process in its own directory, or the floor's code run
/// inside the driver (the ceiling). Stopped when dropped.
enum Running {
    Process {
        child: Child,
        dir: PathBuf,
        /// The scraper of `echo_metrics`' /metrics.
        scraper: Option<metrics_on::Scraper>,
    },
    /// The floor's code on a thread of the driver; dropping the handle stops it.
    InDriver { _floor: floor::FloorThread },
}

impl Running {
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Process { child, .. } => Some(child.id()),
            Running::InDriver { .. } => None,
        }
    }

    /// Whether the process has exited (and how).
    fn exited(&mut self) -> Option<String> {
        match self {
            Running::Process { child, dir, .. } => match child.try_wait() {
                Ok(Some(status)) => {
                    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    Some(format!(
                        "exited with {status}; stderr ends: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ))
                }
                _ => None,
            },
            Running::InDriver { .. } => None,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Running::Process {
                child,
                dir,
                scraper,
            } => {
                if let Some(scraper) = scraper {
                    let ok = scraper.ok.load(Ordering::Relaxed);
                    log(&format!("/metrics scrapes answered with 200: {ok}"));
                }
                let _ = child.kill();
                let _ = child.wait();
                if std::env::var_os("BENCH_KEEP").is_none() {
                    let _ = std::fs::remove_dir_all(&*dir);
                }
            }
            Running::InDriver { .. } => {}
        }
    }
}

static RUN_DIRS: AtomicUsize = AtomicUsize::new(0);

/// Starts connector `who` for `config` (the sources, pointed at the emulator).
fn launch(opts: &Opts, who: &str, config: &ServerConfig) -> Result<Running, String> {
    if who == "ceiling" {
        return floor::FloorThread::start(config, Duration::from_millis(10))
            .map(|f| Running::InDriver { _floor: f })
            .map_err(|e| format!("starting the in-driver floor: {e}"));
    }
    let n = RUN_DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vantiq-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    config
        .write_to(&dir)
        .map_err(|e| format!("writing {}: {e}", dir.display()))?;
    let scraper = match who {
        metrics_on::WHO => Some(metrics_on::Scraper::start(
            metrics_on::enable(&dir).map_err(|e| format!("enabling metrics: {e}"))?,
        )),
        _ => None,
    };
    let (program, args): (PathBuf, Vec<PathBuf>) = match who {
        "echo" | metrics_on::WHO => (opts.echo_bin(), vec![]),
        "floor" => (opts.floor_bin(), vec![]),
        "python" => (opts.python(), vec![opts.python_script()]),
        other => return Err(format!("unknown connector {other}")),
    };
    let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&program)
        .args(&args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    Ok(Running::Process {
        child,
        dir,
        scraper,
    })
}

fn server_config(sim: &Sim, sources: Vec<String>) -> ServerConfig {
    ServerConfig {
        target_server: sim.http_url(),
        auth_token: TOKEN.into(),
        sources,
    }
}

/// Waits until every source in `names` is connected with at least the number of
/// handshakes in `min_connections` (1 when absent); returns how long that took.
async fn wait_all(
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

/// A published object.
fn object(i: usize) -> Value {
    json!({"i": i, "payload": "0123456789"})
}

/// Publishes sent per `publish_many` call in the windowed publish figure.
const WINDOW_CHUNK: usize = 1000;
/// Chunks outstanding (published, not all echoed) at most in the windowed figure.
const WINDOW_CHUNKS: usize = 4;
/// A single query's time limit.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A wait fails when no notification arrived for this long.
const STALL: Duration = Duration::from_secs(5);

/// How many notifications the source has received so far.
fn received(sim: &Sim) -> u64 {
    sim.notifications(SRC, 0).last().map_or(0, |n| n.seq + 1)
}

/// Waits until the source has received `target` notifications in all; fails when none
/// arrives for [`STALL`].
async fn wait_progress(sim: &Sim, target: u64) -> Result<(), String> {
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

/// A time figure as its median and its slowest round, in milliseconds.
fn ms_with_max(s: &Summary) -> String {
    format!(
        "{} ms (max {} ms)",
        report::fmt_num(s.median),
        report::fmt_num(s.max)
    )
}

/// The query of the latency and query-rate figures: one row.
fn rows_query() -> Value {
    json!({"op":"rows","count":1})
}

/// Checks that a query load got `n` successful answers with a row each.
fn check_load(report: &QueryLoadReport, n: usize) -> Result<(), String> {
    if report.answered != n as u64 || report.errors != 0 || report.rows != n as u64 {
        return Err(format!(
            "{} of {n} queries answered, {} errors, {} rows",
            report.answered, report.errors, report.rows
        ));
    }
    Ok(())
}

/// A warm-up: a few publishes echoed and a few queries answered.
async fn warm_up(sim: &Sim, total: &AtomicU64) -> Result<(), String> {
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

// ---- the benchmark -----------------------------------------------------------------------

struct Bench {
    opts: Opts,
    figures: Vec<Figure>,
    notes: Vec<String>,
}

fn log(msg: &str) {
    eprintln!("[bench] {msg}");
}

impl Bench {
    fn figure(&mut self, id: &str) -> &mut Figure {
        let i = self
            .figures
            .iter()
            .position(|f| f.id == id)
            .unwrap_or_else(|| panic!("figure {id} not declared"));
        &mut self.figures[i]
    }

    fn record(&mut self, id: &str, who: &str, samples: &[f64], workload: String) {
        if let Some(s) = Summary::of(samples) {
            log(&format!(
                "{id} {who}: median {} (min {}, max {}) [{workload}]",
                report::fmt_num(s.median),
                report::fmt_num(s.min),
                report::fmt_num(s.max)
            ));
            self.figure(id).results.push((who.into(), s, workload));
        }
    }

    fn note(&mut self, id: &str, text: String) {
        log(&format!("note on {id}: {text}"));
        self.figure(id).notes.push(text);
    }

    fn declare(&mut self) {
        let f = |id: &str, title: &str, unit: &str, hib: bool, panel: Panel, group: &str| {
            Figure::new(id, title, unit, hib, panel).group(group)
        };
        self.figures = vec![
            f(
                "publish_echo",
                "publish → notification echo",
                "msg/s",
                true,
                Panel::Throughput,
                "publish echo",
            ),
            f(
                "publish_echo_windowed",
                "publish → notification echo, ≤ 4,000 outstanding",
                "msg/s",
                true,
                Panel::Throughput,
                "publish (windowed)",
            ),
            f(
                "notify",
                "notifications (notify query)",
                "msg/s",
                true,
                Panel::Throughput,
                "notify",
            ),
            f(
                "query_tput",
                "queries, 64 in flight (rows 1)",
                "queries/s",
                true,
                Panel::Throughput,
                "queries ×64",
            ),
            f(
                "latency_p50",
                "query latency p50, sequential (rows 1)",
                "µs",
                false,
                Panel::Latency,
                "p50",
            ),
            f(
                "latency_p99",
                "query latency p99, sequential (rows 1)",
                "µs",
                false,
                Panel::Latency,
                "p99",
            ),
            f(
                "kernel_rtt_p50",
                "kernel floor: TCP round trip p50 (2 processes, blocking sockets)",
                "µs",
                false,
                Panel::None,
                "",
            ),
            f(
                "kernel_rtt_p99",
                "kernel floor: TCP round trip p99 (2 processes, blocking sockets)",
                "µs",
                false,
                Panel::None,
                "",
            ),
            f(
                "sim_publish_only",
                "emulator alone: publishes delivered to a counting reader",
                "msg/s",
                true,
                Panel::None,
                "",
            ),
            f(
                "sim_notify_only",
                "emulator alone: notifications absorbed from a raw writer",
                "msg/s",
                true,
                Panel::None,
                "",
            ),
        ];
        for &n in &self.opts.sizes {
            self.figures.push(f(
                &format!("connect_{n}"),
                &format!("connect time, {n} sources"),
                "ms",
                false,
                Panel::Connect,
                &format!("{n}"),
            ));
        }
        for &n in &self.opts.sizes {
            self.figures.push(f(
                &format!("rss_{n}"),
                &format!("resident memory, {n} idle sources"),
                "MiB",
                false,
                Panel::None,
                "",
            ));
        }
        let big: Vec<usize> = self.opts.sizes.iter().copied().filter(|n| *n > 1).collect();
        for &n in &big {
            self.figures.push(f(
                &format!("rss_per_source_{n}"),
                &format!("memory per additional idle source, {n} sources"),
                "KiB",
                false,
                if n == *big.last().unwrap_or(&0) {
                    Panel::Memory
                } else {
                    Panel::None
                },
                &format!("KiB/source ({n})"),
            ));
        }
        self.figures.push(f(
            "restart",
            "restart: server accepting → 1,000 sources back",
            "ms",
            false,
            Panel::Restart,
            "restart (ms)",
        ));
        self.figures.push(f(
            "restart_from_stop",
            "restart: server stopped → 1,000 sources back",
            "ms",
            false,
            Panel::None,
            "",
        ));
    }

    fn connectors(&self) -> Vec<&'static str> {
        WHO.iter()
            .copied()
            .filter(|w| !(self.opts.skip_python && *w == "python"))
            .collect()
    }

    // ---- single source: throughput and latency ---------------------------------------------

    /// A fresh emulator with the one source, and connector `who` connected to it.
    async fn setup_single(&self, who: &str) -> Result<(Sim, Running), String> {
        let sim = Sim::builder()
            .token(TOKEN)
            .source(SRC, json!({"bench": true}))
            .keep_notifications(1024)
            .start()
            .await
            .map_err(|e| e.to_string())?;
        let mut running = launch(&self.opts, who, &server_config(&sim, vec![SRC.into()]))?;
        if let Err(e) = sim.wait_connected(SRC, Duration::from_secs(30)).await {
            return Err(format!(
                "{who} did not connect: {e}; {:?}",
                running.exited()
            ));
        }
        Ok((sim, running))
    }

    /// Runs `figure` for `who`: `rounds` rounds of `round`, each on the same fresh setup
    /// after a warm-up; a failed round ends the figure with a note.
    async fn single_figure<F, Fut>(&mut self, who: &str, ids: &[&str], workload: String, round: F)
    where
        F: Fn(Sim, Arc<AtomicU64>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<f64>, String>>,
    {
        let (sim, running) = match self.setup_single(who).await {
            Ok(x) => x,
            Err(e) => return self.note(ids[0], e),
        };
        let total = Arc::new(AtomicU64::new(0));
        if let Err(e) = warm_up(&sim, &total).await {
            return self.note(ids[0], format!("{who}: warm-up failed: {e}"));
        }
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); ids.len()];
        for _ in 0..self.opts.rounds {
            match round(sim.clone(), total.clone()).await {
                Ok(values) => {
                    for (i, v) in values.into_iter().enumerate() {
                        samples[i].push(v);
                    }
                }
                Err(e) => {
                    self.note(ids[0], format!("{who}: {e}"));
                    break;
                }
            }
        }
        let violations = sim.violations();
        if !violations.is_empty() {
            self.notes.push(format!(
                "{who} ({}): {} protocol violations recorded by the emulator, first: {:?}",
                ids[0],
                violations.len(),
                violations[0]
            ));
        }
        drop(running);
        if samples[0].len() == self.opts.rounds {
            for (i, id) in ids.iter().enumerate() {
                self.record(id, who, &samples[i], workload.clone());
            }
        }
    }

    async fn single(&mut self, who: &str) {
        let w = Workload::for_who(self.opts.quick, who);

        let n = w.publishes;
        self.single_figure(
            who,
            &["publish_echo"],
            format!("{n} publishes per round, all pushed at once"),
            |sim, total| async move {
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
            who,
            &["publish_echo_windowed"],
            format!(
                "{n} publishes per round, at most {} outstanding",
                WINDOW_CHUNK * WINDOW_CHUNKS
            ),
            |sim, total| async move {
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

        let n = w.notifications;
        self.single_figure(
            who,
            &["notify"],
            format!("notify count {n} per round"),
            |sim, total| async move {
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

        let n = w.latency_queries;
        self.single_figure(
            who,
            &["latency_p50", "latency_p99"],
            format!("{n} sequential queries per round"),
            |sim, _| async move {
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

        let n = w.concurrent_queries;
        self.single_figure(
            who,
            &["query_tput"],
            format!("{n} queries per round, {IN_FLIGHT} in flight"),
            |sim, _| async move {
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

    /// The kernel's floor for a round trip: no connector can answer faster (see
    /// `vantiq_bench::pingpong`).
    async fn kernel_round_trip(&mut self) -> Result<(), String> {
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
    async fn sim_alone(&mut self) -> Result<(), String> {
        let w = Workload::for_who(self.opts.quick, "ceiling");
        let n = w.publishes;
        let mut pub_samples = Vec::new();
        let mut notif_samples = Vec::new();
        for _ in 0..self.opts.rounds {
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
            let reader = tokio::spawn(session.count_frames(n));
            let start = Instant::now();
            sim.publish_many(
                SRC,
                (0..n).map(|i| json!({"i": i, "payload": "0123456789"})),
            )
            .await
            .map_err(|e| e.to_string())?;
            let got = reader.await.map_err(|e| e.to_string())?;
            if got != n {
                return Err(format!("counting reader got {got} of {n}"));
            }
            pub_samples.push(n as f64 / start.elapsed().as_secs_f64());
            drop(sim);

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

    // ---- many sources: connect time and memory ---------------------------------------------

    async fn connect(&mut self) {
        let fd_limit = sys::open_files_limit().unwrap_or(1024) as usize;
        let mut given_up: HashMap<&str, String> = HashMap::new();
        let sizes = self.opts.sizes.clone();
        for &n in &sizes {
            let rounds = if n >= 10_000 {
                self.opts.rounds.min(3)
            } else {
                self.opts.rounds
            };
            for who in self.connectors() {
                let id = format!("connect_{n}");
                if let Some(why) = given_up.get(who) {
                    self.note(&id, format!("{who}: not measured ({why})"));
                    continue;
                }
                if who == "ceiling" && 2 * n + 500 > fd_limit {
                    self.note(
                        &id,
                        format!("ceiling: not measured (driver and client ends in one process need {} files, limit {fd_limit}); the floor process stands for it", 2 * n + 500),
                    );
                    continue;
                }
                if n + 500 > fd_limit {
                    self.note(
                        &id,
                        format!("{who}: not measured (open files limit {fd_limit})"),
                    );
                    continue;
                }
                let limit = if who == "python" {
                    PYTHON_CONNECT_LIMIT
                } else {
                    CONNECT_LIMIT
                };
                let rounds = if who == "python" && n >= 10_000 {
                    1
                } else {
                    rounds
                };
                let mut times = Vec::new();
                let mut rss = Vec::new();
                for _ in 0..rounds {
                    match self.connect_round(who, n, limit).await {
                        Ok((ms, kib)) => {
                            times.push(ms);
                            if let Some(kib) = kib {
                                rss.push(kib);
                            }
                        }
                        Err(e) => {
                            self.note(&id, format!("{who}: {e}"));
                            given_up.insert(who, format!("gave up at {n} sources: {e}"));
                            break;
                        }
                    }
                }
                if given_up.contains_key(who) {
                    continue;
                }
                self.record(
                    &id,
                    who,
                    &times,
                    format!("{n} sources, {} rounds", times.len()),
                );
                let mib: Vec<f64> = rss.iter().map(|k| k / 1024.0).collect();
                self.record(
                    &format!("rss_{n}"),
                    who,
                    &mib,
                    format!("{n} sources, VmRSS after all connected + 1 s idle"),
                );
            }
        }
        // Memory per additional idle source, against the one-source process.
        for &n in sizes.iter().filter(|n| **n > 1) {
            for who in self.connectors() {
                let base = self
                    .figures
                    .iter()
                    .find(|f| f.id == "rss_1")
                    .and_then(|f| f.get(who))
                    .map(|s| s.median);
                let at_n = self
                    .figures
                    .iter()
                    .find(|f| f.id == format!("rss_{n}"))
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

    /// One round: start `who` with `n` sources; the time from process start until the
    /// emulator shows all connected (ms), and the process's VmRSS one second later (KiB).
    async fn connect_round(
        &mut self,
        who: &str,
        n: usize,
        limit: Duration,
    ) -> Result<(f64, Option<f64>), String> {
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let mut builder = Sim::builder().token(TOKEN).keep_notifications(16);
        for (i, name) in names.iter().enumerate() {
            builder = builder.source(name.clone(), json!({"i": i}));
        }
        let sim = builder.start().await.map_err(|e| e.to_string())?;
        let config = server_config(&sim, names.clone());
        let start = Instant::now();
        let mut running = launch(&self.opts, who, &config)?;
        if let Err(e) = wait_all(&sim, &names, None, limit).await {
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

    // ---- restart ---------------------------------------------------------------------------

    async fn restart(&mut self, who: &str) -> Result<(), String> {
        let n = 1000;
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let mut builder = Sim::builder().token(TOKEN).keep_notifications(16);
        for (i, name) in names.iter().enumerate() {
            builder = builder.source(name.clone(), json!({"i": i}));
        }
        let sim = builder.start().await.map_err(|e| e.to_string())?;
        let _running = launch(&self.opts, who, &server_config(&sim, names.clone()))?;
        wait_all(&sim, &names, None, CONNECT_LIMIT)
            .await
            .map_err(|e| format!("{who} did not connect {n} sources: {e}"))?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (mut from_up, mut from_stop) = (Vec::new(), Vec::new());
        for _ in 0..self.opts.rounds {
            let want: HashMap<String, u64> = sim
                .sources()
                .into_iter()
                .map(|s| (s.name, s.connections + 1))
                .collect();
            sim.stop().await;
            let stopped = Instant::now();
            sim.restart().await.map_err(|e| format!("restart: {e}"))?;
            let up = Instant::now();
            wait_all(&sim, &names, Some(&want), Duration::from_secs(60))
                .await
                .map_err(|e| format!("{who} after restart: {e}"))?;
            from_up.push(up.elapsed().as_secs_f64() * 1e3);
            from_stop.push(stopped.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.record(
            "restart",
            who,
            &from_up,
            format!("{n} sources, {} rounds", from_up.len()),
        );
        self.record(
            "restart_from_stop",
            who,
            &from_stop,
            format!("{n} sources, {} rounds", from_stop.len()),
        );
        Ok(())
    }

    // ---- targets -----------------------------------------------------------------------

    fn find(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }

    fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for (id, name) in [
            ("publish_echo", "publish echo"),
            (
                "publish_echo_windowed",
                "publish echo (≤ 4,000 outstanding)",
            ),
            ("notify", "notifications"),
            ("query_tput", "queries (64 in flight)"),
        ] {
            let f = self.find(id);
            let py = f.and_then(|f| f.ratio("python"));
            out.push(Target {
                requirement: format!("{name} throughput ≥ 20× the Python SDK"),
                measured: py.map_or("not measured".into(), |r| format!("{r:.1}×")),
                met: py.map(|r| r >= 20.0),
            });
            let fl = f.and_then(|f| f.ratio("floor"));
            out.push(Target {
                requirement: format!("{name} throughput within 1.5× of the floor"),
                measured: fl.map_or("not measured".into(), |r| {
                    format!("floor is {:.2}× echo", 1.0 / r)
                }),
                met: fl.map(|r| 1.0 / r <= 1.5),
            });
        }
        let p99 = self.find("latency_p99");
        let r = p99.and_then(|f| f.ratio("python"));
        let python_p99 = p99.and_then(|f| f.get("python")).map(|s| s.median);
        let kernel_p99 = self
            .find("kernel_rtt_p99")
            .and_then(|f| f.get("ceiling"))
            .map(|s| s.median);
        let kernel = match (kernel_p99, python_p99) {
            (Some(k), Some(p)) => format!(
                "; the kernel's own round trip: {} µs, {:.3}× Python's",
                report::fmt_num(k),
                k / p
            ),
            _ => String::new(),
        };
        out.push(Target {
            requirement: "query latency p99 ≤ 1/10 of the Python SDK's".into(),
            measured: match (p99.and_then(|f| f.get("echo")), python_p99, r) {
                (Some(e), Some(p), Some(r)) => format!(
                    "{} µs vs {} µs ({:.3}×){kernel}",
                    report::fmt_num(e.median),
                    report::fmt_num(p),
                    r
                ),
                _ => "not measured".into(),
            },
            met: r.map(|r| r <= 0.1),
        });
        let c = self.find("connect_10000").and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "10,000 sources connected within 5 s".into(),
            measured: c.map_or("not measured".into(), ms_with_max),
            met: c.map(|s| s.median <= 5000.0),
        });
        let m = self
            .find("rss_per_source_10000")
            .and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "≤ 20 KiB resident memory per additional idle source (10,000 sources)"
                .into(),
            measured: m.map_or("not measured".into(), |s| format!("{:.1} KiB", s.median)),
            met: m.map(|s| s.median <= 20.0),
        });
        let r = self.find("restart").and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "1,000 sources back within 500 ms of the server accepting again".into(),
            measured: r.map_or("not measured".into(), ms_with_max),
            met: r.map(|s| s.median <= 500.0),
        });
        out
    }
}

fn main() {
    let rt = if std::env::var("BENCH_RT").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    rt.expect("runtime").block_on(run());
}

async fn run() {
    let opts = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vantiq-bench: {e}");
            std::process::exit(2);
        }
    };
    let mut bench = Bench {
        opts: opts.clone(),
        figures: Vec::new(),
        notes: Vec::new(),
    };
    bench.declare();
    for (what, path) in [("echo", opts.echo_bin()), ("floor", opts.floor_bin())] {
        if !path.exists() {
            eprintln!(
                "vantiq-bench: {what} binary {} missing: run bash scripts/bench.sh (it builds it)",
                path.display()
            );
            std::process::exit(2);
        }
    }
    if !opts.skip_python && !opts.python().exists() {
        eprintln!(
            "vantiq-bench: {} missing (bash scripts/setup-python.sh makes it); or pass --skip-python",
            opts.python().display()
        );
        std::process::exit(2);
    }
    let began = Instant::now();
    let machine = sys::machine();
    log(&format!("machine: {machine}"));
    let part = |p: &str| opts.parts.iter().any(|x| x == p);

    if part("single") {
        if let Err(e) = bench.kernel_round_trip().await {
            bench.notes.push(format!("kernel round trip failed: {e}"));
        }
        if let Err(e) = bench.sim_alone().await {
            bench
                .notes
                .push(format!("emulator-alone figures failed: {e}"));
        }
        for who in bench.connectors() {
            log(&format!("single source: {who}"));
            bench.single(who).await;
        }
        log("single source: echo with metrics on");
        bench.single(metrics_on::WHO).await;
        metrics_on::split(&mut bench.figures);
    }
    if part("connect") {
        bench.connect().await;
    }
    if part("restart") {
        for who in bench.connectors() {
            log(&format!("restart: {who}"));
            if let Err(e) = bench.restart(who).await {
                bench.note("restart", format!("{who}: {e}"));
            }
        }
    }
    bench
        .figures
        .retain(|f| !f.results.is_empty() || !f.notes.is_empty());

    let targets = bench.targets();
    let elapsed = began.elapsed().as_secs_f64();
    let table = report::table(&bench.figures);
    println!();
    println!("{table}");
    println!("{}", report::targets_table(&targets));
    for f in &bench.figures {
        for n in &f.notes {
            println!("note ({}): {n}", f.id);
        }
    }
    for n in &bench.notes {
        println!("note: {n}");
    }
    println!("total time: {elapsed:.0} s");

    let subtitle = format!(
        "{} × {}, {} GiB; {} rounds{}; {}",
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or("?"),
        machine["memory_gib"],
        opts.rounds,
        if opts.quick { " (--quick)" } else { "" },
        "bash scripts/bench.sh"
    );
    let doc = json!({
        "command": "bash scripts/bench.sh",
        "args": std::env::args().skip(1).collect::<Vec<_>>(),
        "quick": opts.quick,
        "rounds": opts.rounds,
        "machine": machine,
        "seconds": elapsed,
        "connectors": WHO.iter().map(|w| (w.to_string(), Value::from(report::who_description(w)))).collect::<serde_json::Map<_, _>>(),
        "figures": bench.figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
        "targets": targets.iter().map(Target::to_json).collect::<Vec<_>>(),
        "notes": bench.notes,
        "table_markdown": table,
    });
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("vantiq-bench: {}: {e}", opts.out.display());
        std::process::exit(1);
    }
    let json_path = opts.out.join("latest.json");
    let svg_path = opts.out.join("chart.svg");
    let written = std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .and_then(|_| std::fs::write(&svg_path, report::chart(&bench.figures, &subtitle)));
    match written {
        Ok(()) => println!("wrote {} and {}", json_path.display(), svg_path.display()),
        Err(e) => {
            eprintln!("vantiq-bench: writing results: {e}");
            std::process::exit(1);
        }
    }
}
