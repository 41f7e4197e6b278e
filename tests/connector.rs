//! The SDK against the emulator on loopback: handshake, handlers, queries,
//! notifications, reconnection, health.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vantiq_connector_sdk::{
    ConnectionState, ConnectorSet, Context, Error, Handler, HandlerResult, Handlers, NotifyError,
    Query, QueryAnswerError, QueryError, ReconnectStyle, ServerConfig, QUERY_COMPLETE, QUERY_EMPTY,
    QUERY_PARTIAL,
};

/// A handler that records every call.
#[derive(Clone)]
struct Recording(Recorder);

impl Handler for Recording {
    async fn on_connect(&self, ctx: Context, config: Value) -> HandlerResult {
        self.0
            .record(format!("connect {} {}", ctx.source(), config));
        Ok(())
    }
    async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
        self.0
            .record(format!("publish {} {}", ctx.source(), message));
        Ok(())
    }
    async fn on_query(&self, query: Query) -> HandlerResult {
        self.0
            .record(format!("query {} {}", query.source(), query.params()));
        let rows = json!([{"source": query.source()}]);
        query.complete(&rows).await?;
        Ok(())
    }
    async fn on_close(&self, ctx: Context) -> HandlerResult {
        self.0.record(format!("close {}", ctx.source()));
        Ok(())
    }
}

fn recording_set(sim: &vantiq_sim::Sim, sources: &[&str]) -> (ConnectorSet, Recorder) {
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config_for(sim, sources))
        .settings(fast_settings())
        .handler(Recording(rec.clone()))
        .build()
        .unwrap();
    (set, rec)
}

