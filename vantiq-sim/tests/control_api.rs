//! The HTTP control API, driven over real HTTP with the crate's client.

mod common;

use common::{Conn, Ending, WAIT};
use serde_json::{json, Value};
use vantiq_sim::client::{Client, ClientError};
use vantiq_sim::{kinds, Sim};

async fn setup() -> (Sim, Client) {
    let sim = Sim::builder()
        .token("t")
        .source("src", json!({"a": 1}))
        .source("idle", json!({}))
        .start()
        .await
        .unwrap();
    let client = Client::new(&sim.http_url()).unwrap();
    (sim, client)
}

fn http_status(e: ClientError) -> u16 {
    match e {
        ClientError::Http { status, .. } => status,
        other => panic!("expected an HTTP error, got {other}"),
    }
}

/// Reconnect secrets are shown only when asked for (`?secrets=true`): never in the default
/// listing, a source's default status, or the console (which counts them).
#[tokio::test]
async fn reconnect_secrets_only_when_asked_for() {
    let (sim, client) = setup().await;
    let (_c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s3cr3t-reconnect").await;
    sim.wait_connected("src", WAIT).await.unwrap();
    for path in [
        "/sim/sources",
        "/sim/sources/src",
        "/sim/sources?secrets=false",
    ] {
        let (status, raw) = client.request("GET", path, None).await.unwrap();
        assert_eq!(status, 200);
        let text = raw.to_string();
        assert!(!text.contains("s3cr3t-reconnect"), "{path}: {text}");
        assert!(
            text.contains(r#""reconnect_secret_count":1"#),
            "{path}: {text}"
        );
    }
    let plain = client.source("src").await.unwrap();
    assert!(plain.reconnect_secrets.is_empty());
    assert_eq!(plain.reconnect_secret_count, 1);
    let asked = client.source_with_secrets("src").await.unwrap();
    assert_eq!(asked.reconnect_secrets, ["s3cr3t-reconnect"]);
    let (_, all) = client
        .request("GET", "/sim/sources?secrets=true", None)
        .await
        .unwrap();
    assert!(all.to_string().contains("s3cr3t-reconnect"));
    let (status, _) = client
        .request("GET", "/sim/sources?secrets=maybe", None)
        .await
        .unwrap();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sources_and_config() {
    let (sim, client) = setup().await;
    let all = client.sources().await.unwrap();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["idle", "src"]);
    assert!(!all[1].connected);
    assert_eq!(all[1].config, json!({"a": 1}));

    // The raw shape: name, connected, connections, config.
    let (status, raw) = client.request("GET", "/sim/sources", None).await.unwrap();
    assert_eq!(status, 200);
    let src = raw
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "src")
        .unwrap();
    for field in ["name", "connected", "connections", "config"] {
        assert!(src.get(field).is_some(), "missing {field} in {src}");
    }

    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    assert!(client.source("src").await.unwrap().connected);
    let updated = client.set_config("src", &json!({"a": 2})).await.unwrap();
    assert_eq!(updated.config, json!({"a": 2}));
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    assert_eq!(c.connect_ok("src", "s").await, json!({"a": 2}));

    // Unconnected source: stored, nothing sent.
    let idle = client.set_config("idle", &json!({"b": 1})).await.unwrap();
    assert_eq!(idle.config, json!({"b": 1}));

    assert_eq!(http_status(client.source("nope").await.unwrap_err()), 404);
    assert_eq!(
        http_status(client.set_config("nope", &json!({})).await.unwrap_err()),
        404
    );
    let (status, body) = client
        .request("GET", "/sim/nothing-here", None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn publish_and_notifications() {
    let (sim, client) = setup().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    client.publish("src", &json!({"hello": 1})).await.unwrap();
    assert_eq!(c.recv().await["object"], json!({"hello": 1}));
    let (status, _) = client
        .request("POST", "/sim/sources/src/publish", Some(&json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(status, 202);
    c.recv().await;

    for i in 0..3 {
        c.notify("src", json!({"i": i})).await;
    }
    sim.wait_notifications("src", 3, WAIT).await.unwrap();
    let all = client.notifications("src", 0, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!((all[2].seq, &all[2].object), (2, &json!({"i": 2})));
    let tail = client.notifications("src", 2, None).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert!(client
        .notifications("src", 3, None)
        .await
        .unwrap()
        .is_empty());

    // Long poll: answered when the next notification arrives.
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move { client.notifications("src", 3, Some(10_000)).await })
    };
    c.notify("src", json!({"i": 3})).await;
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 3);

    assert_eq!(
        http_status(client.publish("idle", &json!({})).await.unwrap_err()),
        409
    );
    assert_eq!(
        http_status(client.publish("nope", &json!({})).await.unwrap_err()),
        404
    );
    assert_eq!(
        http_status(client.notifications("nope", 0, None).await.unwrap_err()),
        404
    );
    let (status, body) = client
        .request("GET", "/sim/sources/src/notifications?since=x", None)
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn query_over_http() {
    let (sim, client) = setup().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    let q = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .query("src", &json!({"op": "rows"}), Some(10_000))
                .await
        })
    };
    let query = c.recv().await;
    let addr = query["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    c.answer(&addr, 100, Some(json!([{"i": 0}]))).await;
    c.answer(&addr, 200, Some(json!({"i": 1}))).await;
    let outcome = q.await.unwrap().unwrap();
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.rows, vec![json!({"i": 0}), json!({"i": 1})]);
    assert_eq!(outcome.frames.len(), 2);

    // The raw shape of an error outcome.
    let q = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request(
                    "POST",
                    "/sim/sources/src/query",
                    Some(&json!({"op": "fail"})),
                )
                .await
        })
    };
    let query = c.recv().await;
    let addr = query["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned();
    c.answer(&addr, 400, Some(json!({"messageCode": "e"})))
        .await;
    let (status, body) = q.await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": 400, "rows": [], "frames": [{"status": 400, "headers": {"X-Reply-Address": addr}, "body": {"messageCode": "e"}}], "error": {"messageCode": "e"}})
    );

    // Timeout: 504.
    let err = client.query("src", &json!({}), Some(50)).await.unwrap_err();
    assert_eq!(http_status(err), 504);
    assert_eq!(
        http_status(client.query("idle", &json!({}), None).await.unwrap_err()),
        409
    );
    assert_eq!(
        http_status(client.query("nope", &json!({}), None).await.unwrap_err()),
        404
    );
    let (status, body) = client
        .request(
            "POST",
            "/sim/sources/src/query?timeout_ms=-1",
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn reconnect_drop_and_violations() {
    let (sim, client) = setup().await;
    let (mut c, _) = Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    client.reconnect("src").await.unwrap();
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    c.connect_ok("src", "s").await;
    sim.wait_connections("src", 2, WAIT).await.unwrap();

    c.notify("src", json!([1])).await;
    sim.wait_violations(1, WAIT).await.unwrap();
    let v = client.violations().await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, kinds::NOTIFICATION_NOT_OBJECT);
    let (_, raw) = client
        .request("GET", "/sim/violations", None)
        .await
        .unwrap();
    assert_eq!(raw[0]["source"], "src");
    assert!(raw[0]["detail"].is_string());

    let (status, _) = client
        .request("POST", "/sim/sources/src/drop", None)
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(c.ending().await, Ending::Abrupt);
    sim.wait_disconnected("src", WAIT).await.unwrap();

    assert_eq!(
        http_status(client.reconnect("idle").await.unwrap_err()),
        409
    );
    assert_eq!(
        http_status(client.drop_connection("idle").await.unwrap_err()),
        409
    );
    assert_eq!(
        http_status(client.reconnect("nope").await.unwrap_err()),
        404
    );
    assert_eq!(
        http_status(client.drop_connection("nope").await.unwrap_err()),
        404
    );
    let (status, body): (u16, Value) = client
        .request("PUT", "/sim/sources/src/config", None)
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string());
}

