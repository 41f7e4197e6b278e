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

/// An answer whose future is dropped while it waits for room (a `select!`, a timeout,
/// the Python package's attempt without waiting) claims nothing: the final answer given
/// again afterwards goes out, and the query ends with it. Before, the dropped final
/// answer had marked the query answered, and the stream never finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_answer_dropped_while_it_waits_can_be_given_again() {
    use futures_util::FutureExt;
    use vantiq_connector_sdk::{Handlers, Query};

    let sim = Arc::new(sim(&["s"]).await);
    let (stalled_tx, stalled_rx) = tokio::sync::oneshot::channel::<u64>();
    let stalled_tx = std::sync::Mutex::new(Some(stalled_tx));
    let handlers = Handlers::new().on_query(move |query: Query| {
        let stalled = stalled_tx.lock().unwrap().take();
        async move {
            let conn = query.connection().clone();
            let ctx = query.context().clone();
            let mut sent = 0u64;
            // Partial answers until one has to wait: the budget is full.
            loop {
                let rows: Vec<_> = (sent..sent + CHUNK).map(|i| json!({"i": i})).collect();
                let body = json!(rows);
                match conn
                    .send_query_response(&ctx, 100, Some(&body))
                    .now_or_never()
                {
                    Some(result) => result?,
                    None => break,
                }
                sent += CHUNK;
            }
            // Larger than the partial that did not fit, so that it cannot fit either.
            let last: Vec<_> = (sent..sent + 2 * CHUNK).map(|i| json!({"i": i})).collect();
            let last = json!(last);
            // The final answer, tried without waiting and dropped...
            assert!(conn
                .send_query_response(&ctx, 200, Some(&last))
                .now_or_never()
                .is_none());
            stalled.expect("one query").send(sent).unwrap();
            // ...then given again, waiting: it must go out.
            conn.send_query_response(&ctx, 200, Some(&last)).await?;
            drop(query);
            let done: vantiq_connector_sdk::HandlerResult = Ok(());
            done
        }
    });
    let running = start(
        ConnectorSet::builder(config_for(&sim, &["s"]))
            .settings(fast_settings())
            .handler(handlers)
            .build()
            .unwrap(),
    );
    sim.wait_connected("s", WAIT).await.unwrap();
    sim.stop_reading("s").await.unwrap();
    let s = sim.clone();
    let query =
        tokio::spawn(async move { s.query("s", json!({}), Duration::from_secs(120)).await });
    let sent = tokio::time::timeout(WAIT, stalled_rx)
        .await
        .unwrap()
        .unwrap();
    sim.resume_reading("s").await.unwrap();
    let out = query.await.unwrap().unwrap();
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(out.rows.len() as u64, sent + 2 * CHUNK);
    for (i, row) in out.rows.iter().enumerate() {
        assert_eq!(row, &json!({"i": i}), "row {i} out of order");
    }
    running.stop().await.unwrap();
}