#[tokio::test]
async fn connects_receives_config_and_handles_publishes_in_order() {
    let sim = sim(&["s1"]).await;
    let (set, rec) = recording_set(&sim, &["s1"]);
    let running = start(set);
    let connect = rec.expect("connect").await;
    assert_eq!(connect, r#"connect s1 {"name":"s1","version":1}"#);
    assert!(running.set.connection("s1").unwrap().is_connected());
    assert_eq!(sim.source_status("s1").unwrap().connections, 1);

    for i in 0..200 {
        sim.publish("s1", json!({"i": i})).await.unwrap();
    }
    for i in 0..200 {
        assert_eq!(
            rec.expect("publish").await,
            format!(r#"publish s1 {{"i":{i}}}"#)
        );
    }
    running.stop().await.unwrap();
    assert_eq!(rec.expect("close").await, "close s1");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn notifications_arrive_in_order_and_are_acknowledged() {
    let sim = sim(&["n"]).await;
    let (set, rec) = recording_set(&sim, &["n"]);
    let running = start(set);
    rec.expect("connect").await;
    let conn = running.set.connection("n").unwrap().clone();
    for i in 0..1000 {
        conn.send_notification(&json!({"k": i})).await.unwrap();
    }
    let got = sim.wait_notifications("n", 1000, WAIT).await.unwrap();
    let expected: Vec<Value> = (0..1000).map(|i| json!({"k": i})).collect();
    assert_eq!(objects(&got), expected);
    // Acknowledgements come back for each notification.
    tokio::time::timeout(WAIT, conn.flush())
        .await
        .expect("all acknowledged");
    let stats = conn.stats();
    assert_eq!(stats.acknowledged, 1000);
    assert_eq!(stats.sent, 1000);
    assert_eq!(stats.resent, 0);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_notification_must_be_an_object() {
    let sim = sim(&["n"]).await;
    let (set, _rec) = recording_set(&sim, &["n"]);
    let conn = set.connection("n").unwrap().clone();
    assert!(matches!(
        conn.send_notification(&json!([1, 2])).await,
        Err(NotifyError::NotAnObject("list"))
    ));
    assert!(matches!(
        conn.send_notification(&3).await,
        Err(NotifyError::NotAnObject("number"))
    ));
    assert!(matches!(
        conn.try_send_notification("text"),
        Err(NotifyError::NotAnObject("string"))
    ));
    #[derive(serde::Serialize)]
    struct Reading {
        sensor: &'static str,
        value: f64,
    }
    // Any serde type that serialises to an object is fine.
    conn.try_send_notification(&Reading {
        sensor: "t1",
        value: 21.5,
    })
    .unwrap();
    let running = start(set);
    let got = sim.wait_notifications("n", 1, WAIT).await.unwrap();
    assert_eq!(got[0].object, json!({"sensor": "t1", "value": 21.5}));
    running.stop().await.unwrap();
}

fn query_handlers() -> Handlers {
    Handlers::new().on_query(|mut query: Query| async move {
        let op = query.params()["op"].as_str().unwrap_or_default().to_owned();
        match op.as_str() {
            "chunks" => {
                query.partial(&json!([{"i": 0}, {"i": 1}])).await?;
                query.partial(&json!({"i": 2})).await?;
                query.complete(&json!([{"i": 3}])).await?;
            }
            "empty" => query.empty().await?,
            "error" => {
                query
                    .error(QueryError::new(
                        "t.bad",
                        "Bad {0} and {1}",
                        [json!("x"), json!(2)],
                    ))
                    .await?
            }
            "panic" => panic!("boom"),
            "fail" => return Err("handler says no".into()),
            "drop" => drop(query),
            "sleep" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                query.complete(&json!({"slept": true})).await?;
            }
            "forever" => std::future::pending::<()>().await,
            "moved" => {
                // Answered later from another task.
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    query.complete(&json!({"late": true})).await.unwrap();
                });
            }
            "map" => query.empty_map().await?,
            "explicit" => {
                let ctx = query.context().clone();
                let conn = query.connection().clone();
                assert!(matches!(
                    conn.send_query_response(&ctx, 201, Some(&json!({}))).await,
                    Err(QueryAnswerError::InvalidStatus(201))
                ));
                assert!(matches!(
                    conn.send_query_response(&ctx, QUERY_COMPLETE, None).await,
                    Err(QueryAnswerError::MissingBody(200))
                ));
                // A 204 carries no body, or `{}` (jdbcSource's; the op "map" below).
                assert!(matches!(
                    conn.send_query_response(&ctx, QUERY_EMPTY, Some(&json!({"x": 1})))
                        .await,
                    Err(QueryAnswerError::UnexpectedBody)
                ));
                assert!(matches!(
                    conn.send_query_response(&ctx, QUERY_EMPTY, Some(&json!([])))
                        .await,
                    Err(QueryAnswerError::UnexpectedBody)
                ));
                assert!(matches!(
                    conn.send_query_response(&ctx, QUERY_PARTIAL, Some(&json!([1])))
                        .await,
                    Err(QueryAnswerError::NotRows(_))
                ));
                conn.send_query_response(&ctx, QUERY_PARTIAL, Some(&json!({"p": 1})))
                    .await?;
                conn.send_query_response(&ctx, QUERY_COMPLETE, Some(&json!([{"p": 2}])))
                    .await?;
                assert!(matches!(
                    conn.send_query_response(&ctx, QUERY_COMPLETE, Some(&json!({})))
                        .await,
                    Err(QueryAnswerError::AlreadyAnswered)
                ));
                assert!(matches!(
                    conn.send_query_error(&ctx, QueryError::new("a", "b", Vec::<Value>::new()))
                        .await,
                    Err(QueryAnswerError::AlreadyAnswered)
                ));
            }
            _ => query.complete(&json!({"op": op})).await?,
        }
        Ok::<(), vantiq_connector_sdk::HandlerError>(())
    })
}

async fn query_set(sim: &vantiq_sim::Sim, deadline: Option<Duration>) -> Running {
    let settings = fast_settings()
        .to_builder()
        .query_deadline(deadline)
        .build();
    let set = ConnectorSet::builder(config_for(sim, &["q"]))
        .settings(settings)
        .handler(query_handlers())
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("q", WAIT).await.unwrap();
    running
}

#[tokio::test]
async fn queries_get_partial_final_empty_and_error_answers() {
    let sim = sim(&["q"]).await;
    let running = query_set(&sim, None).await;

    let out = sim.query("q", json!({"op": "chunks"}), WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(
        out.rows,
        vec![
            json!({"i":0}),
            json!({"i":1}),
            json!({"i":2}),
            json!({"i":3})
        ]
    );
    let statuses: Vec<_> = out
        .frames
        .iter()
        .map(|f| f["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [100, 100, 200]);

    let out = sim.query("q", json!({"op": "empty"}), WAIT).await.unwrap();
    assert_eq!(out.status, 204);
    assert!(out.rows.is_empty());

    let out = sim.query("q", json!({"op": "error"}), WAIT).await.unwrap();
    assert_eq!(out.status, 400);
    assert_eq!(
        out.error.unwrap(),
        json!({"messageCode": "t.bad", "messageTemplate": "Bad {0} and {1}", "parameters": ["x", 2]})
    );

    let out = sim.query("q", json!({"op": "moved"}), WAIT).await.unwrap();
    assert_eq!((out.status, out.rows), (200, vec![json!({"late": true})]));

    let out = sim
        .query("q", json!({"op": "explicit"}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.rows, vec![json!({"p": 1}), json!({"p": 2})]);

    // 204 with `{}`, as jdbcSource answers an update.
    let out = sim.query("q", json!({"op": "map"}), WAIT).await.unwrap();
    assert_eq!(out.status, 204);
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0]["body"], json!({}), "{:?}", out.frames);

    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let stats = running.set.connection("q").unwrap().stats();
    assert_eq!(stats.queries_answered, 5);
    assert_eq!(stats.queries_failed, 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn every_query_is_answered_even_when_the_handler_fails() {
    let sim = sim(&["q"]).await;
    let running = query_set(&sim, None).await;
    for (op, code) in [
        ("panic", "io.vantiq.connector.queryHandlerPanicked"),
        ("fail", "io.vantiq.connector.queryHandlerFailed"),
        ("drop", "io.vantiq.connector.queryNotAnswered"),
    ] {
        let out = sim.query("q", json!({"op": op}), WAIT).await.unwrap();
        assert!(out.status >= 400, "{op}: {out:?}");
        assert_eq!(out.error.as_ref().unwrap()["messageCode"], code, "{op}");
    }
    // The connection goes on.
    let out = sim.query("q", json!({"op": "hello"}), WAIT).await.unwrap();
    assert_eq!(out.rows, vec![json!({"op": "hello"})]);
    assert_eq!(sim.source_status("q").unwrap().connections, 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_query_over_its_deadline_gets_an_error() {
    let sim = sim(&["q"]).await;
    let running = query_set(&sim, Some(Duration::from_millis(100))).await;
    let out = sim
        .query("q", json!({"op": "forever"}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        out.error.unwrap()["messageCode"],
        "io.vantiq.connector.queryDeadlineExceeded"
    );
    let out = sim.query("q", json!({"op": "quick"}), WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_source_without_query_handler_answers_with_an_error() {
    let sim = sim(&["q"]).await;
    let set = ConnectorSet::builder(config_for(&sim, &["q"]))
        .settings(fast_settings())
        .handler(Handlers::new())
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("q", WAIT).await.unwrap();
    let out = sim.query("q", json!({}), WAIT).await.unwrap();
    assert_eq!(
        out.error.unwrap()["messageCode"],
        "io.vantiq.connector.noQueryHandler"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn queries_run_concurrently_with_publishes_and_each_other() {
    let sim = sim(&["q"]).await;
    let rec = Recorder::new();
    let r2 = rec.clone();
    let set = ConnectorSet::builder(config_for(&sim, &["q"]))
        .settings(fast_settings())
        .handler(query_handlers().on_publish(move |_ctx: Context, m: Value| {
            let r = r2.clone();
            async move { r.record(format!("publish {m}")) }
        }))
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("q", WAIT).await.unwrap();
    let slow = {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.query("q", json!({"op": "forever"}), Duration::from_millis(1500))
                .await
        })
    };
    // While that query hangs, other queries and publishes are served.
    let out = sim.query("q", json!({"op": "other"}), WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    sim.publish("q", json!({"x": 1})).await.unwrap();
    rec.expect("publish").await;
    assert!(!slow.is_finished());
    running.stop().await.unwrap();
    let _ = slow.await;
}

#[tokio::test]
async fn reconnects_after_an_abrupt_drop_and_alternates_connect_and_close() {
    let sim = sim(&["r"]).await;
    let (set, rec) = recording_set(&sim, &["r"]);
    let running = start(set);
    rec.expect("connect").await;
    let secret = sim.source_status("r").unwrap().reconnect_secrets;
    for n in 2..=4 {
        sim.drop_connection("r").await.unwrap();
        rec.expect("close").await;
        rec.expect("connect").await;
        sim.wait_connections("r", n, WAIT).await.unwrap();
    }
    // The same reconnect secret every time.
    assert_eq!(sim.source_status("r").unwrap().reconnect_secrets, secret);
    assert_eq!(secret.len(), 1);
    running.stop().await.unwrap();
    let kinds: Vec<String> = rec
        .entries()
        .iter()
        .filter_map(|e| e.split(' ').next().map(str::to_owned))
        .collect();
    assert_eq!(
        kinds,
        ["connect", "close", "connect", "close", "connect", "close", "connect", "close"]
    );
    let stats = running_stats_after(&sim);
    assert!(stats >= 4);
}

fn running_stats_after(sim: &vantiq_sim::Sim) -> u64 {
    sim.source_status("r").unwrap().connections
}

async fn reconfigure(style: ReconnectStyle) {
    let sim = sim(&["c"]).await;
    let rec = Recorder::new();
    let settings = fast_settings().to_builder().reconnect_style(style).build();
    let set = ConnectorSet::builder(config_for(&sim, &["c"]))
        .settings(settings)
        .handler(Recording(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    sim.set_config("c", json!({"version": 2})).await.unwrap();
    rec.expect("close").await;
    assert_eq!(rec.expect("connect").await, r#"connect c {"version":2}"#);
    sim.wait_connections("c", 2, WAIT).await.unwrap();
    // Still serving on the new configuration.
    let out = sim.query("c", json!({}), WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(sim.source_status("c").unwrap().reconnect_secrets.len(), 1);
    running.stop().await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn reconnect_required_redoes_the_handshake_on_a_new_socket() {
    reconfigure(ReconnectStyle::NewSocket).await;
}

#[tokio::test]
async fn reconnect_required_on_the_same_socket() {
    reconfigure(ReconnectStyle::SameSocket).await;
}

#[tokio::test]
async fn a_rejected_token_is_not_retried() {
    let sim = sim(&["a"]).await;
    let config = ServerConfig::builder(sim.http_url())
        .token("wrong-token-123")
        .source("a")
        .build()
        .unwrap();
    let err = run_to_error(config).await;
    match &err {
        Error::AuthenticationFailed {
            source_name,
            status,
            ..
        } => {
            assert_eq!(source_name, "a");
            assert_eq!(*status, 401);
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert!(err.to_string().contains("authentication failed"));
    assert!(!err.to_string().contains("wrong-token-123"));
    assert_eq!(sim.auth_failures(), 1);
}

#[tokio::test]
async fn username_and_password_authenticate() {
    let sim = sim(&["u"]).await;
    let config = ServerConfig::builder(sim.http_url())
        .user_password("alice", "wonder-pass-77")
        .source("u")
        .build()
        .unwrap();
    let set = ConnectorSet::builder(config)
        .settings(fast_settings())
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("u", WAIT).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn fail_on_connection_error_returns_the_first_failure() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = ServerConfig::builder(format!("http://127.0.0.1:{port}"))
        .token(TOKEN)
        .source("f")
        .fail_on_connection_error(true)
        .build()
        .unwrap();
    let err = run_to_error(config).await;
    assert!(matches!(err, Error::ConnectFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn notifications_sent_while_disconnected_go_out_after_reconnection() {
    let sim = sim(&["b"]).await;
    let (set, rec) = recording_set(&sim, &["b"]);
    let running = start(set);
    rec.expect("connect").await;
    let conn = running.set.connection("b").unwrap().clone();
    sim.stop().await;
    rec.expect("close").await;
    assert!(!conn.is_connected());
    for i in 0..100 {
        conn.send_notification(&json!({"while_down": i}))
            .await
            .unwrap();
    }
    assert_eq!(conn.stats().buffered, 100);
    sim.restart().await.unwrap();
    let got = sim.wait_notifications("b", 100, WAIT).await.unwrap();
    let expected: Vec<Value> = (0..100).map(|i| json!({"while_down": i})).collect();
    assert_eq!(objects(&got), expected);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_buffer_waits_or_fails_without_waiting() {
    let sim = sim(&["w"]).await;
    let settings = fast_settings().to_builder().buffer_capacity(3).build();
    let set = ConnectorSet::builder(config_for(&sim, &["w"]))
        .settings(settings)
        .build()
        .unwrap();
    let conn = set.connection("w").unwrap().clone();
    for i in 0..3 {
        conn.try_send_notification(&json!({"i": i})).unwrap();
    }
    assert!(matches!(
        conn.try_send_notification(&json!({"i": 3})),
        Err(NotifyError::BufferFull)
    ));
    // A waiting send completes once the connection drains the buffer.
    let waiting = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.send_notification(&json!({"i": 3})).await })
    };
    let running = start(set);
    waiting.await.unwrap().unwrap();
    let got = sim.wait_notifications("w", 4, WAIT).await.unwrap();
    assert_eq!(
        objects(&got),
        (0..4).map(|i| json!({"i": i})).collect::<Vec<_>>()
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn half_open_links_are_noticed_by_pings() {
    let sim = sim(&["p"]).await;
    let config = ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .source("p")
        .send_pings(true)
        .build()
        .unwrap();
    let settings = fast_settings()
        .to_builder()
        .ping_interval(Duration::from_millis(200))
        .build();
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config)
        .settings(settings)
        .handler(Recording(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    sim.go_silent("p").await.unwrap();
    let silent = std::time::Instant::now();
    rec.expect("close").await;
    let noticed = silent.elapsed();
    rec.expect("connect").await;
    eprintln!(
        "MEASURE half-open: ping interval 200 ms, dead link noticed after {noticed:?}, reconnected after {:?}",
        silent.elapsed()
    );
    sim.wait_connections("p", 2, WAIT).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_server_frames_are_skipped() {
    use vantiq_sim::RawFrame;
    let sim = sim(&["m"]).await;
    let (set, rec) = recording_set(&sim, &["m"]);
    let running = start(set);
    rec.expect("connect").await;
    for raw in [
        RawFrame::Text("not json".into()),
        RawFrame::Text("[1,2,3]".into()),
        RawFrame::Text(r#"{"hello":1}"#.into()),
        RawFrame::Text(r#"{"op":"dance"}"#.into()),
        RawFrame::Text(r#"{"op":"publish","resourceName":"sources","resourceId":"m"}"#.into()),
        RawFrame::Binary(vec![0xff, 0x00, 0x13]),
        RawFrame::Binary(
            br#"{"op":"publish","resourceName":"sources","resourceId":"m","object":{"bin":true}}"#
                .to_vec(),
        ),
        // JSON, but nested deeper than a tree is read (serde_json's limit of
        // 128): the connection task checks a publish's text without reading
        // it into a tree; the dispatcher refuses it when it does. In the
        // documented shape and in another.
        RawFrame::Text(format!(
            r#"{{"op":"publish","resourceName":"sources","resourceId":"m","object":{{"deep":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )),
        RawFrame::Text(format!(
            r#"{{"resourceId":"m","op":"publish","object":{{"deep":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )),
    ] {
        sim.send_raw("m", raw).await.unwrap();
    }
    sim.publish("m", json!({"after": true})).await.unwrap();
    assert_eq!(rec.expect("publish").await, r#"publish m {"bin":true}"#);
    assert_eq!(rec.expect("publish").await, r#"publish m {"after":true}"#);
    let conn = running.set.connection("m").unwrap();
    assert_eq!(conn.stats().malformed, 8);
    assert_eq!(conn.stats().connections, 1);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn several_sources_with_their_own_handlers() {
    let sim = sim(&["one", "two"]).await;
    let config = config_for(&sim, &["one", "two"]);
    let mut builder = ConnectorSet::builder(config).settings(fast_settings());
    for source in ["one", "two"] {
        let tag = format!("handled by {source}");
        builder = builder.source_handler(
            source,
            Handlers::new().on_query(move |q: Query| {
                let tag = tag.clone();
                async move { q.complete(&json!({"tag": tag})).await }
            }),
        );
    }
    let set = builder.build().unwrap();
    assert_eq!(set.sources().collect::<Vec<_>>(), ["one", "two"]);
    let running = start(set);
    for s in ["one", "two"] {
        sim.wait_connected(s, WAIT).await.unwrap();
        let out = sim.query(s, json!({}), WAIT).await.unwrap();
        assert_eq!(out.rows, vec![json!({"tag": format!("handled by {s}")})]);
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_health_probe_follows_declarations() {
    let sim = sim(&["h"]).await;
    let set = ConnectorSet::builder(config_for(&sim, &["h"]))
        .settings(fast_settings())
        .build()
        .unwrap();
    let conn = set.connection("h").unwrap().clone();
    assert_eq!(set.is_healthy(), None);
    conn.declare_healthy().unwrap();
    assert_eq!(set.is_healthy(), Some(true));
    let addr = set.health_probe().local_addr().expect("listening");
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("probe accepts");
    set.declare_unhealthy();
    assert_eq!(conn.is_healthy(), Some(false));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    set.declare_healthy().unwrap();
    let running = start(set);
    sim.wait_connected("h", WAIT).await.unwrap();
    let addr = running.set.health_probe().local_addr().unwrap();
    running.stop().await.unwrap();
    // Closing the set releases the probe's port.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn closing_ends_run_cleanly() {
    let sim = sim(&["x"]).await;
    let (set, rec) = recording_set(&sim, &["x"]);
    let conn = set.connection("x").unwrap().clone();
    let running = start(set);
    rec.expect("connect").await;
    running.stop().await.unwrap();
    assert_eq!(rec.expect("close").await, "close x");
    assert_eq!(conn.state(), ConnectionState::Closed);
    sim.wait_disconnected("x", WAIT).await.unwrap();
    assert!(matches!(
        conn.send_notification(&json!({})).await,
        Err(NotifyError::Closed)
    ));
}

#[tokio::test]
async fn typed_configuration_and_query_parameters() {
    #[derive(serde::Deserialize)]
    struct Config {
        name: String,
        version: u32,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        a: i64,
        b: Option<String>,
    }
    let sim = sim(&["typed"]).await;
    let rec = Recorder::new();
    let r = rec.clone();
    let set = ConnectorSet::builder(config_for(&sim, &["typed"]))
        .settings(fast_settings())
        .handler(
            Handlers::new()
                .on_connect_typed(move |_ctx: Context, config: Config| {
                    let r = r.clone();
                    async move { r.record(format!("connect {} v{}", config.name, config.version)) }
                })
                .on_query_typed(|query: Query, p: Params| async move {
                    query.complete(&json!({"a": p.a, "b": p.b})).await
                }),
        )
        .build()
        .unwrap();
    let running = start(set);
    assert_eq!(rec.expect("connect").await, "connect typed v1");
    let out = sim.query("typed", json!({"a": 5}), WAIT).await.unwrap();
    assert_eq!(out.rows, vec![json!({"a": 5, "b": null})]);
    let out = sim
        .query("typed", json!({"a": "five"}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.status, 400);
    let error = out.error.unwrap();
    assert_eq!(
        error["messageCode"],
        "io.vantiq.connector.invalidParameters"
    );
    assert!(
        error["parameters"][0]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{error}"
    );
    running.stop().await.unwrap();
}

/// A publish handler that waits holds the publishes after it, which then run
/// in order, 20 times over (on the one-threaded runtime publishes are taken
/// at once on the connection's task until one waits: this is the hand-over
/// from there to the dispatcher, and back).
async fn a_waiting_publish_handler_holds_the_later_ones_in_order() {
    let sim = sim(&["w"]).await;
    let rec = Recorder::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (r2, g2) = (rec.clone(), gate.clone());
    let set = ConnectorSet::builder(config_for(&sim, &["w"]))
        .settings(fast_settings())
        .handler(Handlers::new().on_publish(move |_ctx: Context, m: Value| {
            let (r, gate) = (r2.clone(), g2.clone());
            async move {
                if m["wait"] == json!(true) {
                    gate.acquire().await?.forget();
                }
                r.record(format!("publish {m}"));
                HandlerResult::Ok(())
            }
        }))
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("w", WAIT).await.unwrap();
    let conn = running.set.connection("w").unwrap().clone();
    for round in 0..20u64 {
        sim.publish("w", json!({"r": round, "i": 1})).await.unwrap();
        sim.publish("w", json!({"r": round, "i": 2, "wait": true}))
            .await
            .unwrap();
        sim.publish("w", json!({"r": round, "i": 3})).await.unwrap();
        sim.publish("w", json!({"r": round, "i": 4})).await.unwrap();
        assert_eq!(
            rec.expect("publish").await,
            format!(r#"publish {{"i":1,"r":{round}}}"#)
        );
        // Every publish of the round read by the connection before the
        // waiting one may go on.
        tokio::time::timeout(WAIT, async {
            while conn.stats().publishes < 4 * (round + 1) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the round's publishes read");
        assert_eq!(
            rec.entries().len() as u64,
            4 * round + 1,
            "{:?}",
            rec.entries()
        );
        gate.add_permits(1);
        for want in [
            r#"{"i":2,"r":R,"wait":true}"#,
            r#"{"i":3,"r":R}"#,
            r#"{"i":4,"r":R}"#,
        ] {
            let want = want.replace('R', &round.to_string());
            assert_eq!(rec.expect("publish").await, format!("publish {want}"));
        }
    }
    running.stop().await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn a_waiting_publish_handler_holds_the_later_ones_in_order_on_one_thread() {
    a_waiting_publish_handler_holds_the_later_ones_in_order().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_publish_handler_holds_the_later_ones_in_order_on_many_threads() {
    a_waiting_publish_handler_holds_the_later_ones_in_order().await;
}
