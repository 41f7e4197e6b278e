//! The columns of the benchmark and how each is started: every connector is a child
//! process in a fresh directory holding its `server.config`; the driver's ceiling is the
//! trivial client (`floor --trivial`, a process too) in the single-source figures and the
//! floor's code on a thread of the driver in the others.
//!
//! [`columns`] is the one list of what is measured. To add a column, add a
//! [`Connector`] there (see the module docs of [`crate::driver`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vantiq_connector_sdk::config::ServerConfig;

use super::opts::Opts;
use crate::report::Column;
use crate::{floor, metrics_on};

/// How a column's connector runs.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A program started in a fresh directory with `serverConfig/server.config`.
    Process {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables.
        env: Vec<(String, String)>,
    },
    /// The driver's ceiling: in the single-source figures the trivial client (`program
    /// --trivial`, its own process: [`crate::trivial`]); with many sources the floor's code
    /// on a thread of the driver.
    Ceiling {
        /// The program of the trivial client (the floor binary).
        trivial: PathBuf,
    },
}

/// One column: what the table shows, how it is started, and how much work it gets.
#[derive(Debug, Clone)]
pub struct Connector {
    /// The table's column.
    pub column: Column,
    /// How it runs.
    pub launch: Launch,
    /// A slow connector (the Python SDK): a tenth of the messages per round (a twentieth
    /// of the concurrent queries), one round at 10,000 sources.
    pub slow: bool,
    /// A build of this SDK's echo (the current one, a baseline): also measured in the
    /// figures that check the SDK's own bounds (the stalled stream).
    pub echo_build: bool,
    /// Measured only in the single-source figures (not with many sources, nor at a
    /// restart).
    pub single_only: bool,
    /// Started with its metrics endpoint on and scraped while it runs (see
    /// [`crate::metrics_on`]).
    pub metrics: bool,
}

impl Connector {
    /// The name results are recorded under.
    pub fn name(&self) -> &str {
        &self.column.name
    }

    /// The program it runs, when it is a process.
    pub fn program(&self) -> Option<&PathBuf> {
        match &self.launch {
            Launch::Process { program, .. } => Some(program),
            Launch::Ceiling { .. } => None,
        }
    }
}

fn process(program: PathBuf, args: Vec<String>) -> Launch {
    Launch::Process {
        program,
        args,
        env: Vec::new(),
    }
}

/// The columns, in table order: the current echo (and the same with metrics on, not in
/// the table), the baselines (other builds' echo, in the order given), the Python SDK,
/// the floor, the parsing floor and the driver's ceiling.
pub fn columns(opts: &Opts) -> Vec<Connector> {
    let mut out = vec![Connector {
        column: Column::new(
            "echo",
            "echo (Rust SDK)",
            "Rust SDK echo",
            "the Rust SDK's echo example (target/release/examples/echo), its own process",
        ),
        launch: process(opts.echo_bin(), vec![]),
        slow: false,
        echo_build: true,
        single_only: false,
        metrics: false,
    }];
    // The same echo on the SDK's raw path (issue 17: publishes as text, notifications
    // from pre-serialised text), judged against the splicing floor.
    out.push(Connector {
        column: Column::new(
            "echo_raw",
            "echo (raw)",
            "Rust SDK echo, raw path",
            "the echo example with ECHO_RAW=1: publishes echoed as their text (on_publish_raw), notify from pre-serialised text, its own process",
        )
        .with_ratio(),
        launch: Launch::Process {
            program: opts.echo_bin(),
            args: vec![],
            env: vec![("ECHO_RAW".into(), "1".into())],
        },
        slow: false,
        echo_build: false,
        single_only: true,
        metrics: false,
    });
    // The same echo with its metrics endpoint on, scraped every second: measured in the
    // single-source figures, then moved into figures of their own by
    // `metrics_on::split` (its column is not in the table).
    out.push(Connector {
        column: Column::new(
            metrics_on::WHO,
            "echo (metrics on)",
            "Rust SDK echo, metrics on",
            "the echo example with metricsPort set and /metrics scraped every second, its own process",
        ),
        launch: process(opts.echo_bin(), vec![]),
        slow: false,
        echo_build: false,
        single_only: true,
        metrics: true,
    });
    for (name, program) in &opts.baselines {
        out.push(Connector {
            column: Column::new(
                name,
                &format!("echo@{name}"),
                &format!("echo@{name}"),
                &format!(
                    "the echo example of another build ({}), its own process",
                    program.display()
                ),
            )
            .with_ratio(),
            launch: process(program.clone(), vec![]),
            slow: false,
            echo_build: true,
            single_only: false,
            metrics: false,
        });
    }
    if !opts.skip_python {
        out.push(Connector {
            column: Column::new(
                "python",
                "python SDK",
                "Python SDK echo",
                "the same echo on the official Python SDK (vantiqconnectorsdk 1.3.7), its own process",
            )
            .with_ratio(),
            launch: process(
                opts.python(),
                vec![opts.python_script().display().to_string()],
            ),
            slow: true,
            echo_build: false,
            single_only: false,
            metrics: false,
        });
        // The same Python file on this SDK's Python package (python/): only its
        // imports changed.
        if let Ok(script) = opts.python_script_on_our_package() {
            out.push(Connector {
                column: Column::new(
                    "python_rust",
                    "python on this SDK",
                    "Python echo on this SDK",
                    "the same Python echo file, imports changed to vantiq_connector_sdk (python/, on this SDK's core), its own process",
                )
                .with_ratio(),
                launch: process(opts.python(), vec![script.display().to_string()]),
                slow: true,
                echo_build: false,
                single_only: false,
                metrics: false,
            });
            for (name, python) in &opts.python_baselines {
                out.push(Connector {
                    column: Column::new(
                        &format!("python_rust@{name}"),
                        &format!("python on this SDK@{name}"),
                        &format!("Python echo on this SDK@{name}"),
                        &format!(
                            "the same Python echo on another build of the package ({}), its own process",
                            python.display()
                        ),
                    )
                    .with_ratio(),
                    launch: process(python.clone(), vec![script.display().to_string()]),
                    slow: true,
                    echo_build: false,
                    single_only: false,
                    metrics: false,
                });
            }
        }
    }
    out.push(Connector {
        column: Column::new(
            "floor",
            "floor",
            "bare floor client",
            "bare tokio-tungstenite client, no SDK logic (target/release/floor), its own process",
        )
        .with_ratio(),
        launch: process(opts.floor_bin(), vec![]),
        slow: false,
        echo_build: false,
        single_only: false,
        metrics: false,
    });
    out.push(Connector {
        column: Column::new(
            "floor_parse",
            "floor (parsing)",
            "parsing floor",
            "the floor echoing each publish through a JSON tree (target/release/floor --parse): the least an SDK giving handlers a tree does",
        )
        .with_ratio(),
        launch: process(opts.floor_bin(), vec!["--parse".into()]),
        slow: false,
        echo_build: false,
        single_only: false,
        metrics: false,
    });
    out.push(Connector {
        column: Column::new(
            "ceiling",
            "driver ceiling",
            "driver ceiling",
            "the driver's own ceiling: a trivial client (floor --trivial: framing only, made frames) in its own process for one source; the floor's code inside the driver for many; or a one-way raw client",
        ),
        launch: Launch::Ceiling {
            trivial: opts.floor_bin(),
        },
        slow: false,
        echo_build: false,
        single_only: false,
        metrics: false,
    });
    out
}

