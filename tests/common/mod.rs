//! Shared set-up of the integration tests: an emulator on loopback and a
//! connector set pointed at it.
#![allow(dead_code)]

pub mod prom;

pub mod network;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use vantiq_connector_sdk::{ConnectorSet, Error, ServerConfig, Settings};
use vantiq_sim::Sim;

/// Generous bound for event waits: a passing test never gets near it.
pub const WAIT: Duration = Duration::from_secs(20);
pub const TOKEN: &str = "test-token-Zx81";

pub async fn sim(sources: &[&str]) -> Sim {
    let mut b = Sim::builder().token(TOKEN).user("alice", "wonder-pass-77");
    for s in sources {
        b = b.source(*s, serde_json::json!({"name": s, "version": 1}));
    }
    b.start().await.expect("emulator starts")
}

/// Settings that retry quickly, so tests do not wait on backoff.
pub fn fast_settings() -> Settings {
    Settings::builder()
        .initial_backoff(Duration::from_millis(20))
        .max_backoff(Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(5))
        .build()
}

pub fn config_for(sim: &Sim, sources: &[&str]) -> ServerConfig {
    ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .sources(sources.iter().copied())
        .tcp_probe_port(0)
        .build()
        .expect("valid config")
}

/// Asks the emulator a query on a task of its own (for tests that do something
/// else while the connector's handler works on it); the answer comes from the handle.
pub fn query_in_background(
    sim: &Arc<Sim>,
    source: &str,
    params: Value,
) -> tokio::task::JoinHandle<Result<vantiq_sim::QueryOutcome, vantiq_sim::SimError>> {
    let (sim, source) = (sim.clone(), source.to_owned());
    tokio::spawn(async move { sim.query(&source, params, WAIT).await })
}

/// A running connector set.
pub struct Running {
    pub set: ConnectorSet,
    pub task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Running {
    pub async fn stop(self) -> Result<(), Error> {
        self.set.close().await;
        self.task.await.expect("run task")
    }
}

pub fn start(set: ConnectorSet) -> Running {
    let s = set.clone();
    let task = tokio::spawn(async move { s.run().await });
    Running { set, task }
}

/// Runs a connector set for `config` until it fails (bounded by [`WAIT`]);
/// for tests of the errors that end `run`.
pub async fn run_to_error(config: ServerConfig) -> Error {
    let set = ConnectorSet::builder(config)
        .settings(fast_settings())
        .build()
        .expect("set");
    tokio::time::timeout(WAIT, set.run())
        .await
        .expect("run returns")
        .expect_err("run fails")
}

/// Records what handlers saw, in order, and lets a test await each record.
#[derive(Clone)]
pub struct Recorder {
    pub log: Arc<Mutex<Vec<String>>>,
    tx: mpsc::UnboundedSender<String>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>,
}

impl Recorder {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Recorder {
            log: Default::default(),
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
        }
    }

    pub fn record(&self, entry: impl Into<String>) {
        let entry = entry.into();
        self.log.lock().unwrap().push(entry.clone());
        let _ = self.tx.send(entry);
    }

    /// Waits for the next entry that starts with `prefix` (others are skipped).
    pub async fn expect(&self, prefix: &str) -> String {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(WAIT, async {
            loop {
                let e = rx.recv().await.expect("recorder open");
                if e.starts_with(prefix) {
                    return e;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no `{prefix}` entry; log: {:?}", self.log.lock().unwrap()))
    }

    pub fn entries(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

pub fn objects(n: &[vantiq_sim::Notification]) -> Vec<Value> {
    n.iter().map(|n| n.object.clone()).collect()
}

/// A log writer that keeps everything written, for tests that read the logs.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
