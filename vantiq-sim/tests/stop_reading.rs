//! The "stop reading" fault: the emulator stops reading a source's connection and keeps
//! it open, so the connector's writes back up for real; after resuming, everything sent
//! meanwhile arrives in order.

mod common;

use common::{Conn, WAIT};
use futures_util::future::poll_fn;
use futures_util::{FutureExt, Sink, SinkExt};
use serde_json::json;
use std::pin::Pin;
use tokio_tungstenite::tungstenite::Message;
use vantiq_sim::client::{Client, ClientError};
use vantiq_sim::{Sim, SimError};

async fn sim() -> Sim {
    Sim::builder()
        .token("t")
        .source("src", json!({}))
        .source("idle", json!({}))
        .acks(false)
        .start()
        .await
        .unwrap()
}

fn notification(n: usize, pad: &str) -> Message {
    let msg = json!({"op": "notification", "resourceName": "sources", "resourceId": "src",
                     "object": {"n": n, "pad": pad}});
    Message::text(msg.to_string())
}

/// Queues notifications on `conn` until its socket will take no more (the kernel's
/// buffers on both sides are full); returns how many were accepted.
fn write_until_blocked(conn: &mut Conn, first: usize) -> usize {
    let pad = "x".repeat(64 * 1024);
    let mut n = first;
    loop {
        let ready = poll_fn(|cx| Pin::new(&mut conn.ws).poll_ready(cx)).now_or_never();
        match ready {
            None => return n - first,
            Some(r) => r.expect("writable"),
        }
        Pin::new(&mut conn.ws)
            .start_send(notification(n, &pad))
            .expect("queued");
        n += 1;
        assert!(
            n - first < 4096,
            "256 MiB written and never held up: the emulator is still reading"
        );
    }
}

/// Multi-threaded, so the emulator runs while the test writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_not_read_holds_up_the_connector_and_loses_nothing() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    c.notify("src", json!({"n": 0, "pad": ""})).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();

    sim.stop_reading("src").await.unwrap();
    let status = sim.source_status("src").unwrap();
    assert!(status.reading_stopped && status.connected, "{status:?}");

    let queued = write_until_blocked(&mut c, 1);
    assert!(queued > 0);
    // The connector stays held up: a server that read would drain the buffers. (That
    // nothing happens can only be checked over a while; the wait cannot make a correct
    // emulator fail, only a reading one pass unnoticed if it read that slowly.)
    let unblocked = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        poll_fn(|cx| Pin::new(&mut c.ws).poll_ready(cx)),
    )
    .await;
    assert!(unblocked.is_err(), "the connector's writes went through");
    assert_eq!(sim.notifications("src", 0).len(), 1, "nothing read since");
    // The connection is still open: publishes still go out.
    sim.publish("src", json!({"still": "sending"}))
        .await
        .unwrap();
    assert_eq!(c.recv().await["object"], json!({"still": "sending"}));
    let status = sim.source_status("src").unwrap();
    assert_eq!((status.connected, status.connections), (true, 1));

    sim.resume_reading("src").await.unwrap();
    assert!(!sim.source_status("src").unwrap().reading_stopped);
    tokio::time::timeout(WAIT, c.ws.flush())
        .await
        .expect("the connector's writes go through once reading resumes")
        .unwrap();
    let all = sim
        .wait_notifications("src", 1 + queued, WAIT)
        .await
        .unwrap();
    let order: Vec<u64> = all
        .iter()
        .map(|n| n.object["n"].as_u64().unwrap())
        .collect();
    assert_eq!(order, (0..=queued as u64).collect::<Vec<_>>());
    assert_eq!(sim.source_status("src").unwrap().connections, 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn stopping_and_resuming_twice_and_errors() {
    let sim = sim().await;
    assert!(matches!(
        sim.stop_reading("nope").await,
        Err(SimError::UnknownSource(_))
    ));
    assert!(matches!(
        sim.stop_reading("idle").await,
        Err(SimError::NotConnected(_))
    ));
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    for round in 0..2 {
        sim.stop_reading("src").await.unwrap();
        sim.stop_reading("src").await.unwrap();
        c.notify("src", json!({"n": round})).await;
        sim.resume_reading("src").await.unwrap();
        sim.resume_reading("src").await.unwrap();
        sim.wait_notifications("src", round + 1, WAIT)
            .await
            .unwrap();
    }
    // A connection whose reading is stopped can still be cut.
    sim.stop_reading("src").await.unwrap();
    sim.drop_connection("src").await.unwrap();
    assert_eq!(c.ending().await, common::Ending::Abrupt);
    sim.wait_disconnected("src", WAIT).await.unwrap();
    assert!(!sim.source_status("src").unwrap().reading_stopped);
}

#[tokio::test]
async fn the_control_api_stops_and_resumes_reading() {
    let sim = sim().await;
    let client = Client::new(&sim.http_url()).unwrap();
    let status = |e: ClientError| match e {
        ClientError::Http { status, .. } => status,
        other => panic!("{other}"),
    };
    assert_eq!(status(client.stop_reading("nope").await.unwrap_err()), 404);
    assert_eq!(
        status(client.resume_reading("idle").await.unwrap_err()),
        409
    );
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    client.stop_reading("src").await.unwrap();
    assert!(client.source("src").await.unwrap().reading_stopped);
    c.notify("src", json!({"n": 0})).await;
    client.resume_reading("src").await.unwrap();
    let notes = client.notifications("src", 0, Some(10_000)).await.unwrap();
    assert_eq!(notes[0].object, json!({"n": 0}));
    assert!(!client.source("src").await.unwrap().reading_stopped);
}
