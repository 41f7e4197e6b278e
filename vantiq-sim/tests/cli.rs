//! The `vantiq-sim` binary: `serve`, and the client subcommands against it.

mod common;

use common::{Conn, WAIT};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_vantiq-sim");

/// A running `vantiq-sim serve`, killed when dropped.
struct Server {
    child: Child,
    http: String,
    ws: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` with these arguments on a free port; waits for its "listening" line.
fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vantiq-sim serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the listening line");
    // "vantiq-sim listening on http://127.0.0.1:PORT (websocket ws://...)"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..3], ["vantiq-sim", "listening", "on"], "{line}");
    let http = words[3].to_owned();
    let ws = words[5].trim_end_matches(')').to_owned();
    assert!(ws.ends_with("/api/v1/wsock/websocket"), "{line}");
    Server { child, http, ws }
}

/// Runs a client subcommand against `server` (off the async runtime: it blocks).
async fn cli(server: &Server, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).args(["--server", &server.http]);
    tokio::task::spawn_blocking(move || command.output().expect("run vantiq-sim"))
        .await
        .unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON per line"))
        .collect()
}

#[tokio::test]
async fn client_subcommands_drive_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let src_config = dir.path().join("src.json");
    std::fs::write(&src_config, r#"{"from": "file"}"#).unwrap();
    let config_file = dir.path().join("sim.json");
    std::fs::write(
        &config_file,
        r#"{"tokens":["ft"],"users":[{"username":"u","password":"p"}],"sources":{"cfg":{"c":1}},"acks":true}"#,
    )
    .unwrap();
    let src_arg = format!("src={}", src_config.display());
    let server = serve(&[
        "--token",
        "t",
        "--source",
        &src_arg,
        "--source",
        "plain",
        "--config",
        config_file.to_str().unwrap(),
    ]);

    let sources = lines(&cli(&server, &["sources"]).await);
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cfg", "plain", "src"]);
    assert_eq!(sources[1]["config"], json!({}));

    // Tokens from the flag and from the file both work.
    let (_cfg, config) = Conn::handshake(&server.ws, "ft", "cfg", "s").await;
    assert_eq!(config, json!({"c": 1}));
    let (mut c, config) = Conn::handshake(&server.ws, "t", "src", "s").await;
    assert_eq!(config, json!({"from": "file"}));

    let out = cli(&server, &["publish", "src", r#"{"p":1}"#]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.recv().await["object"], json!({"p": 1}));

    c.notify("src", json!({"n": 0})).await;
    c.notify("src", json!({"n": 1})).await;
    assert_eq!(c.recv().await, json!({"status": 200}));
    assert_eq!(c.recv().await, json!({"status": 200}));
    let notes = lines(&cli(&server, &["notifications", "src", "--since", "1"]).await);
    assert_eq!(notes, vec![json!({"seq": 1, "object": {"n": 1}})]);

    // query: rows one per line.
    let query = spawn_cli(
        &server,
        &["query", "src", r#"{"op":"rows"}"#, "--timeout-ms", "10000"],
    );
    let q = c.recv().await;
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(q["object"], json!({"op": "rows"}));
    c.answer(&addr, 100, Some(json!([{"i": 0}]))).await;
    c.answer(&addr, 200, Some(json!([{"i": 1}]))).await;
    assert_eq!(
        lines(&query.await.unwrap()),
        vec![json!({"i": 0}), json!({"i": 1})]
    );

    // An error answer: printed, exit 1.
    let query = spawn_cli(&server, &["query", "src", r#"{"op":"fail"}"#]);
    let q = c.recv().await;
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    c.answer(&addr, 400, Some(json!({"messageCode": "echo.failed"})))
        .await;
    let out = query.await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("echo.failed"));

    // set-config: reconnectRequired, and the new config on reconnection.
    let out = lines(&cli(&server, &["set-config", "src", r#"{"v":2}"#]).await);
    assert_eq!(out[0]["config"], json!({"v": 2}));
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    assert_eq!(c.connect_ok("src", "s").await, json!({"v": 2}));

    let out = cli(&server, &["reconnect", "src"]).await;
    assert!(out.status.success());
    assert_eq!(c.recv().await["op"], "reconnectRequired");

    c.send_text("not json").await;
    let v = lines(&cli(&server, &["violations"]).await);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["kind"], "json.invalid");

    let out = cli(&server, &["drop", "src"]).await;
    assert!(out.status.success());
    assert_eq!(c.ending().await, common::Ending::Abrupt);

    // Errors: unknown source, no connector.
    let out = cli(&server, &["publish", "nope", "{}"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    let out = cli(&server, &["publish", "plain", "{}"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let out = cli(&server, &["publish", "plain", "{not json"]).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn notifications_follow_prints_as_they_arrive() {
    let server = serve(&["--source", "src", "--no-acks"]);
    let (mut c, _) = Conn::handshake(&server.ws, "any", "src", "s").await;
    let mut follower = Command::new(BIN)
        .args(["notifications", "src", "--follow", "--server", &server.http])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(lines.next().unwrap().unwrap());
        }
        got
    });
    c.notify("src", json!({"n": 0})).await;
    c.notify("src", json!({"n": 1})).await;
    let got = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    let _ = follower.kill();
    let _ = follower.wait();
    let got: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got[0], json!({"seq": 0, "object": {"n": 0}}));
    assert_eq!(got[1], json!({"seq": 1, "object": {"n": 1}}));
    // --no-acks: the next thing the connector gets is a publish, not an acknowledgement.
    let out = cli(&server, &["publish", "src", "{}"]).await;
    assert!(out.status.success());
    assert_eq!(c.recv().await["op"], "publish");
}

#[tokio::test]
async fn serve_exits_cleanly_on_sigterm() {
    let mut server = serve(&[]);
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn serve_reports_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"tokens": 3}"#).unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

/// `serve --frames` and the config file's `"frames"` force the frame type; `sources`
/// shows each connection's type.
#[tokio::test]
async fn serve_forces_the_frame_type_and_sources_shows_it() {
    let server = serve(&["--source", "src", "--frames", "binary"]);
    let mut c = Conn::open(&server.ws).await;
    c.send(json!({"op":"validate","resourceName":"system.credentials","object":"t"}))
        .await;
    assert_eq!(c.recv_frame().await.0, vantiq_sim::FrameType::Binary);
    let sources = lines(&cli(&server, &["sources"]).await);
    assert_eq!(sources[0]["frame_type"], Value::Null, "not connected yet");
    c.connect_ok("src", "s").await;
    let sources = lines(&cli(&server, &["sources"]).await);
    assert_eq!(sources[0]["frame_type"], "binary", "{sources:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.json");
    std::fs::write(&file, r#"{"sources":{"src":{}},"frames":"text"}"#).unwrap();
    let server = serve(&["--config", file.to_str().unwrap()]);
    let mut c = Conn::open(&server.ws).await;
    c.send_binary(json!({"op":"validate","resourceName":"system.credentials","object":"t"}))
        .await;
    assert_eq!(c.recv_frame().await.0, vantiq_sim::FrameType::Text);
    c.connect_ok("src", "s").await;
    let sources = lines(&cli(&server, &["sources"]).await);
    assert_eq!(sources[0]["frame_type"], "text", "{sources:?}");

    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--frames", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("follow, text or binary"), "{stderr}");
}

#[tokio::test]
async fn stop_reading_and_resume_reading() {
    let server = serve(&["--source", "src", "--no-acks"]);
    let out = cli(&server, &["stop-reading", "src"]).await;
    assert_eq!(out.status.code(), Some(1), "no connector yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let (mut c, _) = Conn::handshake(&server.ws, "any", "src", "s").await;
    let out = cli(&server, &["stop-reading", "src"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sources = lines(&cli(&server, &["sources"]).await);
    assert_eq!(sources[0]["reading_stopped"], true, "{sources:?}");
    c.notify("src", json!({"n": 0})).await;
    assert!(lines(&cli(&server, &["notifications", "src"]).await).is_empty());
    let out = cli(&server, &["resume-reading", "src"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = vantiq_sim::client::Client::new(&server.http).unwrap();
    let notes = client.notifications("src", 0, Some(10_000)).await.unwrap();
    assert_eq!(notes[0].object, json!({"n": 0}));
    let sources = lines(&cli(&server, &["sources"]).await);
    assert_eq!(sources[0]["reading_stopped"], false);
}

/// Every number passes through the CLI unchanged: a configuration file, `publish`,
/// `notifications`, `set-config`, `sources` and `query` (arguments and output).
#[tokio::test]
async fn numbers_pass_through_the_cli_unchanged() {
    use common::{assert_numbers_in, NUMBERS};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.json");
    std::fs::write(&file, format!(r#"{{"sources":{{"src":{NUMBERS}}}}}"#)).unwrap();
    let server = serve(&["--config", file.to_str().unwrap()]);
    let mut c = Conn::open(&server.ws).await;
    assert_eq!(c.validate("t").await["status"], 200);
    assert_eq!(c.connect_extension("src", "s").await["status"], 200);
    assert_numbers_in(&c.recv_text().await);

    let stdout = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout.clone()).unwrap()
    };
    assert_numbers_in(&stdout(&cli(&server, &["sources"]).await));
    stdout(&cli(&server, &["publish", "src", NUMBERS]).await);
    assert_numbers_in(&c.recv_text().await);
    c.send_text(&format!(
        r#"{{"op":"notification","resourceName":"sources","resourceId":"src","object":{NUMBERS}}}"#
    ))
    .await;
    c.recv().await; // the acknowledgement: recorded
    let printed = stdout(&cli(&server, &["notifications", "src"]).await);
    assert_eq!(printed, format!("{{\"seq\":0,\"object\":{NUMBERS}}}\n"));

    let query = spawn_cli(&server, &["query", "src", NUMBERS]);
    let sent = c.recv_text().await;
    assert_numbers_in(&sent);
    let q: Value = serde_json::from_str(&sent).unwrap();
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"].as_str().unwrap();
    c.send_text(&format!(
        r#"{{"status":200,"headers":{{"X-Reply-Address":"{addr}"}},"body":[{NUMBERS}]}}"#
    ))
    .await;
    assert_eq!(stdout(&query.await.unwrap()), format!("{NUMBERS}\n"));

    // Decimals whose text is not an f64's shortest form print as they came.
    const DECIMALS: &str = r#"{"a":0.000001,"b":-7.000000,"c":12345678901234.123456,"d":2.50}"#;
    let query = spawn_cli(&server, &["query", "src", "{}"]);
    let q: Value = serde_json::from_str(&c.recv_text().await).unwrap();
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"].as_str().unwrap();
    c.send_text(&format!(
        r#"{{"status":200,"headers":{{"X-Reply-Address":"{addr}"}},"body":[{DECIMALS}]}}"#
    ))
    .await;
    assert_eq!(stdout(&query.await.unwrap()), format!("{DECIMALS}\n"));

    assert_numbers_in(&stdout(
        &cli(&server, &["set-config", "src", NUMBERS]).await,
    ));
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    assert_eq!(c.connect_extension("src", "s").await["status"], 200);
    assert_numbers_in(&c.recv_text().await);
}

/// Starts a client subcommand that waits (a query) and returns at once.
fn spawn_cli(server: &Server, args: &[&str]) -> tokio::task::JoinHandle<Output> {
    let mut command = Command::new(BIN);
    command.args(args).args(["--server", &server.http]);
    tokio::task::spawn_blocking(move || command.output().expect("run vantiq-sim"))
}

/// Answers the next query on `c` with these (status, body) frames.
async fn answer_next(c: &mut Conn, frames: &[(u16, Option<Value>)]) {
    let q = c.recv().await;
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    for (status, body) in frames {
        c.answer(&addr, *status, body.clone()).await;
    }
}

#[tokio::test]
async fn query_says_no_data_shows_frames_and_fails_on_an_error() {
    let server = serve(&["--source", "src"]);
    let (mut c, _) = Conn::handshake(&server.ws, "any", "src", "s").await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // 204: nothing on stdout, "no data (204)" on stderr, success.
    let query = spawn_cli(&server, &["query", "src", "{}"]);
    answer_next(&mut c, &[(204, None)]).await;
    let out = query.await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("no data (204)"),
        "{}",
        text(&out.stderr)
    );

    // An empty 200 is not "no data".
    let query = spawn_cli(&server, &["query", "src", "{}"]);
    answer_next(&mut c, &[(200, Some(json!([])))]).await;
    let out = query.await.unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    assert!(
        !text(&out.stderr).contains("no data"),
        "{}",
        text(&out.stderr)
    );

    // --frames: every answer frame, with its status.
    let query = spawn_cli(&server, &["query", "src", "{}", "--frames"]);
    answer_next(
        &mut c,
        &[
            (100, Some(json!([{"i": 0}]))),
            (200, Some(json!([{"i": 1}]))),
        ],
    )
    .await;
    let frames = lines(&query.await.unwrap());
    let statuses: Vec<&Value> = frames.iter().map(|f| &f["status"]).collect();
    assert_eq!(statuses, [&json!(100), &json!(200)]);
    assert_eq!(frames[1]["body"], json!([{"i": 1}]));
    let query = spawn_cli(&server, &["query", "src", "{}", "--frames"]);
    answer_next(&mut c, &[(204, None)]).await;
    let frames = lines(&query.await.unwrap());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["status"], 204);

    // An error answer: exit 1, its code and its text.
    let query = spawn_cli(&server, &["query", "src", "{}"]);
    let error =
        json!({"messageCode": "io.x.bad", "messageTemplate": "Bad {0}", "parameters": ["p"]});
    answer_next(&mut c, &[(400, Some(error))]).await;
    let out = query.await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("status 400"), "{stderr}");
    assert!(stderr.contains("io.x.bad: Bad p"), "{stderr}");
    let query = spawn_cli(&server, &["query", "src", "{}", "--frames"]);
    let error = json!([{"code": "io.y", "message": "It broke"}]);
    answer_next(&mut c, &[(500, Some(error))]).await;
    let out = query.await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("io.y: It broke"),
        "{}",
        text(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["status"], 500, "the frame is printed too");
}

/// `query` prints the rows of each answer as it arrives, before the final one, and keeps
/// none: the emulator streams them to it (`stream=1`).
#[tokio::test]
async fn query_prints_rows_as_they_arrive() {
    let server = serve(&["--source", "src"]);
    let (mut c, _) = Conn::handshake(&server.ws, "any", "src", "s").await;
    let mut child = Command::new(BIN)
        .args(["query", "src", "{}", "--server", &server.http])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vantiq-sim query");
    let q = c.recv().await;
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    let rows: Value = serde_json::from_str(r#"[{"i":1},{"i":0.000001}]"#).unwrap();
    c.answer(&addr, 100, Some(rows)).await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let first_two = tokio::task::spawn_blocking(move || {
        let mut lines = String::new();
        for _ in 0..2 {
            stdout.read_line(&mut lines).expect("a line");
        }
        (lines, stdout)
    });
    // Both rows are printed while the query is still open.
    let (lines, mut stdout) = first_two.await.unwrap();
    assert_eq!(lines, "{\"i\":1}\n{\"i\":0.000001}\n");
    c.answer(&addr, 200, Some(json!([{"i": 3}]))).await;
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let status = child.wait().unwrap();
        (rest, status)
    });
    let (rest, status) = rest.await.unwrap();
    assert!(status.success());
    assert_eq!(rest, "{\"i\":3}\n");
}
