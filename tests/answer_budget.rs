//! Query answers are held back when the server cannot take them: a handler
//! streaming 2,000,000 rows to an emulator that has stopped reading never has
//! more than the answer budget (plus one answer) waiting, and once reading
//! resumes every row arrives, in order.

mod common;

#[path = "../examples/common/echo_handler.rs"]
#[allow(dead_code)]
mod echo_handler;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use vantiq_connector_sdk::{defaults, ConnectorSet};

const ROWS: u64 = 2_000_000;
const CHUNK: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_to_a_server_that_stopped_reading_stays_within_the_budget() {
    let sim = Arc::new(sim(&["s"]).await);
    let running = start(
        ConnectorSet::builder(config_for(&sim, &["s"]))
            .settings(fast_settings())
            .handler(echo_handler::Echo::default())
            .build()
            .unwrap(),
    );
    let conn = running.set.connection("s").unwrap().clone();
    sim.wait_connected("s", WAIT).await.unwrap();
    sim.stop_reading("s").await.unwrap();

    let s = sim.clone();
    let query = tokio::spawn(async move {
        s.query(
            "s",
            json!({"op": "rows", "count": ROWS, "chunk": CHUNK}),
            Duration::from_secs(600),
        )
        .await
    });
    // Wait until the outbox is full: the socket's buffers are full and the
    // handler waits for room (the condition, not a duration).
    let budget = defaults::ANSWER_BUFFER_BYTES as u64;
    // The largest answer frame: a chunk of 1,000 rows `{"i":1999999}`.
    let frame = 48 + 32 + CHUNK * r#"{"i":1999999},"#.len() as u64;
    tokio::time::timeout(WAIT, async {
        while conn.stats().answer_bytes + frame <= budget {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the answers back up while the emulator does not read");
    assert!(!query.is_finished());

    sim.resume_reading("s").await.unwrap();
    let out = query.await.unwrap().unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.rows.len() as u64, ROWS);
    for (i, row) in out.rows.iter().enumerate() {
        assert_eq!(row, &json!({"i": i}), "row {i} out of order");
    }
    let stats = conn.stats();
    eprintln!(
        "MEASURE answer-budget: peak {} bytes of answers waiting (budget {budget}, frame {frame})",
        stats.answer_bytes_peak
    );
    assert!(
        stats.answer_bytes_peak <= budget + frame,
        "{} bytes waited, over the budget of {budget} plus one answer",
        stats.answer_bytes_peak
    );
    assert_eq!(stats.answer_bytes, 0);
    running.stop().await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
