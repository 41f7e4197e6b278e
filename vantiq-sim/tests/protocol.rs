//! The emulator's protocol behaviour, checked with a plain WebSocket client.

mod common;

use common::{Conn, Ending, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use vantiq_sim::{kinds, RawFrame, Sim, SimError};

async fn sim() -> Sim {
    Sim::builder()
        .token("good")
        .source("src", json!({"answer": 42}))
        .source("other", json!({}))
        .start()
        .await
        .expect("start")
}

/// Waits for the query sent to `conn` and returns (params, reply address).
async fn next_query(conn: &mut Conn) -> (Value, String) {
    let q = conn.recv().await;
    assert_eq!(q["op"], "query", "{q}");
    assert_eq!(q["resourceName"], "sources");
    let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .expect("reply address")
        .to_owned();
    (q["object"].clone(), addr)
}

#[tokio::test]
async fn token_is_checked_and_a_wrong_one_gets_401() {
    let sim = sim().await;
    let mut c = Conn::open(&sim.ws_url()).await;
    let bad = c.validate("bad").await;
    assert_eq!(bad["status"], 401);
    assert!(bad["body"][0]["code"].is_string(), "{bad}");
    assert!(bad["body"][0]["message"].is_string(), "{bad}");
    assert_eq!(sim.auth_failures(), 1);
    let good = c.validate("good").await;
    assert_eq!(good["status"], 200, "{good}");
    assert_eq!(sim.auth_failures(), 1);
}

#[tokio::test]
async fn authenticate_checks_user_and_password() {
    let sim = Sim::builder()
        .user("ann", "pw")
        .source("src", json!({}))
        .start()
        .await
        .unwrap();
    let mut c = Conn::open(&sim.ws_url()).await;
    let auth = |user: &str, pw: &str| {
        json!({"op":"authenticate","resourceName":"system.credentials",
               "object":{"username":user,"password":pw}})
    };
    c.send(auth("ann", "wrong")).await;
    assert_eq!(c.recv().await["status"], 401);
    // Only users are configured: no token is valid.
    assert_eq!(c.validate("anything").await["status"], 401);
    c.send(auth("ann", "pw")).await;
    assert_eq!(c.recv().await["status"], 200);
    assert_eq!(sim.auth_failures(), 2);
    assert_eq!(c.connect_ok("src", "s").await, json!({}));
}

#[tokio::test]
async fn any_api_version_path_is_the_websocket() {
    let sim = sim().await;
    let url = sim.ws_url().replace("/api/v1/", "/api/v7/");
    let (_c, config) = Conn::handshake(&url, "good", "src", "s").await;
    assert_eq!(config, json!({"answer": 42}));
}

#[tokio::test]
async fn connect_extension_configures_known_sources_and_refuses_unknown_ones() {
    let sim = sim().await;
    let mut c = Conn::open(&sim.ws_url()).await;
    c.validate("good").await;
    let refused = c.connect_extension("nope", "s").await;
    assert!(refused["status"].as_u64().unwrap() >= 300, "{refused}");
    let message = refused["body"][0]["message"].as_str().unwrap();
    assert!(message.contains("does not exist"), "{message}");
    assert!(refused["body"][0]["code"].is_string());

    assert_eq!(c.connect_ok("src", "s1").await, json!({"answer": 42}));
    let status = sim.wait_connected("src", WAIT).await.unwrap();
    assert_eq!(status.connections, 1);
    assert_eq!(status.reconnect_secrets, vec!["s1".to_owned()]);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn connect_before_authentication_is_refused_and_recorded() {
    let sim = sim().await;
    let mut c = Conn::open(&sim.ws_url()).await;
    let answer = c.connect_extension("src", "s").await;
    assert_eq!(answer["status"], 401);
    let v = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(v[0].kind, kinds::NOT_AUTHENTICATED);
}

#[tokio::test]
async fn a_second_connector_is_refused_unless_it_has_the_same_secret() {
    let sim = sim().await;
    let (mut first, _) = Conn::handshake(&sim.ws_url(), "good", "src", "A").await;

    let mut intruder = Conn::open(&sim.ws_url()).await;
    intruder.validate("good").await;
    let refused = intruder.connect_extension("src", "B").await;
    assert!(refused["status"].as_u64().unwrap() >= 300, "{refused}");
    assert!(refused["body"][0]["message"].is_string());

    let (_second, _) = Conn::handshake(&sim.ws_url(), "good", "src", "A").await;
    assert_eq!(first.ending().await, Ending::Abrupt);
    let status = sim.wait_connections("src", 2, WAIT).await.unwrap();
    assert_eq!(status.reconnect_secrets, vec!["A".to_owned()]);
    assert!(status.connected);
}

#[tokio::test]
async fn notifications_are_recorded_and_acknowledged() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    c.notify("src", json!({"n": 0})).await;
    assert_eq!(c.recv().await, json!({"status": 200}));
    // Binary frames carry the same JSON (the Java SDK sends them).
    c.send_binary(
        json!({"op":"notification","resourceName":"sources","resourceId":"src","object":{"n":1}}),
    )
    .await;
    assert_eq!(c.recv().await, json!({"status": 200}));
    let got = sim.wait_notifications("src", 2, WAIT).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].seq, &got[0].object), (0, &json!({"n": 0})));
    assert_eq!((got[1].seq, &got[1].object), (1, &json!({"n": 1})));
    assert_eq!(sim.notifications("src", 1).len(), 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn acknowledgements_can_be_switched_off() {
    let sim = Sim::builder()
        .acks(false)
        .source("src", json!({}))
        .start()
        .await
        .unwrap();
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "any", "src", "s").await;
    c.notify("src", json!({"n": 0})).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();
    sim.publish("src", json!({"after": true})).await.unwrap();
    // Had there been an acknowledgement, it would have come before the publish.
    assert_eq!(c.recv().await["op"], "publish");
}

