//! The query load generator (`Sim::query_load`, the control API's `query-load`), driven
//! against a plain WebSocket client that answers the queries itself.

mod common;

use common::{Conn, WAIT};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::task::JoinHandle;
use vantiq_sim::client::Client;
use vantiq_sim::{kinds, QueryLoad, QueryLoadReport, Sim, SimError};

async fn sim() -> Sim {
    Sim::builder()
        .token("good")
        .source("src", json!({}))
        .start()
        .await
        .expect("start")
}

/// Starts a load run in a task of its own (the test plays the connector meanwhile).
fn start(
    sim: &Sim,
    params: Value,
    load: QueryLoad,
) -> JoinHandle<Result<QueryLoadReport, SimError>> {
    let sim = sim.clone();
    tokio::spawn(async move { sim.query_load("src", params, load).await })
}

/// The query's parameters and reply address.
async fn next_query(conn: &mut Conn) -> (Value, String) {
    let q = conn.recv().await;
    assert_eq!(q["op"], "query", "{q}");
    assert_eq!(q["resourceName"], "sources");
    assert_eq!(q["resourceId"], "src");
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .expect("reply address")
        .to_owned();
    (q["object"].clone(), addr)
}

/// Answers `n` queries as they come: a partial answer then a final one with a row each,
/// except that every fifth query fails. Returns the largest number of queries that were
/// waiting at once (read before any was answered).
async fn serve(conn: &mut Conn, n: usize, in_flight: usize) -> usize {
    let mut waiting = Vec::new();
    let mut most = 0;
    let mut answered = 0;
    while answered < n {
        // Take every query the emulator may have in flight before answering one.
        while waiting.len() < in_flight.min(n - answered) {
            let (params, addr) = next_query(conn).await;
            assert_eq!(params, json!({"op": "rows", "count": 1}));
            waiting.push(addr);
        }
        most = most.max(waiting.len());
        let addr = waiting.remove(0);
        if answered % 5 == 4 {
            conn.answer(&addr, 400, Some(json!([{"code": "x", "message": "no"}])))
                .await;
        } else {
            conn.answer(&addr, 100, Some(json!([{"part": 1}]))).await;
            conn.answer(&addr, 200, Some(json!([{"i": answered}])))
                .await;
        }
        answered += 1;
    }
    most
}

#[tokio::test]
async fn a_load_keeps_its_queries_in_flight_and_counts_every_answer() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(
        &sim,
        json!({"op": "rows", "count": 1}),
        QueryLoad::new(50, 4),
    );
    let most = serve(&mut c, 50, 4).await;
    let report = run.await.unwrap().expect("the load completes");
    assert_eq!(most, 4, "four queries are kept in flight");
    assert_eq!(report.answered, 50);
    assert_eq!(report.errors, 10);
    assert_eq!(
        report.rows, 80,
        "two rows for each of the 40 successful queries"
    );
    assert_eq!(report.latencies.len(), 50);
    let p50 = report.latency_percentile(50.0).unwrap();
    let p99 = report.latency_percentile(99.0).unwrap();
    assert!(
        p50 <= p99 && p99 <= report.elapsed,
        "{p50:?} {p99:?} {:?}",
        report.elapsed
    );
    assert!(report.rate() > 0.0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());

    // An ordinary query still works beside (and after) a load.
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.query("src", json!({"op": "rows", "count": 1}), WAIT)
                .await
        })
    };
    let (_, addr) = next_query(&mut c).await;
    c.answer(&addr, 200, Some(json!({"i": 1}))).await;
    assert_eq!(q.await.unwrap().unwrap().rows, vec![json!({"i": 1})]);
}

#[tokio::test]
async fn a_sequential_load_sends_each_query_after_the_last_final_answer() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(
        &sim,
        json!({"op": "rows", "count": 1}),
        QueryLoad::new(5, 1),
    );
    let mut last = None;
    for i in 0..5 {
        let (_, addr) = next_query(&mut c).await;
        assert_ne!(
            Some(&addr),
            last.as_ref(),
            "each query has its own reply address"
        );
        // A partial answer does not release the next query; the final one does. (That no
        // more than `in_flight` are ever sent is the unit tests' part, in `load.rs`.)
        c.answer(&addr, 100, Some(json!({"part": i}))).await;
        c.answer(&addr, 200, Some(json!([{"i": i}]))).await;
        last = Some(addr);
    }
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.answered, report.rows, report.errors), (5, 10, 0));
}

