//! The pull style: the events of a connector set read in a loop.

mod common;

use common::*;
use serde_json::json;
use vantiq_connector_sdk::{event_stream, ConnectorSet, Event};

#[tokio::test]
async fn events_come_in_order_and_queries_keep_their_guarantee() {
    let sim = sim(&["s"]).await;
    let (handler, mut events) = event_stream(8);
    let running = start(
        ConnectorSet::builder(config_for(&sim, &["s"]))
            .settings(fast_settings())
            .handler(handler)
            .build()
            .unwrap(),
    );
    let Some(Event::Connected { ctx, config }) = events.next().await else {
        panic!("the first event is the connection");
    };
    assert_eq!(ctx.source(), "s");
    assert_eq!(config, json!({"name": "s", "version": 1}));
    sim.publish("s", json!({"n": 1})).await.unwrap();
    let Some(Event::Publish { ctx, message }) = events.next().await else {
        panic!("expected the publish");
    };
    ctx.connection().send_notification(&message).await.unwrap();
    assert_eq!(
        sim.wait_notifications("s", 1, WAIT).await.unwrap()[0].object,
        json!({"n": 1})
    );
    // A query answered from the loop, and one dropped unanswered.
    let sim = std::sync::Arc::new(sim);
    for answer in [true, false] {
        let asked = query_in_background(&sim, "s", json!({"a": answer}));
        let Some(Event::Query(query)) = events.next().await else {
            panic!("expected the query");
        };
        if answer {
            query.complete(&json!({"ok": true})).await.unwrap();
        } else {
            drop(query);
        }
        let out = asked.await.unwrap().unwrap();
        if answer {
            assert_eq!(out.rows, vec![json!({"ok": true})]);
        } else {
            assert_eq!(
                out.error.unwrap()["messageCode"],
                "io.vantiq.connector.queryNotAnswered"
            );
        }
    }
    // A reconnection: Closed, then Connected.
    sim.reconnect("s").await.unwrap();
    assert!(matches!(events.next().await, Some(Event::Closed { .. })));
    assert!(matches!(events.next().await, Some(Event::Connected { .. })));
    let set = running.set.clone();
    let stop = tokio::spawn(async move { running.stop().await });
    // Closing: the last event is the close.
    assert!(matches!(events.next().await, Some(Event::Closed { .. })));
    stop.await.unwrap().unwrap();
    drop(set);
}