/// A running connector: a child process in its own directory, or the floor's code run
/// inside the driver (the ceiling). Stopped when dropped.
pub enum Running {
    /// A child process and its directory (removed when dropped unless `BENCH_KEEP` is set).
    Process {
        /// The process.
        child: Child,
        /// Its working directory.
        dir: PathBuf,
        /// The scraper of its `/metrics`, for a column with [`Connector::metrics`].
        scraper: Option<metrics_on::Scraper>,
    },
    /// The floor's code on a thread of the driver; dropping the handle stops it.
    InDriver {
        /// The thread.
        _floor: floor::FloorThread,
    },
}

impl Running {
    /// The process id, for a process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Running::Process { child, .. } => Some(child.id()),
            Running::InDriver { .. } => None,
        }
    }

    /// Whether the process has exited (and how, with the end of its stderr).
    pub fn exited(&mut self) -> Option<String> {
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
                if let Some(scraper) = scraper.take() {
                    let ok = scraper.ok.load(Ordering::Relaxed);
                    super::log(&format!("/metrics scrapes answered with 200: {ok}"));
                }
                stop_gracefully(child);
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

/// With `BENCH_STOP_GRACE_MS=N`, a connector is first asked to stop with SIGTERM and
/// given N ms to exit before it is killed: a profiler it runs under (`valgrind
/// --tool=callgrind` through a wrapper script given as the program) then writes its
/// output. Without it, connectors are killed at once, as before.
fn stop_gracefully(child: &mut Child) {
    let Some(grace) = std::env::var("BENCH_STOP_GRACE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    if !matches!(sent, Ok(s) if s.success()) {
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(grace);
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static RUN_DIRS: AtomicUsize = AtomicUsize::new(0);

/// Starts `connector` for a single-source figure: as [`launch`], but the ceiling is the
/// trivial client in its own process.
pub fn launch_single(connector: &Connector, config: &ServerConfig) -> Result<Running, String> {
    match &connector.launch {
        Launch::Ceiling { trivial } => {
            let client = Connector {
                launch: process(trivial.clone(), vec!["--trivial".into()]),
                ..connector.clone()
            };
            launch(&client, config)
        }
        Launch::Process { .. } => launch(connector, config),
    }
}

/// Starts `connector` for `config` (the sources, pointed at the emulator).
pub fn launch(connector: &Connector, config: &ServerConfig) -> Result<Running, String> {
    let (program, args, env) = match &connector.launch {
        Launch::Ceiling { .. } => {
            return floor::FloorThread::start(config, Duration::from_millis(10))
                .map(|f| Running::InDriver { _floor: f })
                .map_err(|e| format!("starting the in-driver floor: {e}"));
        }
        Launch::Process { program, args, env } => (program, args, env),
    };
    let n = RUN_DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vantiq-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::config::write_to(config, &dir).map_err(|e| format!("writing {}: {e}", dir.display()))?;
    let scraper = if connector.metrics {
        let port = metrics_on::enable(&dir).map_err(|e| format!("enabling metrics: {e}"))?;
        Some(metrics_on::Scraper::start(port))
    } else {
        None
    };
    let stderr = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
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
