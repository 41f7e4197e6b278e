//! `connectKWArgs`, the Python SDK's WebSocket keywords, applied: the
//! handshake's headers, the open timeout, the message size limit, pings off.

mod common;

use common::network::connect_failure;
use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use vantiq_connector_sdk::{ConnectErrorKind, ConnectorSet, Handlers, ServerConfig};

fn config(url: &str, kwargs: &str, extra: &str) -> ServerConfig {
    let text = format!(
        "targetServer={url}\nsources=s\ntcpProbePort=0\nproxy=none\nconnectKWArgs={kwargs}\n{extra}"
    );
    ServerConfig::from_properties_str(&text, None, Some(TOKEN.into())).unwrap()
}

#[tokio::test]
async fn the_upgrade_request_carries_the_user_agent_and_the_additional_headers() {
    // A server that reads the upgrade request and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut lines = BufReader::new(tcp).lines();
        let mut head = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.is_empty() {
                break;
            }
            head.push(line);
        }
        head
    });
    let kwargs = r#"{"user_agent_header": "pump-connector/2.1", "additional_headers": {"X-Site": "north-7", "X-Trace": "on"}}"#;
    let (kind, _) = connect_failure(config(&url, kwargs, "failOnConnectionError=true\n")).await;
    assert_eq!(kind, ConnectErrorKind::Network);
    let head = server.await.unwrap();
    assert!(
        head[0].starts_with("GET /api/v1/wsock/websocket HTTP/1.1"),
        "{head:?}"
    );
    for header in [
        "user-agent: pump-connector/2.1",
        "x-site: north-7",
        "x-trace: on",
    ] {
        assert!(
            head.iter().any(|h| h.to_ascii_lowercase() == header),
            "{header} missing from {head:?}"
        );
    }
}

#[tokio::test]
async fn open_timeout_bounds_an_attempt() {
    // Accepts, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let started = std::time::Instant::now();
    let (kind, reason) = connect_failure(config(
        &url,
        r#"{"open_timeout": 0.3}"#,
        "failOnConnectionError=true\n",
    ))
    .await;
    assert_eq!(kind, ConnectErrorKind::Timeout, "{reason}");
    assert!(reason.contains("300ms"), "{reason}");
    // fast_settings says 5 s: connectKWArgs wins.
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test]
async fn max_size_limits_the_messages_taken() {
    let sim = sim(&["s"]).await;
    let rec = Recorder::new();
    let r = rec.clone();
    let set = ConnectorSet::builder(config(&sim.http_url(), r#"{"max_size": 2000}"#, ""))
        .settings(fast_settings())
        .handler(Handlers::new().on_publish(
            move |_ctx: vantiq_connector_sdk::Context, m: serde_json::Value| {
                let r = r.clone();
                async move { r.record(format!("publish {}", m["n"])) }
            },
        ))
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("s", WAIT).await.unwrap();
    sim.publish("s", json!({"n": 1, "pad": "x".repeat(3000)}))
        .await
        .unwrap();
    sim.publish("s", json!({"n": 2})).await.unwrap();
    assert_eq!(rec.expect("publish").await, "publish 2");
    assert_eq!(running.set.connection("s").unwrap().stats().malformed, 1);
    running.stop().await.unwrap();
}

#[test]
fn ping_interval_null_turns_pings_off() {
    let c = config("http://h", r#"{"ping_interval": null}"#, "sendPings=true\n");
    assert!(!c.send_pings());
    let c = config("http://h", r#"{"ping_interval": 5}"#, "sendPings=true\n");
    assert!(c.send_pings());
}