/// `query?stream=1`: each answer frame a line as it arrives; errors before the first line
/// are HTTP errors, after it a last `streamError` line.
#[tokio::test]
async fn streamed_queries() {
    let (sim, client) = setup().await;
    // No connector: 409, before anything is streamed.
    let e = client
        .query_stream("src", &json!({}), None, |_| Ok(()))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Http { status: 409, .. }), "{e}");

    let (mut c, _) = common::Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    let answering = tokio::spawn(async move {
        let q = c.recv().await;
        let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
            .as_str()
            .unwrap()
            .to_owned();
        let exact: Value = serde_json::from_str(r#"[{"n":12345678901234.123456}]"#).unwrap();
        c.answer(&addr, 100, Some(exact)).await;
        c.answer(&addr, 200, Some(json!({"n": 2}))).await;
        // The next query is never answered: it times out.
        c.recv().await;
        c
    });
    let mut frames = Vec::new();
    client
        .query_stream("src", &json!({"q": 1}), None, |f| {
            frames.push(f);
            Ok(())
        })
        .await
        .unwrap();
    let statuses: Vec<_> = frames.iter().map(|f| f["status"].clone()).collect();
    assert_eq!(statuses, [json!(100), json!(200)]);
    assert_eq!(
        frames[0]["body"].to_string(),
        r#"[{"n":12345678901234.123456}]"#
    );
    // A query left unanswered: the stream ends with its 504.
    let e = client
        .query_stream("src", &json!({}), Some(200), |_| Ok(()))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Http { status: 504, .. }), "{e}");
    drop(answering.await.unwrap());
}

/// A streamed query whose reader stalls: the answers wait in the connector's socket
/// (the emulator's queues are bounded and the session stops reading while they are
/// full), then all arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_reader_loses_nothing() {
    const FRAMES: u64 = 100;
    let (sim, client) = setup().await;
    let (mut c, _) = common::Conn::handshake(&sim.ws_url(), "t", "src", "s").await;
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let answering = tokio::spawn(async move {
        let q = c.recv().await;
        let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
            .as_str()
            .unwrap()
            .to_owned();
        // 64 KiB a frame: more than the sockets' buffers hold in all.
        let pad = "x".repeat(64 * 1024);
        for i in 0..FRAMES {
            c.answer(&addr, 100, Some(json!([{ "i": i, "pad": pad }])))
                .await;
        }
        c.answer(&addr, 200, Some(json!([{ "i": FRAMES }]))).await;
        sent_tx.send(()).unwrap();
        c
    });
    let mut seen = Vec::new();
    client
        .query_stream("src", &json!({}), None, |f| {
            if seen.is_empty() {
                // The reader stalls until the connector has written every answer.
                sent_rx.recv().unwrap();
            }
            seen.push(f["body"][0]["i"].as_u64().unwrap());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(seen, (0..=FRAMES).collect::<Vec<_>>());
    drop(answering.await.unwrap());
}