#[tokio::test]
async fn publishes_arrive_in_order_with_the_protocol_shape() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    sim.publish("src", json!({"first": true})).await.unwrap();
    let n = sim
        .publish_many("src", (0..500).map(|i| json!({"i": i})))
        .await
        .unwrap();
    assert_eq!(n, 500);
    assert_eq!(
        c.recv().await,
        json!({"op":"publish","resourceName":"sources","resourceId":"src","object":{"first":true}})
    );
    for i in 0..500 {
        let m = c.recv().await;
        assert_eq!(m["object"], json!({"i": i}));
    }
    assert!(matches!(
        sim.publish("nope", json!({})).await,
        Err(SimError::UnknownSource(_))
    ));
    assert!(matches!(
        sim.publish("other", json!({})).await,
        Err(SimError::NotConnected(_))
    ));
}

#[tokio::test]
async fn a_query_collects_partial_and_final_answers() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.query("src", json!({"op":"rows"}), WAIT).await })
    };
    let (params, addr) = next_query(&mut c).await;
    assert_eq!(params, json!({"op":"rows"}));
    c.answer(&addr, 100, Some(json!([{"i":0},{"i":1}]))).await;
    c.answer(&addr, 100, Some(json!({"i":2}))).await;
    c.answer(&addr, 200, Some(json!([{"i":3}]))).await;
    let outcome = q.await.unwrap().unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(
        outcome.rows,
        vec![
            json!({"i":0}),
            json!({"i":1}),
            json!({"i":2}),
            json!({"i":3})
        ]
    );
    assert_eq!(outcome.frames.len(), 3);
    assert_eq!(outcome.frames[0]["status"], 100);
    assert_eq!(outcome.error, None);

    // 204: no data. Reply addresses are unique per query.
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.query("src", json!({}), WAIT).await })
    };
    let (_, addr2) = next_query(&mut c).await;
    assert_ne!(addr, addr2);
    c.answer(&addr2, 204, None).await;
    let outcome = q.await.unwrap().unwrap();
    assert_eq!((outcome.status, outcome.rows.len()), (204, 0));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn a_query_error_is_an_outcome_with_its_body() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    for body in [
        json!({"messageCode":"x.failed","messageTemplate":"failed {0}","parameters":["r"]}),
        json!([{"messageCode":"x.failed","messageTemplate":"failed","parameters":[]}]),
    ] {
        let q = {
            let sim = sim.clone();
            tokio::spawn(async move { sim.query("src", json!({"op":"fail"}), WAIT).await })
        };
        let (_, addr) = next_query(&mut c).await;
        c.answer(&addr, 400, Some(body.clone())).await;
        let outcome = q.await.unwrap().unwrap();
        assert_eq!(outcome.status, 400);
        assert_eq!(outcome.error, Some(body));
        assert!(outcome.rows.is_empty());
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn answering_twice_or_to_an_unknown_address_is_a_violation() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.query("src", json!({}), WAIT).await })
    };
    let (_, addr) = next_query(&mut c).await;
    c.answer(&addr, 200, Some(json!({"a":1}))).await;
    q.await.unwrap().unwrap();
    c.answer(&addr, 200, Some(json!({"a":1}))).await;
    let v = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(v[0].kind, kinds::ANSWER_AFTER_FINAL);
    assert_eq!(v[0].source.as_deref(), Some("src"));

    c.answer("made-up-address", 200, Some(json!({}))).await;
    let v = sim.wait_violations(2, WAIT).await.unwrap();
    assert_eq!(v[1].kind, kinds::UNKNOWN_REPLY_ADDRESS);
}

