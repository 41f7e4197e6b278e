//! The life of a connection and its handlers: closed means closed, closing
//! waits for query handlers (then answers what is still open), query
//! handlers never hold up publishes, and what a handler's answer becomes
//! after a reconnection of either style.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use vantiq_connector_sdk::{
    ConnectionState, ConnectorSet, Context, HandlerError, HandlerResult, Handlers, NotifyError,
    OverflowPolicy, Query, QueryAnswerError, QueryError, ReconnectStyle, ServerConfig, Settings,
};

fn set_with(sim: &vantiq_sim::Sim, settings: Settings, handlers: Handlers) -> ConnectorSet {
    ConnectorSet::builder(config_for(sim, &["s"]))
        .settings(settings)
        .handler(handlers)
        .build()
        .unwrap()
}

fn echo_publishes() -> Handlers {
    Handlers::new().on_publish(|ctx: Context, m: Value| async move {
        ctx.connection().send_notification(&m).await
    })
}

#[tokio::test]
async fn after_close_notifications_fail_at_once() {
    let sim = sim(&["s"]).await;
    let running = start(set_with(&sim, fast_settings(), Handlers::new()));
    let conn = running.set.connection("s").unwrap().clone();
    assert!(conn.wait_connected().await);
    running.stop().await.unwrap();
    assert_eq!(conn.state(), ConnectionState::Closed);
    assert!(matches!(
        conn.send_notification(&json!({"late": 1})).await,
        Err(NotifyError::Closed)
    ));
    assert!(matches!(
        conn.try_send_notification(&json!({"late": 2})),
        Err(NotifyError::Closed)
    ));
    // `closed()` is already complete.
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
}

#[tokio::test]
async fn after_a_run_that_failed_notifications_fail_at_once() {
    let sim = sim(&["s"]).await;
    let config = ServerConfig::builder(sim.http_url())
        .token("not-the-token")
        .source("s")
        .tcp_probe_port(0)
        .build()
        .unwrap();
    let set = ConnectorSet::builder(config)
        .settings(fast_settings())
        .build()
        .unwrap();
    let error = tokio::time::timeout(WAIT, set.run()).await.unwrap();
    assert!(matches!(
        error,
        Err(vantiq_connector_sdk::Error::AuthenticationFailed { .. })
    ));
    let conn = set.connection("s").unwrap();
    assert_eq!(conn.state(), ConnectionState::Closed);
    assert!(matches!(
        conn.send_notification(&json!({"late": 1})).await,
        Err(NotifyError::Closed)
    ));
    // A closed set does not run again.
    assert!(matches!(
        set.run().await,
        Err(vantiq_connector_sdk::Error::Closed(_))
    ));
}

/// A producer waiting for room in a full buffer (the source cannot connect)
/// wakes with an error when the connection is closed, and the notifications
/// that were never sent are counted. Repeated: closing races the waiter.
#[tokio::test]
async fn a_producer_blocked_on_a_full_buffer_wakes_on_close() {
    for round in 0..20 {
        // No such source on the emulator: every attempt is refused.
        let sim = sim(&[]).await;
        let settings = fast_settings()
            .to_builder()
            .buffer_capacity(2)
            .overflow(OverflowPolicy::Wait)
            .build();
        let running = start(set_with(&sim, settings, Handlers::new()));
        let conn = running.set.connection("s").unwrap().clone();
        conn.send_notification(&json!({"n": 1})).await.unwrap();
        conn.send_notification(&json!({"n": 2})).await.unwrap();
        let producer = conn.clone();
        let blocked =
            tokio::spawn(async move { producer.send_notification(&json!({"n": 3})).await });
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        running.set.close().await;
        let result = tokio::time::timeout(WAIT, blocked).await.unwrap().unwrap();
        assert!(
            matches!(result, Err(NotifyError::Closed)),
            "round {round}: {result:?}"
        );
        assert_eq!(conn.stats().unsent_at_close, 2, "round {round}");
        // `flush` does not wait for what can never be sent.
        tokio::time::timeout(WAIT, conn.flush()).await.unwrap();
        running.task.await.unwrap().unwrap();
    }
}

