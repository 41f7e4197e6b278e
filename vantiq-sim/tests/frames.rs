//! Frame types: the emulator answers each connection in the frame type its connector
//! uses (a Java SDK connector reads only binary frames), or in one forced type; and it
//! says so when a connector authenticates but never connects a source.

mod common;

use common::java::JavaConn;
use common::{Conn, WAIT};
use serde_json::{json, Value};
use std::time::Duration;
use vantiq_sim::client::Client;
use vantiq_sim::{kinds, FrameMode, FrameType, RawFrame, Sim};

async fn sim(mode: FrameMode) -> Sim {
    Sim::builder()
        .token("tok")
        .source("src", json!({"v": 1}))
        .frames(mode)
        .start()
        .await
        .expect("start")
}

/// Everything a Java SDK connector does, in the default mode: handshake, publish echo,
/// a chunked query, a 204 with `"body": null`, a single error object for a 400,
/// `reconnectRequired` answered on the same socket, a drop and a reconnection; every
/// frame the emulator sends is binary, and nothing is a violation.
#[tokio::test]
async fn a_java_shaped_connector_is_served_completely_in_the_default_mode() {
    let sim = sim(FrameMode::Follow).await;
    let (mut java, config) = JavaConn::handshake(&sim.ws_url(), "tok", "src", "secret-1").await;
    assert_eq!(config, json!({"v": 1}));
    let status = sim.wait_connected("src", WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(FrameType::Binary));

    // Publish echo.
    sim.publish("src", json!({"x": 1.5, "big": 18446744073709551617u128}))
        .await
        .unwrap();
    let publish = java.recv().await;
    assert_eq!(publish["op"], "publish", "{publish}");
    java.notify(publish["object"].clone()).await;
    let notes = sim.wait_notifications("src", 1, WAIT).await.unwrap();
    assert_eq!(
        notes[0].object,
        json!({"x": 1.5, "big": 18446744073709551617u128})
    );
    assert_eq!(java.recv().await["status"], 200, "the acknowledgement");

    // A chunked query: two partial answers (a list, then one map), then the final one.
    let query = tokio::spawn({
        let sim = sim.clone();
        async move { sim.query("src", json!({"op": "rows"}), WAIT).await }
    });
    let (params, addr) = java.next_query().await;
    assert_eq!(params, json!({"op": "rows"}));
    java.answer(&addr, 100, json!([{"i": 0}, {"i": 1}])).await;
    java.answer(&addr, 100, json!({"i": 2})).await;
    java.answer(&addr, 200, json!([{"i": 3}])).await;
    let out = query.await.unwrap().unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(
        out.rows,
        [0, 1, 2, 3].map(|i| json!({"i": i})).to_vec(),
        "{out:?}"
    );

    // No data: 204 with "body": null.
    let query = tokio::spawn({
        let sim = sim.clone();
        async move { sim.query("src", json!({}), WAIT).await }
    });
    let (_, addr) = java.next_query().await;
    java.answer_empty(&addr).await;
    let out = query.await.unwrap().unwrap();
    assert_eq!((out.status, out.rows.len(), out.error), (204, 0, None));

    // An error: 400 with one error object.
    let query = tokio::spawn({
        let sim = sim.clone();
        async move { sim.query("src", json!({}), WAIT).await }
    });
    let (_, addr) = java.next_query().await;
    java.answer_error(&addr, "io.x.bad", "Bad {0}", json!(["p"]))
        .await;
    let out = query.await.unwrap().unwrap();
    assert_eq!(out.status, 400);
    assert_eq!(
        out.error,
        Some(json!({"messageCode": "io.x.bad", "messageTemplate": "Bad {0}", "parameters": ["p"]}))
    );

    // reconnectRequired, answered with connectExtension on the same socket.
    sim.set_config("src", json!({"v": 2})).await.unwrap();
    let reconnect = java.recv().await;
    assert_eq!(reconnect["op"], "reconnectRequired", "{reconnect}");
    assert_eq!(java.connect("secret-1").await, json!({"v": 2}));
    sim.wait_connections("src", 2, WAIT).await.unwrap();

    // Dropped, then reconnected on a new socket with the same secret.
    sim.drop_connection("src").await.unwrap();
    assert!(java.ended().await, "the drop must end the connection");
    let (_java, config) = JavaConn::handshake(&sim.ws_url(), "tok", "src", "secret-1").await;
    assert_eq!(config, json!({"v": 2}));
    let status = sim.wait_connections("src", 3, WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(FrameType::Binary));
    assert_eq!(status.reconnect_secrets, ["secret-1"]);

    assert_eq!(java.text_frames_ignored, 0, "every frame must be binary");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Forced text frames: a Java SDK connector never sees the answer to its `validate`, so it
/// never connects; the emulator records a note saying so and naming the likely cause.
#[tokio::test]
async fn forced_text_leaves_a_java_connector_stuck_and_the_emulator_says_why() {
    let sim = Sim::builder()
        .token("tok")
        .source("src", json!({}))
        .frames(FrameMode::Text)
        .connect_grace(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut java = JavaConn::open(&sim.ws_url(), "src").await;
    java.validate("tok").await;
    java.until_text_dropped().await;
    let notes = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].kind, kinds::NO_CONNECT);
    let detail = &notes[0].detail;
    for part in [
        "no connectExtension within 300 ms",
        "cannot read the frames it is sent",
        "sends text frames",
        "connector sent binary frames",
        "forced to text",
        "Java SDK reads only binary frames",
    ] {
        assert!(detail.contains(part), "{part:?} missing from: {detail}");
    }
    assert!(!sim.source_status("src").unwrap().connected);
}