#[tokio::test]
async fn malformed_messages_are_recorded_as_violations() {
    let sim = sim().await;
    let mut early = Conn::open(&sim.ws_url()).await;
    early.validate("good").await;
    early.notify("src", json!({"too": "early"})).await;
    let v = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(v[0].kind, kinds::NOT_CONNECTED);

    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    c.notify("src", json!([{"a": 1}])).await;
    assert!(c.recv().await["status"].as_u64().unwrap() >= 300);
    c.notify("src", json!(7)).await;
    c.send_text("this is not json").await;
    c.send(json!({"op": "frobnicate"})).await;
    c.send(json!({"neither": true})).await;
    c.send(json!([1, 2])).await;
    c.notify("other", json!({})).await;
    c.ws.send(Message::Binary(Bytes::from_static(&[0xff, 0xfe])))
        .await
        .unwrap();
    let v = sim.wait_violations(9, WAIT).await.unwrap();
    let got: Vec<&str> = v[1..].iter().map(|v| v.kind.as_str()).collect();
    assert_eq!(
        got,
        [
            kinds::NOTIFICATION_NOT_OBJECT,
            kinds::NOTIFICATION_NOT_OBJECT,
            kinds::INVALID_JSON,
            kinds::UNKNOWN_OP,
            kinds::BAD_SHAPE,
            kinds::BAD_SHAPE,
            kinds::NOTIFICATION_WRONG_SOURCE,
            kinds::INVALID_UTF8,
        ]
    );
    assert!(v[1..].iter().all(|v| v.source.as_deref() == Some("src")));
    assert!(sim.notifications("src", 0).is_empty());
    assert!(sim.notifications("other", 0).is_empty());
    sim.clear_violations();
    assert!(sim.violations().is_empty());
}

#[tokio::test]
async fn set_config_sends_reconnect_required_and_the_same_socket_can_reconnect() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    sim.set_config("src", json!({"answer": 43})).await.unwrap();
    assert!(!sim.source_status("src").unwrap().connected);
    assert_eq!(
        c.recv().await,
        json!({"op":"reconnectRequired","resourceName":"sources","resourceId":"src"})
    );
    // Java style: connectExtension again on the same socket.
    assert_eq!(c.connect_ok("src", "s").await, json!({"answer": 43}));
    let status = sim.wait_connections("src", 2, WAIT).await.unwrap();
    assert_eq!(status.config, json!({"answer": 43}));
    assert_eq!(status.reconnect_secrets.len(), 1);
}

#[tokio::test]
async fn after_reconnect_required_a_new_socket_gets_the_new_config() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    sim.reconnect("src").await.unwrap();
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    sim.set_config("src", json!({"v": 2})).await.unwrap();
    // Python style: close, then the whole handshake again (same secret).
    c.ws.close(None).await.unwrap();
    let (_c2, config) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    assert_eq!(config, json!({"v": 2}));
    let status = sim.wait_connections("src", 2, WAIT).await.unwrap();
    assert_eq!(status.reconnect_secrets, vec!["s".to_owned()]);
}

#[tokio::test]
async fn drop_connection_cuts_the_socket_without_a_close_frame() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.query("src", json!({}), WAIT).await })
    };
    next_query(&mut c).await;
    sim.drop_connection("src").await.unwrap();
    assert_eq!(c.ending().await, Ending::Abrupt);
    assert!(matches!(q.await.unwrap(), Err(SimError::ConnectionLost(_))));
    sim.wait_disconnected("src", WAIT).await.unwrap();
    assert!(matches!(
        sim.drop_connection("src").await,
        Err(SimError::NotConnected(_))
    ));
}

