//! The metrics endpoint (issue 14) in real sessions against the emulator: every scrape
//! is parsed by the Prometheus project's Python parsers (strict OpenMetrics and the text
//! format) and linted by `promtool check metrics`; the counters follow publishes,
//! notifications, queries, malformed frames and reconnections; `/readyz` follows the
//! emulator going down and coming back while `/healthz` stays 200.
//!
//! Needs the venv of `scripts/setup-python.sh` (or `VANTIQ_PY`) and the promtool of
//! `scripts/setup-promtool.sh` (or `PROMTOOL`): see `common/prom.rs`.

mod common;

#[path = "../examples/common/echo_handler.rs"]
#[allow(dead_code)]
mod echo_handler;

use std::net::SocketAddr;
use std::path::Path;

use common::prom::*;
use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vantiq_connector_sdk::{ConnectionState, ConnectorSet, Error, ServerConfig};
use vantiq_sim::{RawFrame, Sim};

fn echo_set(config: ServerConfig) -> Running {
    let set = ConnectorSet::builder(config)
        .settings(fast_settings())
        .handler(echo_handler::Echo::default())
        .build()
        .unwrap();
    start(set)
}

fn metrics_config(sim: &Sim, sources: &[&str]) -> ServerConfig {
    ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .sources(sources.iter().copied())
        .tcp_probe_port(0)
        .metrics_port(0)
        .metrics_address(LOCALHOST.into())
        .build()
        .unwrap()
}

async fn metrics_addr(running: &Running) -> SocketAddr {
    let mut rx = running.set.metrics().watch_local_addr();
    let addr = tokio::time::timeout(WAIT, rx.wait_for(Option::is_some))
        .await
        .expect("the endpoint listens")
        .unwrap();
    addr.unwrap()
}

async fn wait_state(set: &ConnectorSet, source: &str, pred: impl Fn(ConnectionState) -> bool) {
    let mut rx = set.connection(source).unwrap().watch_state();
    tokio::time::timeout(WAIT, rx.wait_for(pred))
        .await
        .expect("state reached")
        .unwrap();
}