/// A connector that connects in time gets no note, even when it takes its time to
/// connect after authenticating (the note is for the grace period only).
#[tokio::test]
async fn a_connector_that_connects_within_the_grace_period_gets_no_note() {
    let sim = Sim::builder()
        .token("tok")
        .source("src", json!({}))
        .connect_grace(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let mut c = Conn::open(&sim.ws_url()).await;
    assert_eq!(c.validate("tok").await["status"], 200);
    c.connect_ok("src", "s").await;
    // A second connection that never connects proves the grace period has passed for the
    // first one as well (they started in this order), without a sleep.
    // Had the first one's timer not been cleared, its note would come first.
    let mut idle = Conn::open(&sim.ws_url()).await;
    let idle_addr = match idle.ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("plain ws://"),
    };
    assert_eq!(idle.validate("tok").await["status"], 200);
    let notes = sim.wait_violations(1, WAIT).await.unwrap();
    assert!(
        notes[0].detail.contains(&format!("from {idle_addr} ")),
        "the first note must be the idle connection's ({idle_addr}): {notes:?}"
    );
    assert_eq!(notes[0].kind, kinds::NO_CONNECT);
    assert!(notes[0].detail.contains("sent text frames"), "{notes:?}");
    assert!(notes[0].detail.contains("follows"), "{notes:?}");
}