/// Closing lets a running query handler finish and its answer go out.
#[tokio::test]
async fn close_waits_for_a_running_query_handler() {
    let sim = Arc::new(sim(&["s"]).await);
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let handlers = Handlers::new().on_query(move |q: Query| {
        let (s, r) = (s.clone(), r.clone());
        async move {
            s.notify_one();
            r.notified().await;
            q.complete(&json!({"finished": true})).await
        }
    });
    let settings = fast_settings()
        .to_builder()
        .close_timeout(Duration::from_secs(20))
        .build();
    let running = start(set_with(&sim, settings, handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let query = query_in_background(&sim, "s", json!({}));
    started.notified().await;
    let set = running.set.clone();
    let closing = tokio::spawn(async move { set.close().await });
    // Closing has begun and waits; the handler finishes now.
    release.notify_one();
    tokio::time::timeout(WAIT, closing).await.unwrap().unwrap();
    let out = query.await.unwrap().unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.rows, vec![json!({"finished": true})]);
    running.task.await.unwrap().unwrap();
}

/// A query handler that never answers: when the close timeout runs out the
/// query gets an error answer, and its handler is stopped.
#[tokio::test]
async fn close_answers_the_queries_still_open_and_stops_their_handlers() {
    let sim = Arc::new(sim(&["s"]).await);
    let started = Arc::new(Notify::new());
    let dropped = Arc::new(AtomicU64::new(0));
    struct CountDrop(Arc<AtomicU64>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (s, d) = (started.clone(), dropped.clone());
    let handlers = Handlers::new().on_query(move |q: Query| {
        let (s, d) = (s.clone(), d.clone());
        async move {
            let _guard = CountDrop(d);
            s.notify_one();
            std::future::pending::<()>().await;
            q.empty().await
        }
    });
    let settings = fast_settings()
        .to_builder()
        .close_timeout(Duration::from_millis(300))
        .build();
    let running = start(set_with(&sim, settings, handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let query = query_in_background(&sim, "s", json!({}));
    started.notified().await;
    running.set.close().await;
    let out = query.await.unwrap().unwrap();
    assert!(out.status >= 400);
    assert_eq!(
        out.error.unwrap()["messageCode"],
        "io.vantiq.connector.closing"
    );
    // The handler was stopped by the time close() returned.
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    running.task.await.unwrap().unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A query handler that blocks its thread before its first `.await` holds
/// up neither publishes nor other queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_query_handler_holds_up_nothing_else() {
    let sim = Arc::new(sim(&["s"]).await);
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
    let handlers = echo_publishes().on_query(move |q: Query| {
        let (rx, started) = (release_rx.clone(), started_tx.clone());
        async move {
            if q.params()["block"] == json!(true) {
                let _ = started.send(());
                // Blocks the worker thread until the test releases it.
                let _ = rx.lock().unwrap().recv();
            }
            let params = q.params().clone();
            q.complete(&json!({"done": params})).await
        }
    });
    let running = start(set_with(&sim, fast_settings(), handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let blocked = query_in_background(&sim, "s", json!({"block": true}));
    started_rx.recv().await.unwrap();
    // While that handler blocks: publishes are echoed and another query is answered.
    sim.publish("s", json!({"while": "blocked"})).await.unwrap();
    let echoed = sim.wait_notifications("s", 1, WAIT).await.unwrap();
    assert_eq!(echoed[0].object, json!({"while": "blocked"}));
    let other = sim.query("s", json!({"block": false}), WAIT).await.unwrap();
    assert_eq!(other.status, 200);
    release_tx.send(()).unwrap();
    assert_eq!(blocked.await.unwrap().unwrap().status, 200);
    running.stop().await.unwrap();
}

/// On the one-threaded runtime a query is polled by the dispatcher first; one
/// that has to wait moves to a task of its own and holds up neither publishes
/// nor other queries (nor itself: it is answered when what it waits for comes),
/// several at once.
#[tokio::test]
async fn a_waiting_query_handler_holds_up_nothing_else_on_one_thread() {
    let sim = Arc::new(sim(&["s"]).await);
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<()>();
    let r = release.clone();
    let handlers = echo_publishes().on_query(move |q: Query| {
        let (release, started) = (r.clone(), started_tx.clone());
        async move {
            if q.params()["wait"] == json!(true) {
                let _ = started.send(());
                release.acquire().await.unwrap().forget();
            }
            let params = q.params().clone();
            q.complete(&json!({"done": params})).await
        }
    });
    let running = start(set_with(&sim, fast_settings(), handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let waiting: Vec<_> = (0..3)
        .map(|i| query_in_background(&sim, "s", json!({"wait": true, "i": i})))
        .collect();
    for _ in 0..3 {
        started_rx.recv().await.unwrap();
    }
    for i in 0..5 {
        sim.publish("s", json!({"while": "waiting", "i": i}))
            .await
            .unwrap();
    }
    let echoed = sim.wait_notifications("s", 5, WAIT).await.unwrap();
    assert_eq!(echoed[4].object, json!({"while": "waiting", "i": 4}));
    let other = sim.query("s", json!({"wait": false}), WAIT).await.unwrap();
    assert_eq!(other.rows, vec![json!({"done": {"wait": false}})]);
    release.add_permits(3);
    for (i, query) in waiting.into_iter().enumerate() {
        let out = query.await.unwrap().unwrap();
        assert_eq!(out.rows, vec![json!({"done": {"wait": true, "i": i}})]);
    }
    running.stop().await.unwrap();
}

/// `run` returns only after the close handlers have run (a program that ends
/// when `run` returns loses none); repeated, as the close handlers run on
/// other tasks than `run`. (A source closed before its connect handler ran
/// gets no close handler either: connect and close alternate. So the test
/// waits for each source's first echo, which comes after its connect.)
#[tokio::test]
async fn run_returns_after_the_close_handlers_ran() {
    for round in 0..20 {
        let sim = sim(&["s1", "s2"]).await;
        let closed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let c = closed.clone();
        let handlers = echo_publishes().on_close(move |ctx: Context| {
            let c = c.clone();
            async move {
                // Work that takes a few turns of the runtime.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                c.lock().unwrap().push(ctx.source().to_owned());
            }
        });
        let set = ConnectorSet::builder(config_for(&sim, &["s1", "s2"]))
            .settings(fast_settings())
            .handler(handlers)
            .build()
            .unwrap();
        let running = start(set);
        for source in ["s1", "s2"] {
            sim.wait_connected(source, WAIT).await.unwrap();
            sim.publish(source, json!({"up": source})).await.unwrap();
            sim.wait_notifications(source, 1, WAIT).await.unwrap();
        }
        running.stop().await.unwrap();
        let mut got = closed.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, vec!["s1", "s2"], "round {round}");
    }
}

/// A QueryError returned from the handler is the answer, as it is; other
/// errors get the SDK's generic answer.
#[tokio::test]
async fn a_query_error_returned_by_the_handler_is_the_answer() {
    let sim = sim(&["s"]).await;
    let handlers = Handlers::new().on_query(|q: Query| async move {
        if q.params()["kind"] == "query" {
            let error: HandlerError = QueryError::new("my.code", "Bad {0}", ["thing"]).into();
            return Err(error);
        }
        Err("plain failure".into())
    });
    let running = start(set_with(&sim, fast_settings(), handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let out = sim
        .query("s", json!({"kind": "query"}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        out.error.unwrap(),
        json!({"messageCode": "my.code", "messageTemplate": "Bad {0}", "parameters": ["thing"]})
    );
    let out = sim
        .query("s", json!({"kind": "other"}), WAIT)
        .await
        .unwrap();
    let error = out.error.unwrap();
    assert_eq!(
        error["messageCode"],
        "io.vantiq.connector.queryHandlerFailed"
    );
    assert_eq!(error["parameters"], json!(["plain failure"]));
    running.stop().await.unwrap();
}

/// Typed parameters name the field that does not fit.
#[tokio::test]
async fn typed_parameters_name_the_field_that_failed() {
    #[derive(serde::Deserialize)]
    struct Params {
        #[allow(dead_code)]
        page: Page,
    }
    #[derive(serde::Deserialize)]
    struct Page {
        #[allow(dead_code)]
        count: usize,
    }
    let sim = sim(&["s"]).await;
    let handlers =
        Handlers::new().on_query_typed(|q: Query, _p: Params| async move { q.empty().await });
    let running = start(set_with(&sim, fast_settings(), handlers));
    sim.wait_connected("s", WAIT).await.unwrap();
    let out = sim
        .query("s", json!({"page": {"count": "2"}}), WAIT)
        .await
        .unwrap();
    let error = out.error.unwrap();
    assert_eq!(
        error["messageCode"],
        "io.vantiq.connector.invalidParameters"
    );
    let reason = error["parameters"][0].as_str().unwrap();
    assert!(
        reason.starts_with("page.count: invalid type: string \"2\""),
        "{reason}"
    );
    running.stop().await.unwrap();
}

/// Per-source state lives across reconnections; a rejected configuration is
/// remembered so that queries can say why.
#[tokio::test]
async fn per_source_state_and_the_reason_a_configuration_was_rejected() {
    #[derive(serde::Deserialize)]
    struct Config {
        #[allow(dead_code)]
        table: String,
    }
    #[derive(Default)]
    struct Connects(AtomicU64);
    let sim = sim(&["s"]).await;
    let handlers = Handlers::new()
        .on_connect_typed(|ctx: Context, _c: Config| async move {
            ctx.state::<Connects>().0.fetch_add(1, Ordering::SeqCst);
        })
        .on_query(|q: Query| async move {
            if let Some(reason) = q.ctx().config_rejection() {
                return Err(QueryError::config_rejected(reason).into());
            }
            let n = q.ctx().state::<Connects>().0.load(Ordering::SeqCst);
            q.complete(&json!({"connects": n})).await?;
            HandlerResult::Ok(())
        });
    let running = start(set_with(&sim, fast_settings(), handlers));
    // The emulator's configuration lacks `table`: rejected.
    sim.wait_connected("s", WAIT).await.unwrap();
    let out = sim.query("s", json!({}), WAIT).await.unwrap();
    let error = out.error.unwrap();
    assert_eq!(
        error["messageCode"],
        "io.vantiq.connector.configurationRejected"
    );
    assert!(error["parameters"][0].as_str().unwrap().contains("table"));
    // A good configuration, twice: the state counts both connections.
    sim.set_config("s", json!({"table": "t"})).await.unwrap();
    sim.wait_connections("s", 2, WAIT).await.unwrap();
    sim.reconnect("s").await.unwrap();
    sim.wait_connections("s", 3, WAIT).await.unwrap();
    let out = sim.query("s", json!({}), WAIT).await.unwrap();
    assert_eq!(out.rows, vec![json!({"connects": 2})]);
    running.stop().await.unwrap();
}

/// Both reconnect styles treat a query opened before the reconnection the
/// same way: its handler's answer is refused (the server dropped it).
#[tokio::test]
async fn a_query_from_before_a_reconnection_cannot_be_answered_in_either_style() {
    for style in [ReconnectStyle::NewSocket, ReconnectStyle::SameSocket] {
        let sim = Arc::new(sim(&["s"]).await);
        let started = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (result_tx, mut result_rx) = mpsc::unbounded_channel();
        let (s, r) = (started.clone(), release.clone());
        let handlers = Handlers::new().on_query(move |q: Query| {
            let (s, r, tx) = (s.clone(), r.clone(), result_tx.clone());
            async move {
                if q.params()["wait"] == json!(true) {
                    s.notify_one();
                    r.notified().await;
                }
                let result = q.complete(&json!({"ok": 1})).await;
                let _ = tx.send(result.map_err(|e| e.to_string()));
                Ok::<(), QueryAnswerError>(())
            }
        });
        let settings = fast_settings().to_builder().reconnect_style(style).build();
        let running = start(set_with(&sim, settings, handlers));
        let conn = running.set.connection("s").unwrap().clone();
        sim.wait_connected("s", WAIT).await.unwrap();
        let old = query_in_background(&sim, "s", json!({"wait": true}));
        started.notified().await;
        sim.reconnect("s").await.unwrap();
        sim.wait_connections("s", 2, WAIT).await.unwrap();
        assert!(conn.wait_connected().await);
        release.notify_one();
        let result = result_rx.recv().await.unwrap();
        assert_eq!(
            result,
            Err(QueryAnswerError::ConnectionLost.to_string()),
            "{style:?}"
        );
        // The old query was dropped by the server; a new one is answered.
        old.abort();
        let out = sim.query("s", json!({}), WAIT).await.unwrap();
        assert_eq!(out.status, 200, "{style:?}");
        assert_eq!(result_rx.recv().await.unwrap(), Ok(()));
        running.stop().await.unwrap();
        assert!(
            sim.violations().is_empty(),
            "{style:?}: {:?}",
            sim.violations()
        );
    }
}

/// A background producer on a cloned connection goes on across a
/// reconnection and stops when the connection is closed.
#[tokio::test]
async fn a_background_producer_lives_across_reconnections_and_ends_on_close() {
    let sim = sim(&["s"]).await;
    let running = start(set_with(&sim, fast_settings(), Handlers::new()));
    let conn = running.set.connection("s").unwrap().clone();
    let (tick_tx, mut tick_rx) = mpsc::unbounded_channel::<()>();
    let producer = conn.clone();
    let task = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            tokio::select! {
                tick = tick_rx.recv() => {
                    if tick.is_none() { break; }
                    producer.send_notification(&json!({"n": sent})).await.unwrap();
                    sent += 1;
                }
                () = producer.closed() => break,
            }
        }
        sent
    });
    sim.wait_connected("s", WAIT).await.unwrap();
    tick_tx.send(()).unwrap();
    sim.wait_notifications("s", 1, WAIT).await.unwrap();
    sim.drop_connection("s").await.unwrap();
    sim.wait_connections("s", 2, WAIT).await.unwrap();
    tick_tx.send(()).unwrap();
    let got = sim.wait_notifications("s", 2, WAIT).await.unwrap();
    assert_eq!(got[1].object, json!({"n": 1}));
    running.stop().await.unwrap();
    assert_eq!(tokio::time::timeout(WAIT, task).await.unwrap().unwrap(), 2);
}
