//! Fault tests: the connector against a misbehaving server and network, all on
//! the emulator. Each asserts that nothing is lost and nothing hangs.

mod common;

#[path = "../examples/common/echo_handler.rs"]
#[allow(dead_code)]
mod echo_handler;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vantiq_connector_sdk::{
    ConnectorSet, Context, Handler, HandlerResult, OverflowPolicy, Query, ServerConfig,
};

fn echo_set(sim: &vantiq_sim::Sim, settings: vantiq_connector_sdk::Settings) -> Running {
    let set = ConnectorSet::builder(config_for(sim, &["echo"]))
        .settings(settings)
        .handler(echo_handler::Echo::default())
        .build()
        .unwrap();
    start(set)
}

/// The server restarts while the echo `stream` query is sending: every
/// notification arrives, in order; duplicates only from re-sending, counted.
#[tokio::test]
async fn server_restart_in_the_middle_of_a_stream_loses_nothing() {
    let sim = sim(&["echo"]).await;
    let running = echo_set(&sim, fast_settings());
    sim.wait_connected("echo", WAIT).await.unwrap();
    let n = 400;
    let out = sim
        .query(
            "echo",
            json!({"op": "stream", "count": n, "every_ms": 2}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(out.rows, vec![json!({"streaming": n})]);
    sim.wait_notifications("echo", 50, WAIT).await.unwrap();
    sim.stop().await;
    sim.restart().await.unwrap();
    let back = std::time::Instant::now();
    sim.wait_connections("echo", 2, WAIT).await.unwrap();
    let reconnect = back.elapsed();
    let conn = running.set.connection("echo").unwrap().clone();
    // Delivery is in order, so once the last one is in, every earlier one is too.
    let mut all = sim
        .wait_notifications("echo", n as usize, WAIT)
        .await
        .unwrap();
    while all.last().map(|x| x.object["stream"].clone()) != Some(json!(n - 1)) {
        all = sim
            .wait_notifications("echo", all.len() + 1, WAIT)
            .await
            .unwrap();
    }
    let seq: Vec<u64> = all
        .iter()
        .map(|n| n.object["stream"].as_u64().unwrap())
        .collect();
    // In order (a re-sent run may repeat a tail, never go back further)...
    let mut expected = 0;
    let mut duplicates = 0;
    for s in &seq {
        if *s == expected {
            expected += 1;
        } else {
            assert!(
                *s < expected,
                "out of order: {s} before {expected}: {seq:?}"
            );
            duplicates += 1;
        }
    }
    // ...and none lost.
    assert_eq!(expected, n, "lost notifications: {seq:?}");
    let stats = conn.stats();
    eprintln!(
        "MEASURE restart-mid-stream: reconnected {reconnect:?} after the server accepted again; \
         {n} streamed, 0 lost, {duplicates} duplicates, {} re-sent",
        stats.resent
    );
    assert!(
        duplicates as u64 <= stats.resent,
        "{duplicates} duplicates but {} re-sent",
        stats.resent
    );
    running.stop().await.unwrap();
}

/// Abrupt drops (no close frame), many times: reconnects each time, connect
/// and close strictly alternate.
#[tokio::test]
async fn abrupt_drops_reconnect_every_time() {
    let sim = sim(&["echo"]).await;
    let running = echo_set(&sim, fast_settings());
    sim.wait_connections("echo", 1, WAIT).await.unwrap();
    let mut worst = Duration::ZERO;
    for n in 1..=20 {
        sim.drop_connection("echo").await.unwrap();
        let dropped = std::time::Instant::now();
        sim.wait_connections("echo", n + 1, WAIT).await.unwrap();
        worst = worst.max(dropped.elapsed());
    }
    eprintln!("MEASURE abrupt-drop: 20 drops, 20 reconnections, slowest {worst:?}");
    let out = sim
        .query("echo", json!({"op": "rows", "count": 2}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 2);
    running.stop().await.unwrap();
}

#[derive(Clone)]
struct Alternation(Recorder);

impl Handler for Alternation {
    async fn on_connect(&self, _ctx: Context, config: Value) -> HandlerResult {
        self.0.record(format!("connect {config}"));
        Ok(())
    }
    async fn on_close(&self, _ctx: Context) -> HandlerResult {
        self.0.record("close");
        Ok(())
    }
}

/// A storm of 100 reconfigurations in a row: it ends connected with the last
/// configuration, and connect/close alternate strictly.
#[tokio::test]
async fn a_storm_of_reconnect_required_ends_on_the_last_configuration() {
    let sim = sim(&["c"]).await;
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config_for(&sim, &["c"]))
        .settings(fast_settings())
        .handler(Alternation(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("c", WAIT).await.unwrap();
    let storm = std::time::Instant::now();
    for v in 0..100 {
        sim.set_config("c", json!({"v": v})).await.ok();
    }
    // Converges on the last configuration.
    loop {
        let entry = rec.expect("connect").await;
        if entry == r#"connect {"v":99}"# {
            break;
        }
    }
    sim.wait_connected("c", WAIT).await.unwrap();
    let conn = running.set.connection("c").unwrap().clone();
    assert!(conn.wait_connected().await);
    eprintln!(
        "MEASURE reconnect-storm: 100 reconfigurations, settled on the last after {:?}, {} connections",
        storm.elapsed(),
        conn.stats().connections
    );
    running.stop().await.unwrap();
    let entries = rec.entries();
    for (i, e) in entries.iter().enumerate() {
        let want_connect = i % 2 == 0;
        assert_eq!(
            e.starts_with("connect"),
            want_connect,
            "not alternating at {i}: {entries:?}"
        );
    }
    assert_eq!(entries.last().unwrap(), "close");
    assert_eq!(sim.source_status("c").unwrap().config, json!({"v": 99}));
}

/// The source disappears for a while and comes back: the connector keeps
/// retrying and reconnects.
#[tokio::test]
async fn a_source_that_disappears_and_comes_back_is_reconnected() {
    let sim = sim(&["gone"]).await;
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config_for(&sim, &["gone"]))
        .settings(fast_settings())
        .handler(Alternation(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    sim.remove_source("gone");
    rec.expect("close").await;
    // Wait until it has been refused a few times.
    let conn = running.set.connection("gone").unwrap().clone();
    let mut state = conn.watch_state();
    for _ in 0..3 {
        state
            .wait_for(|s| s == vantiq_connector_sdk::ConnectionState::Connecting)
            .await
            .unwrap();
        state
            .wait_for(|s| s == vantiq_connector_sdk::ConnectionState::Disconnected)
            .await
            .unwrap();
    }
    sim.add_source("gone", json!({"back": true}));
    let back = std::time::Instant::now();
    assert_eq!(rec.expect("connect").await, r#"connect {"back":true}"#);
    eprintln!(
        "MEASURE source-disappears: refused 3 times and kept retrying, reconnected {:?} after the source came back",
        back.elapsed()
    );
    running.stop().await.unwrap();
}

/// An oversized server message is skipped; the connection stays up.
#[tokio::test]
async fn oversized_messages_are_skipped() {
    let sim = sim(&["big"]).await;
    let settings = fast_settings()
        .to_builder()
        .max_message_size(64 * 1024)
        .build();
    let rec = Recorder::new();
    let r = rec.clone();
    let set = ConnectorSet::builder(config_for(&sim, &["big"]))
        .settings(settings)
        .handler(
            vantiq_connector_sdk::Handlers::new().on_publish(move |_c: Context, m: Value| {
                let r = r.clone();
                async move { r.record(format!("publish {}", m.to_string().len())) }
            }),
        )
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("big", WAIT).await.unwrap();
    sim.publish("big", json!({"blob": "x".repeat(100 * 1024)}))
        .await
        .unwrap();
    sim.publish("big", json!({"small": 1})).await.unwrap();
    assert_eq!(rec.expect("publish").await, "publish 11");
    let conn = running.set.connection("big").unwrap();
    assert_eq!(conn.stats().malformed, 1);
    assert_eq!(conn.stats().connections, 1);
    // Large messages under the limit are fine (the Python SDK stops at 1 MiB).
    running.stop().await.unwrap();
}

/// Messages of several MiB pass with the default limit.
#[tokio::test]
async fn large_messages_pass() {
    let sim = sim(&["echo"]).await;
    let running = echo_set(&sim, fast_settings());
    sim.wait_connected("echo", WAIT).await.unwrap();
    let blob = "y".repeat(3 << 20);
    sim.publish("echo", json!({"blob": blob})).await.unwrap();
    let got = sim.wait_notifications("echo", 1, WAIT).await.unwrap();
    assert_eq!(got[0].object["blob"].as_str().unwrap().len(), 3 << 20);
    let out = sim
        .query("echo", json!({"op": "rows", "count": 20000}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 20000);
    running.stop().await.unwrap();
}

/// Against a server that never acknowledges, nothing waits forever: the SDK
/// notices, says so, and delivers at-most-once.
#[tokio::test]
async fn a_server_without_acks_does_not_stall_delivery() {
    let sim = vantiq_sim::Sim::builder()
        .token(TOKEN)
        .source("na", json!({}))
        .acks(false)
        .start()
        .await
        .unwrap();
    let settings = fast_settings()
        .to_builder()
        .window(8)
        .ack_timeout(Duration::from_millis(200))
        .build();
    let set = ConnectorSet::builder(config_for(&sim, &["na"]))
        .settings(settings)
        .build()
        .unwrap();
    let conn = set.connection("na").unwrap().clone();
    let running = start(set);
    for i in 0..100 {
        conn.send_notification(&json!({"i": i})).await.unwrap();
    }
    conn.flush().await;
    let got = sim.wait_notifications("na", 100, WAIT).await.unwrap();
    assert_eq!(
        objects(&got),
        (0..100).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    assert_eq!(conn.stats().acknowledged, 0);
    running.stop().await.unwrap();
}

/// DropOldest: every dropped notification is counted, the newest survive.
#[tokio::test]
async fn drop_oldest_keeps_the_newest_and_counts_drops() {
    let sim = sim(&["d"]).await;
    let settings = fast_settings()
        .to_builder()
        .buffer_capacity(10)
        .overflow(OverflowPolicy::DropOldest)
        .build();
    let set = ConnectorSet::builder(config_for(&sim, &["d"]))
        .settings(settings)
        .build()
        .unwrap();
    let conn = set.connection("d").unwrap().clone();
    // Not running yet: everything waits in the buffer.
    for i in 0..25 {
        conn.try_send_notification(&json!({"i": i})).unwrap();
    }
    assert_eq!(conn.stats().dropped, 15);
    assert_eq!(conn.stats().buffered, 10);
    let running = start(set);
    let got = sim.wait_notifications("d", 10, WAIT).await.unwrap();
    assert_eq!(
        objects(&got),
        (15..25).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    running.stop().await.unwrap();
}

/// Panics in publish, connect and close handlers take neither the
/// connection nor the process down.
#[tokio::test]
async fn panicking_handlers_do_not_take_the_connection_down() {
    struct Panicky(Recorder);
    impl Handler for Panicky {
        async fn on_connect(&self, _ctx: Context, _config: Value) -> HandlerResult {
            self.0.record("connect");
            panic!("connect handler panics");
        }
        async fn on_publish(&self, _ctx: Context, message: Value) -> HandlerResult {
            self.0.record(format!("publish {message}"));
            if message["panic"] == json!(true) {
                panic!("publish handler panics");
            }
            Err("publish handler fails".into())
        }
        async fn on_query(&self, query: Query) -> HandlerResult {
            query.complete(&json!({"alive": true})).await?;
            Ok(())
        }
        async fn on_close(&self, _ctx: Context) -> HandlerResult {
            self.0.record("close");
            panic!("close handler panics");
        }
    }
    let sim = sim(&["p"]).await;
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config_for(&sim, &["p"]))
        .settings(fast_settings())
        .handler(Panicky(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    sim.publish("p", json!({"panic": true})).await.unwrap();
    sim.publish("p", json!({"panic": false})).await.unwrap();
    rec.expect("publish").await;
    rec.expect("publish").await;
    let out = sim.query("p", json!({}), WAIT).await.unwrap();
    assert_eq!(out.rows, vec![json!({"alive": true})]);
    sim.drop_connection("p").await.unwrap();
    rec.expect("close").await;
    rec.expect("connect").await;
    sim.wait_connections("p", 2, WAIT).await.unwrap();
    let out = sim.query("p", json!({}), WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    running.stop().await.unwrap();
}

/// Handlers that panic before they return their future (the code of a
/// closure before its `async` block) are caught as well, on both runtimes
/// (on the one-threaded one such a publish handler runs on the connection's
/// task, which must not go down with it).
async fn handlers_that_panic_before_their_future_are_caught() {
    /// Handlers written as functions that return a future, and panic
    /// before they make it.
    struct Eager(Recorder);
    impl Handler for Eager {
        #[allow(clippy::manual_async_fn)]
        fn on_connect(
            &self,
            _ctx: Context,
            _config: Value,
        ) -> impl std::future::Future<Output = HandlerResult> + Send {
            self.0.record("connect");
            if self.0.entries().len() < 100 {
                panic!("connect handler panics before its future");
            }
            async { Ok(()) }
        }
        #[allow(clippy::manual_async_fn)]
        fn on_publish(
            &self,
            _ctx: Context,
            m: Value,
        ) -> impl std::future::Future<Output = HandlerResult> + Send {
            self.0.record(format!("publish {m}"));
            if m["panic"] == json!(true) {
                panic!("publish handler panics before its future");
            }
            async { Ok(()) }
        }
        #[allow(clippy::manual_async_fn)]
        fn on_query(
            &self,
            query: Query,
        ) -> impl std::future::Future<Output = HandlerResult> + Send {
            if query.params()["panic"] == json!(true) {
                panic!("query handler panics before its future");
            }
            async move {
                query.complete(&json!({"alive": true})).await?;
                Ok(())
            }
        }
        #[allow(clippy::manual_async_fn)]
        fn on_close(
            &self,
            _ctx: Context,
        ) -> impl std::future::Future<Output = HandlerResult> + Send {
            self.0.record("close");
            if self.0.entries().len() < 100 {
                panic!("close handler panics before its future");
            }
            async { Ok(()) }
        }
    }
    let sim = sim(&["e"]).await;
    let rec = Recorder::new();
    let handlers = Eager(rec.clone());
    let set = ConnectorSet::builder(config_for(&sim, &["e"]))
        .settings(fast_settings())
        .handler(handlers)
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    for i in 0..3 {
        sim.publish("e", json!({"panic": true, "i": i}))
            .await
            .unwrap();
        sim.publish("e", json!({"panic": false, "i": i}))
            .await
            .unwrap();
    }
    for i in 0..3 {
        assert_eq!(
            rec.expect("publish").await,
            format!(r#"publish {{"i":{i},"panic":true}}"#)
        );
        assert_eq!(
            rec.expect("publish").await,
            format!(r#"publish {{"i":{i},"panic":false}}"#)
        );
    }
    assert!(running.set.connection("e").unwrap().is_connected());
    let out = sim.query("e", json!({"panic": true}), WAIT).await.unwrap();
    assert_eq!(
        out.error.as_ref().map(|e| e["messageCode"].clone()),
        Some(json!("io.vantiq.connector.queryHandlerPanicked")),
        "{out:?}"
    );
    let out = sim.query("e", json!({}), WAIT).await.unwrap();
    assert_eq!(out.rows, vec![json!({"alive": true})]);
    sim.drop_connection("e").await.unwrap();
    rec.expect("close").await;
    rec.expect("connect").await;
    sim.wait_connections("e", 2, WAIT).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn handlers_that_panic_before_their_future_are_caught_on_one_thread() {
    handlers_that_panic_before_their_future_are_caught().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_panic_before_their_future_are_caught_on_many_threads() {
    handlers_that_panic_before_their_future_are_caught().await;
}

/// With TLS checks left on, a server with a certificate no root vouches
/// for is refused (here: a plain-TCP server spoken to over wss, which fails
/// the TLS handshake); the connector keeps retrying rather than crashing.
#[tokio::test]
async fn tls_failures_are_connection_failures() {
    let sim = sim(&["t"]).await;
    let url = sim.http_url().replace("http://", "https://");
    let config = ServerConfig::builder(url)
        .token(TOKEN)
        .source("t")
        .fail_on_connection_error(true)
        .build()
        .unwrap();
    assert!(config.websocket_url().starts_with("wss://"));
    let err = run_to_error(config).await;
    assert!(
        matches!(err, vantiq_connector_sdk::Error::ConnectFailed { .. }),
        "{err}"
    );
}

/// A burst of publishes echoed by a handler that waits for room in a small
/// buffer: the connection task must keep writing (and so freeing room) even
/// while the handlers are behind, or every part waits on another forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_burst_echoed_through_a_full_buffer_does_not_deadlock() {
    let sim = sim(&["echo"]).await;
    let settings = fast_settings()
        .to_builder()
        .buffer_capacity(50)
        .window(8)
        .build();
    let running = echo_set(&sim, settings);
    sim.wait_connected("echo", WAIT).await.unwrap();
    let n = 30_000;
    let sent = sim
        .publish_many("echo", (0..n).map(|i| json!({"i": i})))
        .await
        .unwrap();
    assert_eq!(sent, n);
    let got = sim.wait_notifications("echo", n, WAIT).await.unwrap();
    assert_eq!(
        objects(&got),
        (0..n).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    assert_eq!(
        running.set.connection("echo").unwrap().stats().connections,
        1
    );
    running.stop().await.unwrap();
}

/// At-least-once: notifications the server had not acknowledged when the
/// link died are sent again after the reconnection, in order, before newer
/// ones; each re-send is counted.
#[tokio::test]
async fn unacknowledged_notifications_are_sent_again_after_a_drop() {
    let sim = sim(&["alo"]).await;
    let settings = fast_settings()
        .to_builder()
        .ack_timeout(Duration::from_secs(60))
        .build();
    let set = ConnectorSet::builder(config_for(&sim, &["alo"]))
        .settings(settings)
        .build()
        .unwrap();
    let conn = set.connection("alo").unwrap().clone();
    let running = start(set);
    sim.wait_connected("alo", WAIT).await.unwrap();
    // The server takes these but does not acknowledge them.
    sim.set_acks(false);
    for i in 0..10 {
        conn.send_notification(&json!({"i": i})).await.unwrap();
    }
    sim.wait_notifications("alo", 10, WAIT).await.unwrap();
    sim.drop_connection("alo").await.unwrap();
    sim.set_acks(true);
    sim.wait_connections("alo", 2, WAIT).await.unwrap();
    conn.send_notification(&json!({"i": 10})).await.unwrap();
    conn.flush().await;
    let got = sim.wait_notifications("alo", 21, WAIT).await.unwrap();
    let expected: Vec<Value> = (0..10).chain(0..11).map(|i| json!({"i": i})).collect();
    assert_eq!(objects(&got), expected);
    let stats = conn.stats();
    assert_eq!(stats.resent, 10);
    assert_eq!(stats.acknowledged, 11);
    running.stop().await.unwrap();
}
