//! The `echo` example, run as a separate process exactly as outside suites
//! run it, driven through the emulator: every line of
//! `shared/conformance/echo-contract.md`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{objects, TOKEN, WAIT};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use vantiq_sim::Sim;

/// `target/<profile>/examples/echo`, built by `cargo test` with the tests.
fn echo_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("echo");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --example echo`",
        bin.display()
    );
    bin
}

fn write_config(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("serverConfig")).unwrap();
    std::fs::write(dir.join("serverConfig/server.config"), text).unwrap();
}

fn spawn_echo(dir: &Path, env_token: Option<&str>) -> Child {
    spawn_echo_with(dir, env_token, false)
}

/// `raw`: on the SDK's raw path (`ECHO_RAW=1`), which must keep the same
/// contract.
fn spawn_echo_with(dir: &Path, env_token: Option<&str>, raw: bool) -> Child {
    let mut cmd = Command::new(echo_binary());
    if raw {
        cmd.env("ECHO_RAW", "1");
    } else {
        cmd.env_remove("ECHO_RAW");
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("CONNECTOR_AUTH_TOKEN")
        // The default: no backtrace asked for.
        .env_remove("RUST_BACKTRACE")
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    if let Some(t) = env_token {
        cmd.env("CONNECTOR_AUTH_TOKEN", t);
    }
    cmd.spawn().expect("echo starts")
}

async fn exit_of(mut child: Child) -> (std::process::ExitStatus, String) {
    let mut stderr = child.stderr.take().unwrap();
    let mut text = String::new();
    let status = tokio::time::timeout(WAIT, async {
        let (status, _) = tokio::join!(child.wait(), stderr.read_to_string(&mut text));
        status.unwrap()
    })
    .await
    .expect("echo exits");
    (status, text)
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// An emulator with the one source `echo`, configured with `config`.
async fn echo_sim(config: Value) -> Sim {
    Sim::builder()
        .token(TOKEN)
        .source("echo", config)
        .start()
        .await
        .unwrap()
}

async fn q(sim: &Sim, params: Value) -> vantiq_sim::QueryOutcome {
    sim.query("echo", params, WAIT).await.unwrap()
}

#[tokio::test]
async fn echo_follows_the_contract() {
    follows_the_contract(false).await;
}

#[tokio::test]
async fn echo_on_the_raw_path_follows_the_contract() {
    follows_the_contract(true).await;
}

async fn follows_the_contract(raw: bool) {
    let sim = echo_sim(json!({"greeting": "hi"})).await;
    let dir = tempfile::tempdir().unwrap();
    // The token comes from the environment here, as in Kubernetes.
    write_config(
        dir.path(),
        &format!("targetServer={}\nsources=echo\n", sim.http_url()),
    );
    let child = spawn_echo_with(dir.path(), Some(TOKEN), raw);
    sim.wait_connected("echo", WAIT).await.unwrap();

    // Connect: it keeps the configuration.
    let out = q(&sim, json!({"op": "config"})).await;
    assert_eq!(
        (out.status, out.rows.clone()),
        (200, vec![json!({"greeting": "hi"})])
    );

    // Publish: echoed as notifications, exactly and in order.
    let published: Vec<Value> = (0..50)
        .map(|i| json!({"n": i, "nested": {"list": [i, "x"]}}))
        .collect();
    for p in &published {
        sim.publish("echo", p.clone()).await.unwrap();
    }
    let got = sim.wait_notifications("echo", 50, WAIT).await.unwrap();
    assert_eq!(objects(&got), published);
    let mut seen = 50u64;

    // rows
    let out = q(&sim, json!({"op": "rows", "count": 0})).await;
    assert_eq!(out.status, 204);
    assert!(out.frames[0].get("body").is_none() || out.frames[0]["body"].is_null());
    let out = q(&sim, json!({"op": "rows", "count": 5})).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(
        out.rows,
        (0..5).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    let out = q(&sim, json!({"op": "rows", "count": 10, "chunk": 3})).await;
    let statuses: Vec<_> = out
        .frames
        .iter()
        .map(|f| f["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [100, 100, 100, 200]);
    let sizes: Vec<_> = out
        .frames
        .iter()
        .map(|f| f["body"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert_eq!(
        out.rows,
        (0..10).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    let out = q(&sim, json!({"op": "rows", "count": 0, "chunk": 4})).await;
    assert_eq!(out.status, 204);

    // fail
    let out = q(&sim, json!({"op": "fail", "reason": "because"})).await;
    assert!(out.status >= 400);
    assert_eq!(
        out.error.unwrap(),
        json!({"messageCode": "echo.failed", "messageTemplate": "Failure requested: {0}", "parameters": ["because"]})
    );

    // sleep: other queries and publishes are served meanwhile.
    let sleeper = {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.query("echo", json!({"op": "sleep", "ms": 400}), WAIT)
                .await
        })
    };
    let out = q(&sim, json!({"op": "rows", "count": 1})).await;
    assert_eq!(out.rows, vec![json!({"i": 0})]);
    assert!(
        !sleeper.is_finished(),
        "a fast query was held up by a sleeping one"
    );
    let out = sleeper.await.unwrap().unwrap();
    assert_eq!(out.rows, vec![json!({"slept": 400})]);

    // notify: N notifications, then the answer.
    let out = q(&sim, json!({"op": "notify", "count": 20})).await;
    assert_eq!(out.rows, vec![json!({"sent": 20})]);
    let got = sim.notifications("echo", seen);
    assert_eq!(
        objects(&got),
        (0..20).map(|i| json!({"seq": i})).collect::<Vec<_>>(),
        "notifications before the answer"
    );
    seen += 20;

    // stream: answered at once, notifications follow on schedule.
    let out = q(&sim, json!({"op": "stream", "count": 10, "every_ms": 5})).await;
    assert_eq!(out.rows, vec![json!({"streaming": 10})]);
    let got = sim
        .wait_notifications("echo", (seen + 10) as usize, WAIT)
        .await
        .unwrap();
    assert_eq!(
        objects(&got[seen as usize..]),
        (0..10).map(|i| json!({"stream": i})).collect::<Vec<_>>()
    );

    // panic and drop: the SDK answers with an error and goes on serving.
    for op in ["panic", "drop"] {
        let out = q(&sim, json!({"op": op})).await;
        assert!(out.status >= 400, "{op}: {out:?}");
    }
    // unknown op, or none
    let out = q(&sim, json!({"op": "teleport"})).await;
    assert_eq!(out.error.as_ref().unwrap()["messageCode"], "echo.unknownOp");
    assert_eq!(
        out.error.as_ref().unwrap()["parameters"],
        json!(["teleport"])
    );
    let out = q(&sim, json!({})).await;
    assert_eq!(out.error.as_ref().unwrap()["messageCode"], "echo.unknownOp");
    assert_eq!(out.error.as_ref().unwrap()["parameters"], json!([null]));

    // A reconnect replaces the configuration; same reconnect secret.
    sim.set_config("echo", json!({"greeting": "hello again"}))
        .await
        .unwrap();
    sim.wait_connections("echo", 2, WAIT).await.unwrap();
    let out = q(&sim, json!({"op": "config"})).await;
    assert_eq!(out.rows, vec![json!({"greeting": "hello again"})]);
    assert_eq!(
        sim.source_status("echo").unwrap().reconnect_secrets.len(),
        1
    );
    assert_eq!(sim.source_status("echo").unwrap().connections, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());

    // SIGTERM: closes and exits 0 within 2 seconds.
    let started = Instant::now();
    signal(&child, "-TERM");
    let (status, stderr) = exit_of(child).await;
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    sim.wait_disconnected("echo", WAIT).await.unwrap();
    assert!(!stderr.contains(TOKEN), "the token leaked into the log");
    // The deliberate panic is one line of the SDK's, with where it happened;
    // the standard panic hook's report does not appear.
    let panic_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("panic")).collect();
    assert_eq!(panic_lines.len(), 1, "{panic_lines:#?}");
    assert!(
        panic_lines[0].contains("handler panicked"),
        "{}",
        panic_lines[0]
    );
    assert!(
        panic_lines[0].contains("echo_handler.rs"),
        "{}",
        panic_lines[0]
    );
    assert!(!stderr.contains("thread '"), "{stderr}");
    // Colours only on a terminal: this stderr is a pipe.
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in a pipe");
}

#[tokio::test]
async fn echo_exits_0_on_sigint() {
    let sim = echo_sim(json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "targetServer = {}\nauthToken : {TOKEN}\nsources = echo\n",
            sim.http_url()
        ),
    );
    let child = spawn_echo(dir.path(), None);
    sim.wait_connected("echo", WAIT).await.unwrap();
    signal(&child, "-INT");
    let (status, _) = exit_of(child).await;
    assert!(status.success());
}

#[tokio::test]
async fn echo_serves_every_source_listed() {
    let sim = Sim::builder()
        .token(TOKEN)
        .source("a", json!({"who": "a"}))
        .source("b", json!({"who": "b"}))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // server.config in the working directory itself is the second place looked at.
    std::fs::write(
        dir.path().join("server.config"),
        format!(
            "targetServer={}\nauthToken={TOKEN}\nsources= a , b\n",
            sim.http_url()
        ),
    )
    .unwrap();
    let child = spawn_echo(dir.path(), None);
    for s in ["a", "b"] {
        sim.wait_connected(s, WAIT).await.unwrap();
        let out = sim.query(s, json!({"op": "config"}), WAIT).await.unwrap();
        assert_eq!(out.rows, vec![json!({"who": s})]);
    }
    signal(&child, "-TERM");
    assert!(exit_of(child).await.0.success());
}

#[tokio::test]
async fn echo_exits_2_on_a_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // No server.config at all.
    let (status, stderr) = exit_of(spawn_echo(dir.path(), Some(TOKEN))).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("serverConfig/server.config"), "{stderr}");
    // No targetServer.
    write_config(dir.path(), "sources=echo\nauthToken=x\n");
    let (status, stderr) = exit_of(spawn_echo(dir.path(), None)).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("targetServer"), "{stderr}");
    // No sources.
    write_config(dir.path(), "targetServer=http://127.0.0.1:9\nauthToken=x\n");
    let (status, stderr) = exit_of(spawn_echo(dir.path(), None)).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("sources"), "{stderr}");
}

#[tokio::test]
async fn echo_stops_on_a_rejected_token() {
    let sim = echo_sim(json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "targetServer={}\nauthToken=not-the-token-4455\nsources=echo\n",
            sim.http_url()
        ),
    );
    let started = Instant::now();
    let (status, stderr) = exit_of(spawn_echo(dir.path(), None)).await;
    assert!(!status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.to_lowercase().contains("authentication failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-token-4455"),
        "the token leaked: {stderr}"
    );
    assert_eq!(
        sim.auth_failures(),
        1,
        "a rejected token must not be retried"
    );
}