/// Forced binary frames: a text connector gets every message in binary frames (handshake,
/// configuration, publish, query, acknowledgement, reconnectRequired); raw frames keep
/// their own type.
#[tokio::test]
async fn forced_binary_answers_a_text_connector_in_binary_frames() {
    let sim = sim(FrameMode::Binary).await;
    let mut c = Conn::open(&sim.ws_url()).await;
    c.send(json!({"op":"validate","resourceName":"system.credentials","object":"tok"}))
        .await;
    let (t, auth) = c.recv_frame().await;
    assert_eq!((t, auth["status"].clone()), (FrameType::Binary, json!(200)));
    c.send(
        json!({"op":"connectExtension","resourceName":"sources","resourceId":"src",
                  "parameters":{"reconnectSecret":"s"}}),
    )
    .await;
    assert_eq!(c.recv_frame().await.0, FrameType::Binary);
    let (t, configure) = c.recv_frame().await;
    assert_eq!(
        (t, configure["op"].clone()),
        (FrameType::Binary, json!("configureExtension"))
    );
    let status = sim.wait_connected("src", WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(FrameType::Binary));

    sim.publish("src", json!({"p": 1})).await.unwrap();
    let (t, publish) = c.recv_frame().await;
    assert_eq!(
        (t, publish["op"].clone()),
        (FrameType::Binary, json!("publish"))
    );
    c.notify("src", json!({"n": 1})).await;
    assert_eq!(
        c.recv_frame().await,
        (FrameType::Binary, json!({"status": 200}))
    );

    let load = tokio::spawn({
        let sim = sim.clone();
        async move {
            sim.query_load("src", json!({}), vantiq_sim::QueryLoad::new(1, 1))
                .await
        }
    });
    let (t, q) = c.recv_frame().await;
    assert_eq!((t, q["op"].clone()), (FrameType::Binary, json!("query")));
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    c.answer(&addr, 204, None).await;
    assert_eq!(load.await.unwrap().unwrap().answered, 1);

    sim.send_raw("src", RawFrame::Text(r#"{"raw":true}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        c.recv_frame().await,
        (FrameType::Text, json!({"raw": true}))
    );

    sim.reconnect("src").await.unwrap();
    let (t, r) = c.recv_frame().await;
    assert_eq!(
        (t, r["op"].clone()),
        (FrameType::Binary, json!("reconnectRequired"))
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// In the default mode the emulator follows a connector that changes its frame type.
#[tokio::test]
async fn the_default_mode_follows_a_change_of_frame_type() {
    let sim = sim(FrameMode::Follow).await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "tok", "src", "s").await;
    let status = sim.wait_connected("src", WAIT).await.unwrap();
    assert_eq!(status.frame_type, Some(FrameType::Text));
    c.notify("src", json!({"n": 0})).await;
    assert_eq!(
        c.recv_frame().await,
        (FrameType::Text, json!({"status": 200}))
    );

    c.send_binary(
        json!({"op":"notification","resourceName":"sources","resourceId":"src",
                         "object":{"n": 1}}),
    )
    .await;
    assert_eq!(
        c.recv_frame().await,
        (FrameType::Binary, json!({"status": 200}))
    );
    assert_eq!(
        sim.source_status("src").unwrap().frame_type,
        Some(FrameType::Binary)
    );
    sim.publish("src", json!({"p": 1})).await.unwrap();
    assert_eq!(c.recv_frame().await.0, FrameType::Binary);

    c.notify("src", json!({"n": 2})).await;
    assert_eq!(
        c.recv_frame().await,
        (FrameType::Text, json!({"status": 200}))
    );
    assert_eq!(
        sim.source_status("src").unwrap().frame_type,
        Some(FrameType::Text)
    );
}

/// The control API reports each connection's frame type; no connection, no type.
#[tokio::test]
async fn the_control_api_shows_the_frame_type() {
    let sim = sim(FrameMode::Follow).await;
    let client = Client::new(&sim.http_url()).unwrap();
    let before = client.source("src").await.unwrap();
    assert_eq!(before.frame_type, None);
    let (_, all) = client.request("GET", "/sim/sources", None).await.unwrap();
    assert_eq!(all[0]["frame_type"], Value::Null);

    let (_java, _) = JavaConn::handshake(&sim.ws_url(), "tok", "src", "s").await;
    sim.wait_connected("src", WAIT).await.unwrap();
    let (_, all) = client.request("GET", "/sim/sources", None).await.unwrap();
    assert_eq!(all[0]["frame_type"], "binary", "{all}");
    assert_eq!(
        client.source("src").await.unwrap().frame_type,
        Some(FrameType::Binary)
    );
}

#[test]
fn frame_modes_parse_and_print() {
    for mode in [FrameMode::Follow, FrameMode::Text, FrameMode::Binary] {
        assert_eq!(mode.to_string().parse::<FrameMode>(), Ok(mode));
        let json = serde_json::to_value(mode).unwrap();
        assert_eq!(json, Value::String(mode.to_string()));
    }
    let err = "json".parse::<FrameMode>().unwrap_err();
    assert!(err.contains("follow, text or binary"), "{err}");
}