#[tokio::test]
async fn malformed_and_repeated_answers_in_a_load_are_violations() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(&sim, json!({}), QueryLoad::new(2, 1));
    let (_, addr) = next_query(&mut c).await;
    c.answer(&addr, 200, Some(json!([1, 2]))).await;
    c.answer(&addr, 200, Some(json!([{"again": true}]))).await;
    let (_, addr) = next_query(&mut c).await;
    c.answer(&addr, 200, None).await;
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.answered, 2);
    let kinds_seen: Vec<String> = sim.violations().into_iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds_seen,
        [kinds::BAD_BODY, kinds::ANSWER_AFTER_FINAL, kinds::BAD_BODY],
        "{:?}",
        sim.violations()
    );
}

#[tokio::test]
async fn a_second_load_on_a_busy_source_is_refused() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let first = start(&sim, json!({}), QueryLoad::new(1, 1));
    let (_, addr) = next_query(&mut c).await;
    let second = sim.query_load("src", json!({}), QueryLoad::new(1, 1)).await;
    assert!(matches!(second, Err(SimError::Busy(_))), "{second:?}");
    c.answer(&addr, 204, None).await;
    assert_eq!(first.await.unwrap().unwrap().answered, 1);
}

#[tokio::test]
async fn a_load_on_an_unconnected_source_fails_and_an_empty_load_is_immediate() {
    let sim = sim().await;
    assert!(matches!(
        sim.query_load("src", json!({}), QueryLoad::new(10, 1))
            .await,
        Err(SimError::NotConnected(_))
    ));
    assert!(matches!(
        sim.query_load("nope", json!({}), QueryLoad::new(10, 1))
            .await,
        Err(SimError::UnknownSource(_))
    ));
    let (_c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let report = sim
        .query_load("src", json!({}), QueryLoad::new(0, 1))
        .await
        .unwrap();
    assert_eq!(report.answered, 0);
}

#[tokio::test]
async fn a_load_whose_connection_is_lost_fails() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(&sim, json!({}), QueryLoad::new(3, 1));
    next_query(&mut c).await;
    drop(c);
    let result = run.await.unwrap();
    assert!(
        matches!(result, Err(SimError::ConnectionLost(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_timed_out_load_is_abandoned_and_its_late_answers_ignored() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(
        &sim,
        json!({}),
        QueryLoad::new(3, 1).timeout(Duration::from_millis(100)),
    );
    let (_, addr) = next_query(&mut c).await;
    let result = run.await.unwrap();
    let Err(SimError::Timeout(text)) = result else {
        panic!("expected a timeout, got {result:?}");
    };
    assert!(text.contains("0 of 3 queries answered"), "{text}");
    c.answer(&addr, 200, Some(json!({}))).await;
    // Prove the late answer was processed: a notification sent after it is recorded.
    c.notify("src", json!({"after": true})).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();
    assert_eq!(
        c.recv().await,
        json!({"status": 200}),
        "the notification's acknowledgement"
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    // No further query was sent for the abandoned run; a new load can start.
    let again = start(&sim, json!({"n": 2}), QueryLoad::new(1, 1));
    let (params, addr) = next_query(&mut c).await;
    assert_eq!(
        params,
        json!({"n": 2}),
        "the abandoned run sent nothing more"
    );
    c.answer(&addr, 204, None).await;
    assert_eq!(again.await.unwrap().unwrap().answered, 1);
}

#[tokio::test]
async fn query_load_over_http_and_its_bad_parameters() {
    let sim = sim().await;
    let client = Client::new(&sim.http_url()).unwrap();
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .query_load(
                    "src",
                    &json!({"op": "rows", "count": 1}),
                    10,
                    2,
                    Some(10_000),
                )
                .await
        })
    };
    serve(&mut c, 10, 2).await;
    let summary = run.await.unwrap().unwrap();
    assert_eq!(
        (summary.answered, summary.errors, summary.rows),
        (10, 2, 16)
    );
    let l = &summary.latency_us;
    assert!(
        0.0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max,
        "{l:?}"
    );
    assert!(summary.rate > 0.0 && summary.elapsed_ms > 0.0);

    let (status, body) = client
        .request(
            "POST",
            "/sim/sources/src/query-load?in_flight=0",
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = client
        .request("POST", "/sim/sources/nope/query-load", Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn an_answer_to_a_load_query_not_yet_sent_is_a_violation() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let run = start(&sim, json!({}), QueryLoad::new(2, 1));
    let (_, addr) = next_query(&mut c).await;
    let number: u64 = addr
        .trim_start_matches("sim-reply-")
        .parse()
        .expect("a numbered address");
    let ahead = format!("sim-reply-{}", number + 1);
    c.answer(&ahead, 200, Some(json!({}))).await;
    let seen = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(seen[0].kind, kinds::UNKNOWN_REPLY_ADDRESS, "{seen:?}");
    // The run goes on: the real answers still count.
    c.answer(&addr, 204, None).await;
    let (_, second) = next_query(&mut c).await;
    assert_eq!(second, ahead);
    c.answer(&second, 204, None).await;
    assert_eq!(run.await.unwrap().unwrap().answered, 2);
}
