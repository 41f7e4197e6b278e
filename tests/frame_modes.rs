//! The SDK against the emulator in each frame mode: answering in the frame type the
//! connector uses (the default), and forced text or binary frames, since a Vantiq server
//! may answer in either. Handshake, publish echo, a chunked query and a reconnection.

mod common;

use common::*;
use serde_json::{json, Value};
use vantiq_connector_sdk::{ConnectorSet, Context, Handlers, Query};
use vantiq_sim::{FrameMode, FrameType, Sim};

fn echo() -> Handlers {
    Handlers::new()
        .on_publish(|ctx: Context, message: Value| async move {
            ctx.connection().send_notification(&message).await?;
            Ok::<(), vantiq_connector_sdk::HandlerError>(())
        })
        .on_query(|mut query: Query| async move {
            query.partial(&json!([{"i": 0}, {"i": 1}])).await?;
            query.complete(&json!([{"i": 2}])).await?;
            Ok::<(), vantiq_connector_sdk::HandlerError>(())
        })
}

async fn exercise(mode: FrameMode, expected: FrameType) {
    let sim = Sim::builder()
        .token(TOKEN)
        .source("f", json!({"v": 1}))
        .frames(mode)
        .start()
        .await
        .unwrap();
    let set = ConnectorSet::builder(config_for(&sim, &["f"]))
        .settings(fast_settings())
        .handler(echo())
        .build()
        .unwrap();
    let running = start(set);

    let status = sim.wait_connected("f", WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(expected), "{mode}");

    sim.publish("f", json!({"n": 1})).await.unwrap();
    let notes = sim.wait_notifications("f", 1, WAIT).await.unwrap();
    assert_eq!(notes[0].object, json!({"n": 1}), "{mode}");

    let out = sim.query("f", json!({}), WAIT).await.unwrap();
    assert_eq!(out.status, 200, "{mode}");
    assert_eq!(
        out.rows,
        [0, 1, 2].map(|i| json!({"i": i})).to_vec(),
        "{mode}"
    );

    sim.drop_connection("f").await.unwrap();
    sim.wait_connections("f", 2, WAIT).await.unwrap();
    sim.set_config("f", json!({"v": 2})).await.unwrap();
    let status = sim.wait_connections("f", 3, WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(expected), "{mode}");
    sim.publish("f", json!({"n": 2})).await.unwrap();
    let notes = sim.wait_notifications("f", 2, WAIT).await.unwrap();
    assert_eq!(notes[1].object, json!({"n": 2}), "{mode}");

    running.stop().await.unwrap();
    assert!(
        sim.violations().is_empty(),
        "{mode}: {:?}",
        sim.violations()
    );
}

#[tokio::test]
async fn the_default_mode_answers_the_sdk_in_its_text_frames() {
    exercise(FrameMode::Follow, FrameType::Text).await;
}

#[tokio::test]
async fn the_sdk_accepts_forced_text_frames() {
    exercise(FrameMode::Text, FrameType::Text).await;
}

#[tokio::test]
async fn the_sdk_accepts_forced_binary_frames() {
    exercise(FrameMode::Binary, FrameType::Binary).await;
}
