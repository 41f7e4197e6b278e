//! Measures the emulator on this machine, with a bare WebSocket client in the same process
//! (so the figures are conservative: client and server share the cores).
//!
//! ```text
//! cargo run --release -p vantiq-sim --example throughput -- publish 1000000
//! cargo run --release -p vantiq-sim --example throughput -- notify 1000000
//! cargo run --release -p vantiq-sim --example throughput -- connections 9000
//! ```
//!
//! `connections` opens client and server ends in one process: it needs two file
//! descriptors per connection (`ulimit -n`).

use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vantiq_sim::Sim;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map(String::as_str).unwrap_or("all");
    let n = |default: usize| args.get(1).and_then(|s| s.parse().ok()).unwrap_or(default);
    match what {
        "publish" => publish(n(1_000_000)).await,
        "notify" => notify(n(1_000_000)).await,
        "connections" => connections(n(5_000)).await,
        "all" => {
            publish(1_000_000).await;
            notify(1_000_000).await;
            connections(5_000).await;
        }
        other => eprintln!("unknown measurement {other:?}: publish | notify | connections"),
    }
}

/// Opens a connector socket and completes the handshake for `source`.
async fn connect(url: &str, source: &str) -> Ws {
    // Small client buffers, so the memory figure of `connections` is mostly the server's.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .expect("connect");
    let validate = json!({"op":"validate","resourceName":"system.credentials","object":"t"});
    ws.send(Message::text(validate.to_string())).await.unwrap();
    ws.next().await.unwrap().unwrap();
    let connect = json!({"op":"connectExtension","resourceName":"sources","resourceId":source,
                         "parameters":{"reconnectSecret":"x"}});
    ws.send(Message::text(connect.to_string())).await.unwrap();
    ws.next().await.unwrap().unwrap(); // status
    ws.next().await.unwrap().unwrap(); // configureExtension
    ws
}

async fn publish(n: usize) {
    let sim = Sim::builder().source("s", json!({})).start().await.unwrap();
    let (_, mut read) = connect(&sim.ws_url(), "s").await.split();
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match read.next().await {
                Some(Ok(Message::Text(_))) => got += 1,
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        got
    });
    let start = Instant::now();
    let objects = (0..n).map(|i| json!({"i": i, "payload": "0123456789"}));
    sim.publish_many("s", objects).await.unwrap();
    let got = reader.await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "publish: {got} frames received in {secs:.2} s = {:.0} frames/s",
        got as f64 / secs
    );
}

async fn notify(n: usize) {
    let sim = Sim::builder()
        .source("s", json!({}))
        .keep_notifications(1000)
        .start()
        .await
        .unwrap();
    let (mut write, mut read) = connect(&sim.ws_url(), "s").await.split();
    tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..n {
            let text = format!(
                r#"{{"op":"notification","resourceName":"sources","resourceId":"s","object":{{"i":{i},"payload":"0123456789"}}}}"#
            );
            write.feed(Message::text(text)).await.unwrap();
            if i % 256 == 255 {
                write.flush().await.unwrap();
            }
        }
        write.flush().await.unwrap();
    });
    sim.wait_notifications("s", n, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "notify: {n} notifications absorbed in {secs:.2} s = {:.0} notifications/s",
        n as f64 / secs
    );
    assert!(sim.violations().is_empty());
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn connections(n: usize) {
    let sim = Sim::builder().start().await.unwrap();
    for i in 0..n {
        sim.add_source(format!("s{i}"), json!({"i": i}));
    }
    let before = rss_kib();
    let start = Instant::now();
    let url = sim.ws_url();
    let sockets: Vec<Ws> = stream::iter(0..n)
        .map(|i| {
            let url = url.clone();
            async move { connect(&url, &format!("s{i}")).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let connected = sim.sources().iter().filter(|s| s.connected).count();
    let after = rss_kib();
    println!(
        "connections: {connected} of {n} sources connected in {secs:.2} s; process RSS grew by {} MiB \
         ({:.1} KiB per connection, client and server ends together)",
        (after - before) / 1024,
        (after - before) as f64 / n as f64
    );
    drop(sockets);
}
