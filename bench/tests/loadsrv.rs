//! The load server of the single-source figures against real clients on loopback: the
//! floor's code and the ceiling's trivial client through every job, and a hand-driven
//! client that breaks the protocol.

use std::time::Duration;

use serde_json::{json, Value};
use vantiq_bench::config::{server_config, TOKEN};
use vantiq_bench::driver::workload::{
    check_queries, notify_job, publish_job, queries_job, IN_FLIGHT, SRC,
};
use vantiq_bench::floor::FloorThread;
use vantiq_bench::loadsrv::LoadServer;
use vantiq_bench::rawws::{self, put, Conn};
use vantiq_sim::kinds;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `client` on a thread of its own with its own one-threaded runtime, as a connector
/// process would be (left running: the test process ends it).
fn on_own_thread(client: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client)
    });
}

async fn server() -> LoadServer {
    LoadServer::start(TOKEN, SRC, json!({"bench": true}))
        .await
        .expect("a free port")
}

/// Every job the figures use, with its counts checked.
async fn every_job(server: &LoadServer) {
    for windowed in [false, true] {
        let report = server
            .run(publish_job(6_000, windowed), LIMIT)
            .await
            .expect("publishes echoed");
        assert!(report.rate(6_000) > 0.0);
    }
    server
        .run(notify_job(3_000), LIMIT)
        .await
        .expect("notifications and the final answer");
    for in_flight in [1, IN_FLIGHT] {
        let report = server
            .run(queries_job(1_000, in_flight), LIMIT)
            .await
            .expect("queries answered");
        check_queries(&report, 1_000).expect("one row each");
        assert_eq!(report.latencies.len(), 1_000);
        assert!(report.latency_us(99.0) >= report.latency_us(50.0));
    }
    assert_eq!(server.violations(), (0, Vec::new()));
}

#[tokio::test]
async fn the_floor_is_driven_through_every_job() {
    let server = server().await;
    let config = server_config(&server.http_url(), &[SRC.into()]).unwrap();
    let _floor = FloorThread::start(&config, Duration::from_millis(10)).unwrap();
    server.wait_connected(LIMIT).await.unwrap();
    every_job(&server).await;
}

#[tokio::test]
async fn the_trivial_client_is_driven_through_every_job() {
    let server = server().await;
    let config = server_config(&server.http_url(), &[SRC.into()]).unwrap();
    on_own_thread(async move {
        let _ = vantiq_bench::trivial::serve(&config, Duration::from_millis(10)).await;
    });
    server.wait_connected(LIMIT).await.unwrap();
    every_job(&server).await;
}

/// The next text frame the hand client gets, parsed.
async fn next(conn: &mut Conn) -> Value {
    loop {
        if let Some(f) = conn.input.frame().unwrap() {
            return serde_json::from_slice(&conn.input.bytes()[f.payload]).unwrap();
        }
        conn.io().await.unwrap();
    }
}

async fn send(conn: &mut Conn, v: Value) {
    put(
        &mut conn.out,
        rawws::TEXT,
        &[v.to_string().as_bytes()],
        true,
    );
    conn.flush().await.unwrap();
}

#[tokio::test]
async fn broken_notifications_are_violations_and_unasked_ones_fail_the_next_job() {
    let server = server().await;
    let addr = server.http_url();
    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = Conn::connect(addr, "/api/v1/wsock/websocket")
        .await
        .unwrap();
    send(
        &mut conn,
        json!({"op":"validate","resourceName":"system.credentials","object":"wrong"}),
    )
    .await;
    assert_eq!(
        next(&mut conn).await["status"],
        401,
        "a wrong token is refused"
    );
    send(
        &mut conn,
        json!({"op":"validate","resourceName":"system.credentials","object":TOKEN}),
    )
    .await;
    assert_eq!(next(&mut conn).await["status"], 200);
    send(
        &mut conn,
        json!({"op":"connectExtension","resourceName":"sources","resourceId":SRC,
               "parameters":{"reconnectSecret":"s"}}),
    )
    .await;
    assert_eq!(next(&mut conn).await["status"], 200);
    assert_eq!(
        next(&mut conn).await["object"]["config"],
        json!({"bench": true})
    );
    server.wait_connected(LIMIT).await.unwrap();

    let notification = |id: &str, object: Value| json!({"op":"notification","resourceName":"sources","resourceId":id,"object":object});
    send(&mut conn, notification("other", json!({}))).await;
    send(&mut conn, notification(SRC, json!([1]))).await;
    for _ in 0..2 {
        assert_eq!(
            next(&mut conn).await["status"],
            400,
            "refused, as the emulator does"
        );
    }
    // Two good ones no job asked for: acknowledged, and the next job refuses to start.
    send(&mut conn, notification(SRC, json!({"a": 1}))).await;
    send(&mut conn, notification(SRC, json!({"a": 2}))).await;
    for _ in 0..2 {
        assert_eq!(next(&mut conn).await, json!({"status": 200}));
    }
    let failed = server.run(notify_job(1), LIMIT).await.unwrap_err();
    assert!(
        failed.contains("2 notifications received, 0 asked for"),
        "{failed}"
    );
    let (count, first) = server.violations();
    assert_eq!(count, 2, "{first:?}");
    assert!(
        first[0].starts_with(kinds::NOTIFICATION_WRONG_SOURCE),
        "{first:?}"
    );
    assert!(
        first[1].starts_with(kinds::NOTIFICATION_NOT_OBJECT),
        "{first:?}"
    );
}

/// The floor with `opts`, on a thread of its own, through every job.
async fn floor_through_every_job(opts: vantiq_bench::floor::Opts) {
    let server = server().await;
    let config = server_config(&server.http_url(), &[SRC.into()]).unwrap();
    on_own_thread(async move {
        for task in
            vantiq_bench::floor::spawn_all(&config, Duration::from_millis(10), opts).unwrap()
        {
            let _ = task.await;
        }
    });
    server.wait_connected(LIMIT).await.unwrap();
    every_job(&server).await;
}

#[tokio::test]
async fn the_checking_floor_is_driven_through_every_job() {
    floor_through_every_job(vantiq_bench::floor::Opts {
        check: true,
        ..Default::default()
    })
    .await;
}

#[tokio::test]
async fn the_handing_off_floor_is_driven_through_every_job() {
    floor_through_every_job(vantiq_bench::floor::Opts {
        handoff: true,
        ..Default::default()
    })
    .await;
}

#[test]
fn the_checking_floor_takes_json_objects_only() {
    use vantiq_bench::floor::checked_object;
    assert_eq!(
        checked_object(r#"{"a":[1,2.50]}"#),
        Some(r#"{"a":[1,2.50]}"#)
    );
    assert_eq!(checked_object(" {} "), Some("{}"));
    for refused in ["[1]", "7", "\"s\"", "null", "{", r#"{"a":1}x"#, ""] {
        assert_eq!(checked_object(refused), None, "{refused}");
    }
}

#[tokio::test]
async fn the_floor_with_a_window_is_driven_through_every_job() {
    floor_through_every_job(vantiq_bench::floor::Opts {
        // Small, so that the 3,000 notifications wait for acknowledgements often.
        window: Some(16),
        ..Default::default()
    })
    .await;
}