#[tokio::test]
async fn counters_follow_a_session() {
    let sim = sim(&["orders", "idle"]).await;
    let running = echo_set(metrics_config(&sim, &["orders", "idle"]));
    let addr = metrics_addr(&running).await;
    sim.wait_connected("orders", WAIT).await.unwrap();
    sim.wait_connected("idle", WAIT).await.unwrap();
    wait_state(&running.set, "orders", |s| s == ConnectionState::Connected).await;
    wait_state(&running.set, "idle", |s| s == ConnectionState::Connected).await;

    let m = scrape(addr).await;
    let orders = [("source", "orders")];
    assert_eq!(sample(&m, "vantiq_connector_connected", &orders), 1.0);
    assert_eq!(
        sample(&m, "vantiq_connector_publishes_received_total", &orders),
        0.0
    );
    assert_eq!(
        sample(
            &m,
            "vantiq_connector_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Publishes, echoed back as notifications.
    for i in 0..5 {
        sim.publish("orders", json!({"i": i})).await.unwrap();
    }
    sim.wait_notifications("orders", 5, WAIT).await.unwrap();
    running.set.connection("orders").unwrap().flush().await;
    // Queries: two answered, one failed, one that takes 30 ms.
    let rows = json!({"op": "rows", "count": 2});
    assert_eq!(
        sim.query("orders", rows.clone(), WAIT)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(sim.query("orders", rows, WAIT).await.unwrap().status, 200);
    let fail = json!({"op": "fail", "reason": "asked to"});
    assert!(sim.query("orders", fail, WAIT).await.unwrap().status >= 400);
    let slow = json!({"op": "sleep", "ms": 30});
    assert_eq!(sim.query("orders", slow, WAIT).await.unwrap().status, 200);
    // A malformed frame; the query after it is answered only once it was read.
    sim.send_raw("orders", RawFrame::Text("{not json".into()))
        .await
        .unwrap();
    let config = json!({"op": "config"});
    assert_eq!(sim.query("orders", config, WAIT).await.unwrap().status, 200);

    let m = scrape(addr).await;
    let count = |name: &str| sample(&m, name, &orders);
    assert_eq!(count("vantiq_connector_publishes_received_total"), 5.0);
    assert_eq!(count("vantiq_connector_notifications_sent_total"), 5.0);
    assert_eq!(
        count("vantiq_connector_notifications_acknowledged_total"),
        5.0
    );
    assert_eq!(count("vantiq_connector_notifications_resent_total"), 0.0);
    assert_eq!(count("vantiq_connector_notifications_dropped_total"), 0.0);
    assert_eq!(count("vantiq_connector_notifications_buffered"), 0.0);
    assert_eq!(count("vantiq_connector_malformed_frames_total"), 1.0);
    assert_eq!(count("vantiq_connector_reconnects_total"), 0.0);
    let queries = |outcome: &str| {
        sample(
            &m,
            "vantiq_connector_queries_total",
            &[("source", "orders"), ("outcome", outcome)],
        )
    };
    assert_eq!(queries("ok"), 4.0);
    assert_eq!(queries("error"), 1.0);
    assert_eq!(count("vantiq_connector_query_duration_seconds_count"), 5.0);
    let bucket = |le: &str| {
        sample(
            &m,
            "vantiq_connector_query_duration_seconds_bucket",
            &[("source", "orders"), ("le", le)],
        )
    };
    assert_eq!(bucket("+Inf"), 5.0);
    // The 30 ms query is above 25 ms; the others are far below.
    assert_eq!(bucket("0.025"), 4.0);
    assert!(count("vantiq_connector_query_duration_seconds_sum") >= 0.030);
    // The other source saw nothing.
    let idle = [("source", "idle")];
    assert_eq!(
        sample(&m, "vantiq_connector_publishes_received_total", &idle),
        0.0
    );
    assert_eq!(
        sample(&m, "vantiq_connector_query_duration_seconds_count", &idle),
        0.0
    );

    // A reconnection.
    sim.drop_connection("orders").await.unwrap();
    sim.wait_connections("orders", 2, WAIT).await.unwrap();
    wait_state(&running.set, "orders", |s| s == ConnectionState::Connected).await;
    let m = scrape(addr).await;
    assert_eq!(
        sample(&m, "vantiq_connector_reconnects_total", &orders),
        1.0
    );
    assert_eq!(sample(&m, "vantiq_connector_reconnects_total", &idle), 0.0);
    assert_eq!(sample(&m, "vantiq_connector_connected", &orders), 1.0);

    running.stop().await.unwrap();
    // The endpoint ends with `run`.
    assert!(running_set_addr_closed(addr).await);
}

async fn running_set_addr_closed(addr: SocketAddr) -> bool {
    tokio::time::timeout(WAIT, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .is_ok()
}

/// `/readyz` goes 503 while the emulator is down and 200 again after the
/// reconnection, naming the source; `/healthz` stays 200 throughout. Three rounds.
#[tokio::test]
async fn readiness_follows_the_emulator_while_liveness_stays() {
    let sim = sim(&["pumps", "valves"]).await;
    let running = echo_set(metrics_config(&sim, &["pumps", "valves"]));
    let addr = metrics_addr(&running).await;
    for round in 1..=3u64 {
        sim.wait_connections("pumps", round, WAIT).await.unwrap();
        sim.wait_connections("valves", round, WAIT).await.unwrap();
        for s in ["pumps", "valves"] {
            wait_state(&running.set, s, |st| st == ConnectionState::Connected).await;
        }
        let ready = get(addr, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        assert_eq!(get(addr, "/healthz").await.status, 200);
        let m = scrape(addr).await;
        assert_eq!(
            sample(&m, "vantiq_connector_connected", &[("source", "pumps")]),
            1.0
        );

        sim.stop().await;
        for s in ["pumps", "valves"] {
            wait_state(&running.set, s, |st| st != ConnectionState::Connected).await;
        }
        let ready = get(addr, "/readyz").await;
        assert_eq!(ready.status, 503, "{}", ready.body);
        assert!(ready.body.starts_with("not ready: "), "{}", ready.body);
        assert!(ready.body.contains("source pumps "), "{}", ready.body);
        assert!(ready.body.contains("source valves "), "{}", ready.body);
        let live = get(addr, "/healthz").await;
        assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
        let m = scrape(addr).await;
        assert_eq!(
            sample(&m, "vantiq_connector_connected", &[("source", "pumps")]),
            0.0
        );

        sim.restart().await.unwrap();
    }
    sim.wait_connections("pumps", 4, WAIT).await.unwrap();
    let m = scrape(addr).await;
    assert_eq!(
        sample(
            &m,
            "vantiq_connector_reconnects_total",
            &[("source", "pumps")]
        ),
        3.0
    );

    // Declared unhealthy: both probes fail, and say why.
    for s in ["pumps", "valves"] {
        wait_state(&running.set, s, |st| st == ConnectionState::Connected).await;
    }
    running.set.declare_unhealthy();
    let live = get(addr, "/healthz").await;
    assert_eq!(live.status, 503);
    let ready = get(addr, "/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (503, "not ready: declared unhealthy\n")
    );
    running.set.declare_healthy().unwrap();
    assert_eq!(get(addr, "/healthz").await.status, 200);
    assert_eq!(get(addr, "/readyz").await.status, 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn other_paths_get_404_and_other_methods_405() {
    let sim = sim(&["s"]).await;
    let running = echo_set(metrics_config(&sim, &["s"]));
    let addr = metrics_addr(&running).await;
    for path in ["/", "/metrics/", "/favicon.ico", "/healthz/x", "/READYZ"] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.contains("/metrics"), "{}", r.body);
    }
    assert_eq!(request(addr, "POST", "/nope", None).await.status, 404);
    let r = request(addr, "POST", "/metrics", None).await;
    assert_eq!(r.status, 405);
    assert!(
        r.head.to_ascii_lowercase().contains("allow: get, head"),
        "{}",
        r.head
    );
    let r = request(addr, "HEAD", "/healthz", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    // A query string does not change the path.
    assert_eq!(get(addr, "/metrics?x=1").await.status, 200);
    // Garbage is not HTTP: the connection is closed, the endpoint goes on.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"\x16\x03\x01 not http\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(WAIT, raw.read_to_end(&mut sink))
        .await
        .unwrap();
    assert_eq!(get(addr, "/healthz").await.status, 200);
    running.stop().await.unwrap();
}

/// Clients that connect and never finish a request hold up neither the
/// connector nor other scrapes.
#[tokio::test]
async fn stalled_clients_block_nothing() {
    let sim = sim(&["s"]).await;
    let running = echo_set(metrics_config(&sim, &["s"]));
    let addr = metrics_addr(&running).await;
    sim.wait_connected("s", WAIT).await.unwrap();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(c);
    }
    for i in 0..50 {
        sim.publish("s", json!({"i": i})).await.unwrap();
    }
    sim.wait_notifications("s", 50, WAIT).await.unwrap();
    let q = sim
        .query("s", json!({"op": "rows", "count": 1}), WAIT)
        .await;
    assert_eq!(q.unwrap().status, 200);
    let m = scrape(addr).await;
    assert_eq!(
        sample(
            &m,
            "vantiq_connector_publishes_received_total",
            &[("source", "s")]
        ),
        50.0
    );
    drop(stalled);
    running.stop().await.unwrap();
}

/// A port in use is an error of `run`, at once, naming the key and the address.
#[tokio::test]
async fn a_port_in_use_is_a_start_up_error_naming_the_key() {
    let sim = sim(&["s"]).await;
    let taken = std::net::TcpListener::bind((LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .source("s")
        .tcp_probe_port(0)
        .metrics_port(port)
        .metrics_address(LOCALHOST.into())
        .build()
        .unwrap();
    let e = run_to_error(config).await;
    assert!(
        matches!(e, Error::MetricsEndpoint { key: "metricsPort", addr, .. } if addr.port() == port),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("`metricsPort`") && text.contains(&format!("127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("in use"), "{text}");
    // Nothing was connected.
    assert_eq!(sim.source_status("s").unwrap().connections, 0);

    // The same through Settings, which also win over server.config.
    let settings = fast_settings()
        .to_builder()
        .metrics_addr(Some(taken.local_addr().unwrap()))
        .build();
    let set = ConnectorSet::builder(config_for(&sim, &["s"]))
        .settings(settings)
        .build()
        .unwrap();
    let e = tokio::time::timeout(WAIT, set.run())
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("`Settings::metrics_addr`"), "{e}");
}

/// Without metricsPort there is no endpoint, and queries are not timed.
#[tokio::test]
async fn off_by_default() {
    let sim = sim(&["s"]).await;
    let running = echo_set(config_for(&sim, &["s"]));
    sim.wait_connected("s", WAIT).await.unwrap();
    let q = sim
        .query("s", json!({"op": "rows", "count": 1}), WAIT)
        .await;
    assert_eq!(q.unwrap().status, 200);
    assert_eq!(running.set.metrics().local_addr(), None);
    // The registry still renders (for connectors that export it some other way).
    let text = running
        .set
        .metrics()
        .render(vantiq_connector_sdk::metrics::Format::Prometheus);
    let m = parse(&text, "prometheus");
    let s = [("source", "s")];
    assert_eq!(
        sample(
            &m,
            "vantiq_connector_queries_total",
            &[("source", "s"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "vantiq_connector_query_duration_seconds_count", &s),
        0.0
    );
    running.stop().await.unwrap();
}

/// Every series the Grafana dashboard queries is one the endpoint serves.
#[tokio::test]
async fn the_dashboard_queries_served_series() {
    let sim = sim(&["s"]).await;
    let running = echo_set(metrics_config(&sim, &["s"]));
    let addr = metrics_addr(&running).await;
    let text = get(addr, "/metrics").await.body;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/vantiq-connector.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let mut seen = std::collections::BTreeSet::new();
    for expr in &exprs {
        for name in series_names(expr) {
            let served = text.lines().any(|l| {
                !l.starts_with('#')
                    && l.starts_with(&name)
                    && l[name.len()..].starts_with(['{', ' '])
            });
            assert!(
                served,
                "the dashboard queries {name}, which is not served:\n{text}"
            );
            seen.insert(name);
        }
    }
    for needed in [
        "vantiq_connector_notifications_sent_total",
        "vantiq_connector_queries_total",
        "vantiq_connector_query_duration_seconds_bucket",
        "vantiq_connector_connected",
        "vantiq_connector_notifications_buffered",
    ] {
        assert!(
            seen.contains(needed),
            "the dashboard shows {needed}: {seen:?}"
        );
    }
    running.stop().await.unwrap();
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The `vantiq_connector_*` names in a PromQL expression.
fn series_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("vantiq_connector_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
