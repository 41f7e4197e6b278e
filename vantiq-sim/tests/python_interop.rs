//! The emulator against the official Vantiq Python SDK (`vantiqconnectorsdk`), unchanged:
//! `tests/python/echo_connector.py` is a connector written on it. The same file, with
//! only its imports changed to `vantiq_connector_sdk` (this repository's Python package,
//! `python/`), runs the same scenario on the Rust core.
//!
//! Needs the virtual environment made by `scripts/setup-python.sh` (or a Python with both
//! packages named by the `VANTIQ_PY` environment variable). Without it the tests fail,
//! saying so.

use futures_util::FutureExt;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use vantiq_sim::client::Client;
use vantiq_sim::Sim;

/// Python can be slow to start; the SDK backs off between attempts.
const WAIT: Duration = Duration::from_secs(30);

fn python() -> PathBuf {
    let path = match std::env::var_os("VANTIQ_PY") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    };
    assert!(
        path.exists(),
        "no Python with the Vantiq SDK at {}: run scripts/setup-python.sh (from the \
         repository root) first, or set VANTIQ_PY to a Python that has vantiqconnectorsdk",
        path.display()
    );
    path
}

/// The connector process, killed when dropped.
struct Connector {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// Which package the echo connector runs on.
#[derive(Clone, Copy)]
enum Package {
    /// The official `vantiqconnectorsdk`: the file as it is.
    Official,
    /// This repository's `vantiq_connector_sdk`: the file with its two imports changed.
    Ours,
}

fn echo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/echo_connector.py")
}

/// The echo connector's text with `vantiqconnectorsdk` imported as `vantiq_connector_sdk`,
/// and nothing else changed (the migration the README promises).
fn echo_script_on_ours() -> String {
    let text = std::fs::read_to_string(echo_script()).unwrap();
    let imports = [
        (
            "import vantiqconnectorsdk as sdk\n",
            "import vantiq_connector_sdk as sdk\n",
        ),
        (
            "from vantiqconnectorsdk import ",
            "from vantiq_connector_sdk import ",
        ),
    ];
    let mut changed = text.clone();
    for (from, to) in imports {
        assert_eq!(
            changed.matches(from).count(),
            1,
            "{from:?} in echo_connector.py"
        );
        changed = changed.replace(from, to);
    }
    assert!(
        !changed.contains("\nimport vantiqconnectorsdk")
            && !changed.contains("from vantiqconnectorsdk")
    );
    changed
}