#[tokio::test]
async fn stop_and_restart_on_the_same_port() {
    let sim = sim().await;
    let url = sim.ws_url();
    let (mut c, _) = Conn::handshake(&url, "good", "src", "s").await;
    c.notify("src", json!({"before": true})).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();
    let addr = sim.addr();

    sim.stop().await;
    assert_eq!(c.ending().await, Ending::Abrupt);
    assert!(!sim.source_status("src").unwrap().connected);
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());

    sim.restart().await.unwrap();
    assert_eq!(sim.addr(), addr);
    let (_c, _) = Conn::handshake(&url, "good", "src", "s").await;
    let status = sim.wait_connections("src", 2, WAIT).await.unwrap();
    assert_eq!(status.connections, 2);
    assert_eq!(
        sim.notifications("src", 0).len(),
        1,
        "notifications survive a restart"
    );
}

#[tokio::test]
async fn go_silent_stops_answering_pings_and_keeps_the_source_taken() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "A").await;
    // Before: a ping is answered.
    c.ws.send(Message::Ping(Bytes::from_static(b"1")))
        .await
        .unwrap();
    let pong = tokio::time::timeout(WAIT, c.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(pong, Message::Pong(_)), "{pong:?}");

    sim.go_silent("src").await.unwrap();
    c.ws.send(Message::Ping(Bytes::from_static(b"2")))
        .await
        .unwrap();
    sim.publish("src", json!({"lost": true})).await.unwrap();
    // The one negative check that needs a clock: nothing comes back for a while.
    let silence = tokio::time::timeout(Duration::from_millis(400), c.ws.next()).await;
    assert!(silence.is_err(), "expected silence, got {silence:?}");

    // The source is still taken: a newcomer with another secret is refused.
    let mut other = Conn::open(&sim.ws_url()).await;
    other.validate("good").await;
    assert!(
        other.connect_extension("src", "B").await["status"]
            .as_u64()
            .unwrap()
            >= 300
    );

    // The connector gives up and closes its socket: the session is forgotten.
    drop(c);
    sim.wait_disconnected("src", WAIT).await.unwrap();
    assert_eq!(other.connect_ok("src", "B").await, json!({"answer": 42}));
}

#[tokio::test]
async fn go_silent_session_is_displaced_by_the_same_secret() {
    let sim = sim().await;
    let (_silent, _) = Conn::handshake(&sim.ws_url(), "good", "src", "A").await;
    sim.go_silent("src").await.unwrap();
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "A").await;
    sim.wait_connections("src", 2, WAIT).await.unwrap();
    sim.publish("src", json!({"x": 1})).await.unwrap();
    assert_eq!(c.recv().await["object"], json!({"x": 1}));
}

#[tokio::test]
async fn send_raw_frames_arrive_verbatim() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    sim.send_raw("src", RawFrame::Text(r#"{"op":"weird"}"#.into()))
        .await
        .unwrap();
    sim.send_raw("src", RawFrame::Binary(br#"{"b":1}"#.to_vec()))
        .await
        .unwrap();
    assert_eq!(c.recv().await, json!({"op":"weird"}));
    let next = tokio::time::timeout(WAIT, c.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next, Message::Binary(Bytes::from_static(br#"{"b":1}"#)));
}

#[tokio::test]
async fn removing_a_source_cuts_its_connection_and_refuses_it() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    sim.remove_source("src");
    assert_eq!(c.ending().await, Ending::Abrupt);
    assert!(sim.source_status("src").is_none());
    let mut c = Conn::open(&sim.ws_url()).await;
    c.validate("good").await;
    assert!(
        c.connect_extension("src", "s").await["status"]
            .as_u64()
            .unwrap()
            >= 300
    );
    sim.add_source("src", json!({"back": true}));
    assert_eq!(c.connect_ok("src", "s").await, json!({"back": true}));
}

#[tokio::test]
async fn a_query_times_out_and_its_late_answer_is_ignored() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    let q = {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.query("src", json!({}), Duration::from_millis(100))
                .await
        })
    };
    let (_, addr) = next_query(&mut c).await;
    assert!(matches!(q.await.unwrap(), Err(SimError::Timeout(_))));
    c.answer(&addr, 200, Some(json!({}))).await;
    // Prove the late answer was processed: a notification sent after it is recorded.
    c.notify("src", json!({"after": true})).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let sim = sim().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "good", "src", "s").await;
    drop(sim);
    assert_eq!(c.ending().await, Ending::Abrupt);
}
