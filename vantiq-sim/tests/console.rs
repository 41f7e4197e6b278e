//! The console's server side: the page and assets, the event stream, the control token,
//! and each source's state word and history. The page itself is tested in a real
//! browser (`tests/browser/`).

mod common;

use common::{Conn, WAIT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use vantiq_sim::client::{Client, ClientError};
use vantiq_sim::Sim;

async fn sim() -> Sim {
    Sim::builder()
        .token("t")
        .source("src", json!({"v": 1}))
        .start()
        .await
        .unwrap()
}

/// GET `path`; returns the status line and the whole answer.
async fn get(sim: &Sim, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut tcp = TcpStream::connect(sim.addr()).await.unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut tcp, &mut text)
        .await
        .unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// The event stream, read event by event.
struct Events(BufReader<TcpStream>);

impl Events {
    async fn open(addr: SocketAddr, query: &str) -> Events {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /sim/events{query} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        Events(BufReader::new(tcp))
    }

    /// The next event's name and data (chunk-size lines and comments skipped).
    async fn next(&mut self) -> (String, Value) {
        let (mut name, mut data) = (String::new(), None);
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, self.0.read_line(&mut line))
                .await
                .expect("an event in time")
                .unwrap();
            assert!(n > 0, "the stream ended");
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            } else if line.is_empty() {
                if let Some(data) = data.take() {
                    return (name, data);
                }
            }
        }
    }

    /// Skips events until one named `name` satisfies `pred`.
    async fn until(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let (n, data) = self.next().await;
            if n == name && pred(&data) {
                return data;
            }
        }
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let sim = sim().await;
    let (status, page) = get(&sim, "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("text/html") && page.contains("<title>vantiq-sim console</title>"));
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let (status, text) = get(&sim, path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(text.contains(kind), "{path}: {text:.200}");
    }
}

#[tokio::test]
async fn the_event_stream_says_what_changed() {
    let sim = sim().await;
    let mut events = Events::open(sim.addr(), "").await;
    let sources = events.until("sources", |_| true).await;
    assert_eq!(sources[0]["state"], "never connected");
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "secret").await;
    let sources = events
        .until("sources", |s| s[0]["state"] == "connected")
        .await;
    assert_eq!(sources[0]["history"][0]["event"], "connected", "{sources}");
    c.notify("src", json!({"n": 1})).await;
    let note = events.until("notifications", |n| n["count"] == 1).await;
    assert_eq!(note, json!({"source": "src", "count": 1}));
    c.send_text("not json").await;
    events.until("violations", |v| v["count"] == 1).await;
    sim.drop_connection("src").await.unwrap();
    let sources = events
        .until("sources", |s| s[0]["state"] == "disconnected")
        .await;
    let history: Vec<&str> = sources[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["connected", "dropped"]);
    assert!(
        !sources.to_string().contains("\"secret\""),
        "no secret in the stream: {sources}"
    );
    assert_eq!(sources[0]["reconnect_secret_count"], 1);
}

#[tokio::test]
async fn history_and_state_words_follow_the_connection() {
    let sim = sim().await;
    let (mut first, _) = Conn::handshake(&sim.ws_url(), "t", "src", "A").await;
    let status = sim.source_status("src").unwrap();
    assert_eq!(status.state, "connected");
    assert!(status.connected_at_ms.is_some());
    sim.reconnect("src").await.unwrap();
    assert_eq!(sim.source_status("src").unwrap().state, "reconnecting");
    assert_eq!(first.recv().await["op"], "reconnectRequired");
    first.connect_ok("src", "A").await;
    let mut intruder = Conn::open(&sim.ws_url()).await;
    intruder.validate("t").await;
    assert_eq!(intruder.connect_extension("src", "B").await["status"], 409);
    sim.drop_connection("src").await.unwrap();
    let status = sim.wait_disconnected("src", WAIT).await.unwrap();
    let events: Vec<&str> = status.history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "connected",
            "reconnectRequired",
            "connected",
            "refused",
            "dropped"
        ]
    );
    assert_eq!(status.state, "disconnected");
    assert_eq!(status.connected_at_ms, None);
    let mut c = Conn::open(&sim.ws_url()).await;
    c.validate("t").await;
    c.connect_ok("src", "C").await;
    let mut intruder = Conn::open(&sim.ws_url()).await;
    intruder.validate("t").await;
    intruder.connect_extension("src", "D").await;
    sim.drop_connection("src").await.unwrap();
    assert_eq!(
        sim.wait_disconnected("src", WAIT).await.unwrap().state,
        "disconnected"
    );
}

#[tokio::test]
async fn a_control_token_guards_the_control_api_and_the_event_stream() {
    let sim = Sim::builder()
        .source("src", json!({}))
        .control_token("ctl-secret-1")
        .start()
        .await
        .unwrap();
    let status = |e: ClientError| match e {
        ClientError::Http { status, .. } => status,
        other => panic!("{other}"),
    };
    let open = Client::new(&sim.http_url()).unwrap();
    assert_eq!(status(open.sources().await.unwrap_err()), 401);
    let wrong = open.clone().with_token("ctl-secret-2");
    assert_eq!(status(wrong.sources().await.unwrap_err()), 401);
    let right = open.clone().with_token("ctl-secret-1");
    assert_eq!(right.sources().await.unwrap().len(), 1);
    assert!(!format!("{right:?}").contains("ctl-secret-1"));
    let (code, _) = get(&sim, "/sim/events", None).await;
    assert_eq!(code, 401);
    let mut events = Events::open(sim.addr(), "?access_token=ctl-secret-1").await;
    events.until("sources", |_| true).await;
    // The page holds no data: open. Connectors use their own credentials.
    assert_eq!(get(&sim, "/", None).await.0, 200);
    Conn::handshake(&sim.ws_url(), "any", "src", "s").await;
}

#[tokio::test]
async fn a_listener_beyond_loopback_needs_a_control_token() {
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = Sim::builder().listen(any).start().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("control token"), "{err}");
    let sim = Sim::builder()
        .listen(any)
        .control_token("x")
        .start()
        .await
        .unwrap();
    sim.stop().await;
    let builder = Sim::builder()
        .token("tok-1")
        .user("u", "pw-1")
        .control_token("ctl-1");
    let debug = format!("{builder:?}");
    for secret in ["tok-1", "pw-1", "ctl-1"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

/// A change after a quiet while is reported too (each kind, after the stream has gone
/// idle); repeated, since the stream waits differently when changes pile up.
#[tokio::test]
async fn changes_after_a_quiet_while_are_reported() {
    let sim = sim().await;
    let mut events = Events::open(sim.addr(), "").await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "secret").await;
    events
        .until("sources", |s| s[0]["state"] == "connected")
        .await;
    for n in 1..=3u64 {
        // Idle: the stream is waiting, not scanning (its interval is 100 ms).
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        c.notify("src", json!({"n": n})).await;
        events.until("notifications", |e| e["count"] == n).await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        c.send_text("not json").await;
        events.until("violations", |e| e["count"] == n).await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        sim.add_source(format!("extra{n}"), json!({}));
        events
            .until("sources", |s| s.as_array().unwrap().len() == 1 + n as usize)
            .await;
    }
}