impl Connector {
    /// Starts the echo connector on `package`, in a fresh directory holding
    /// serverConfig/server.config.
    fn start_on(package: Package, server_config: &str) -> Connector {
        let python = python();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("serverConfig")).unwrap();
        std::fs::write(dir.path().join("serverConfig/server.config"), server_config).unwrap();
        let script = match package {
            Package::Official => echo_script(),
            Package::Ours => {
                let path = dir.path().join("echo_connector.py");
                std::fs::write(&path, echo_script_on_ours()).unwrap();
                path
            }
        };
        let log = std::fs::File::create(dir.path().join("connector.log")).unwrap();
        let child = Command::new(python)
            .arg(script)
            .current_dir(dir.path())
            .env_remove("CONNECTOR_AUTH_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the Python connector");
        Connector {
            child: Some(child),
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("connector.log")).unwrap_or_default()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `steps`; if they fail, shows the connector's log before failing.
async fn with_log<F: std::future::Future<Output = ()>>(connector: &Connector, steps: F) {
    if let Err(panic) = AssertUnwindSafe(steps).catch_unwind().await {
        eprintln!("---- Python connector log ----\n{}\n----", connector.log());
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn the_official_python_sdk_works_against_the_emulator() {
    echo_scenario(Package::Official).await;
}

#[tokio::test]
async fn the_same_connector_runs_on_vantiq_connector_sdk() {
    echo_scenario(Package::Ours).await;
}

/// The echo connector on `package`: configuration, publishes, queries, a new
/// configuration and a drop.
async fn echo_scenario(package: Package) {
    let sim = Sim::builder()
        .token("py-token")
        .source("py1", json!({"greeting": "hello"}))
        .source("py2", json!({"n": 2}))
        .start()
        .await
        .unwrap();
    let connector = Connector::start_on(
        package,
        &format!(
            "targetServer = {}\nauthToken = py-token\nsources = py1, py2\n",
            sim.http_url()
        ),
    );
    let client = Client::new(&sim.http_url()).unwrap();

    with_log(&connector, async {
        // Authenticates, connects both sources, receives their configurations.
        sim.wait_connected("py1", WAIT).await.unwrap();
        sim.wait_connected("py2", WAIT).await.unwrap();
        let sources = client.sources().await.unwrap();
        assert!(
            sources.iter().all(|s| s.connected && s.connections == 1),
            "{sources:?}"
        );
        let config = client
            .query("py1", &json!({"op": "config"}), Some(10_000))
            .await
            .unwrap();
        assert_eq!(config.rows, vec![json!({"greeting": "hello"})]);

        // Publishes come back as notifications, in order.
        for i in 0..3 {
            client
                .publish("py1", &json!({"i": i, "text": "é"}))
                .await
                .unwrap();
        }
        let mut echoed = Vec::new();
        while echoed.len() < 3 {
            let since = echoed.len() as u64;
            echoed.extend(
                client
                    .notifications("py1", since, Some(10_000))
                    .await
                    .unwrap(),
            );
        }
        let objects: Vec<Value> = echoed.iter().map(|n| n.object.clone()).collect();
        assert_eq!(
            objects,
            (0..3)
                .map(|i| json!({"i": i, "text": "é"}))
                .collect::<Vec<_>>()
        );

        // A query answered in partial chunks, then the final one.
        let rows = client
            .query(
                "py1",
                &json!({"op": "rows", "count": 5, "chunk": 2}),
                Some(10_000),
            )
            .await
            .unwrap();
        assert_eq!(rows.status, 200);
        assert_eq!(
            rows.rows,
            (0..5).map(|i| json!({"i": i})).collect::<Vec<_>>()
        );
        let statuses: Vec<&Value> = rows.frames.iter().map(|f| &f["status"]).collect();
        assert_eq!(statuses, [&json!(100), &json!(100), &json!(200)]);
        let empty = client
            .query("py1", &json!({"op": "rows", "count": 0}), Some(10_000))
            .await
            .unwrap();
        assert_eq!((empty.status, empty.rows.len()), (204, 0));

        // A query error.
        let failed = client
            .query(
                "py1",
                &json!({"op": "fail", "reason": "asked"}),
                Some(10_000),
            )
            .await
            .unwrap();
        assert!(failed.status >= 400, "{failed:?}");
        let error = failed.error.unwrap();
        assert_eq!(error["messageCode"], "echo.failed");
        assert_eq!(error["parameters"], json!(["asked"]));

        // A new configuration: reconnectRequired; the SDK reconnects (new socket) with
        // the same reconnect secret and gets the new configuration.
        client
            .set_config("py1", &json!({"greeting": "bonjour"}))
            .await
            .unwrap();
        sim.wait_connections("py1", 2, WAIT).await.unwrap();
        let config = client
            .query("py1", &json!({"op": "config"}), Some(10_000))
            .await
            .unwrap();
        assert_eq!(config.rows, vec![json!({"greeting": "bonjour"})]);
        let status = sim.source_status("py1").unwrap();
        assert_eq!(status.reconnect_secrets.len(), 1, "{status:?}");
        if let Package::Official = package {
            // The official SDK's secret is the source name, `_` and a UUID; the Rust
            // core's is 128 random bits (see the README's list of differences).
            assert!(
                status.reconnect_secrets[0].starts_with("py1_"),
                "{status:?}"
            );
        }

        // After an abrupt drop it comes back too, still with the same secret.
        client.drop_connection("py1").await.unwrap();
        sim.wait_connections("py1", 3, WAIT).await.unwrap();
        assert_eq!(sim.source_status("py1").unwrap().reconnect_secrets.len(), 1);
        client
            .publish("py1", &json!({"after": "drop"}))
            .await
            .unwrap();
        sim.wait_notifications("py1", 4, WAIT).await.unwrap();

        assert_eq!(sim.source_status("py2").unwrap().connections, 1);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(sim.auth_failures(), 0);
    })
    .await;
}

#[tokio::test]
async fn the_python_sdk_stops_on_a_rejected_token() {
    stops_on_a_rejected_token(Package::Official).await;
}

#[tokio::test]
async fn vantiq_connector_sdk_stops_on_a_rejected_token() {
    stops_on_a_rejected_token(Package::Ours).await;
}

async fn stops_on_a_rejected_token(package: Package) {
    let sim = Sim::builder()
        .token("right")
        .source("py1", json!({}))
        .start()
        .await
        .unwrap();
    let mut connector = Connector::start_on(
        package,
        &format!(
            "targetServer = {}\nauthToken = wrong\nsources = py1\n",
            sim.http_url()
        ),
    );
    let mut child = connector.child.take().unwrap();
    let pid = child.id().to_string();
    let exit = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || child.wait().unwrap()),
    )
    .await;
    let log = connector.log();
    let Ok(exit) = exit else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the connector did not stop on a rejected token:\n{log}");
    };
    let exit = exit.unwrap();
    assert!(!exit.success(), "{log}");
    assert!(sim.auth_failures() >= 1);
    assert!(!sim.source_status("py1").unwrap().connected);
}
