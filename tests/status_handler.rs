//! Java's HTTP handler: the error statuses a server reports after connecting
//! (about a notification it refused, say) reach `on_status`, with the
//! source's context, in order with the publishes; successful statuses (the
//! acknowledgements) do not.

mod common;

use common::*;
use serde_json::{json, Value};
use vantiq_connector_sdk::{ConnectorSet, Context, Handlers};
use vantiq_sim::RawFrame;

#[tokio::test]
async fn error_statuses_reach_the_status_handler_in_order() {
    let sim = sim(&["s"]).await;
    let rec = Recorder::new();
    let (on_publish, on_status) = (rec.clone(), rec.clone());
    let set = ConnectorSet::builder(config_for(&sim, &["s"]))
        .settings(fast_settings())
        .handler(
            Handlers::new()
                .on_publish(move |_ctx: Context, m: Value| {
                    let r = on_publish.clone();
                    async move { r.record(format!("publish {}", m["n"])) }
                })
                .on_status(move |ctx: Context, status: u16, body: Option<Value>| {
                    let r = on_status.clone();
                    async move {
                        let body = body.map(|b| b.to_string()).unwrap_or_default();
                        r.record(format!("status {} {status} {body}", ctx.source()))
                    }
                }),
        )
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("s", WAIT).await.unwrap();
    // An acknowledgement of a notification is not an error status.
    running
        .set
        .connection("s")
        .unwrap()
        .send_notification(&json!({"k": 1}))
        .await
        .unwrap();
    sim.wait_notifications("s", 1, WAIT).await.unwrap();
    sim.publish("s", json!({"n": 1})).await.unwrap();
    let refusal = r#"{"status":400,"body":[{"code":"io.vantiq.bad","message":"refused"}]}"#;
    sim.send_raw("s", RawFrame::Text(refusal.into()))
        .await
        .unwrap();
    sim.publish("s", json!({"n": 2})).await.unwrap();
    assert_eq!(rec.expect("publish").await, "publish 1");
    assert_eq!(
        rec.expect("status").await,
        r#"status s 400 [{"code":"io.vantiq.bad","message":"refused"}]"#
    );
    assert_eq!(rec.expect("publish").await, "publish 2");
    running.stop().await.unwrap();
    assert_eq!(
        rec.entries()
            .iter()
            .filter(|e| e.starts_with("status"))
            .count(),
        1,
        "{:?}",
        rec.entries()
    );
}
