//! 1,000 connect/drop cycles: file descriptors and memory stay flat. In a
//! test binary of its own, so that no other test opens sockets meanwhile.

mod common;

#[path = "../examples/common/echo_handler.rs"]
#[allow(dead_code)]
mod echo_handler;

use std::time::Duration;

use common::*;
use serde_json::json;
use vantiq_connector_sdk::ConnectorSet;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 1,000 connect/drop cycles: file descriptors and memory stay flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connect_drop_cycles_leak_nothing() {
    let sim = sim(&["cyc"]).await;
    let settings = fast_settings()
        .to_builder()
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(5))
        .build();
    let set = ConnectorSet::builder(config_for(&sim, &["cyc"]))
        .settings(settings)
        .handler(echo_handler::Echo::default())
        .build()
        .unwrap();
    let running = start(set);
    // Warm up, then measure.
    for n in 1..=100 {
        sim.wait_connections("cyc", n, WAIT).await.unwrap();
        sim.drop_connection("cyc").await.unwrap();
    }
    sim.wait_connections("cyc", 101, WAIT).await.unwrap();
    let (fds0, rss0) = (open_fds(), rss_kib());
    for n in 101..=1100 {
        sim.wait_connections("cyc", n, WAIT).await.unwrap();
        sim.drop_connection("cyc").await.unwrap();
    }
    sim.wait_connections("cyc", 1101, WAIT).await.unwrap();
    let (fds1, rss1) = (open_fds(), rss_kib());
    eprintln!("1000 cycles: fds {fds0} -> {fds1}, RSS {rss0} KiB -> {rss1} KiB");
    assert!(fds1 <= fds0 + 4, "file descriptors grew: {fds0} -> {fds1}");
    assert!(
        rss1 <= rss0 + 8 * 1024,
        "memory grew: {rss0} KiB -> {rss1} KiB"
    );
    let out = sim
        .query("cyc", json!({"op": "rows", "count": 1}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    running.stop().await.unwrap();
}
