//! The raw path (issue 17) against the emulator on loopback: publishes
//! handed over as their text, notifications sent from pre-serialised text,
//! both checked to be JSON objects; numbers and order pass untouched.

mod common;

use common::*;
use serde_json::{json, Value};
use vantiq_connector_sdk::{
    ConnectorSet, Context, Handler, HandlerResult, Handlers, NotifyError, RawObject, RawObjectError,
};
use vantiq_sim::RawFrame;

/// A publish frame as a server writes it, with `object` as given.
fn publish_frame(source: &str, object: &str) -> RawFrame {
    RawFrame::Text(format!(
        r#"{{"op":"publish","resourceName":"sources","resourceId":"{source}","object":{object}}}"#
    ))
}

/// Objects whose text a tree would change: key order, spacing, numbers
/// beyond f64, escapes.
const OBJECTS: &[&str] = &[
    r#"{"z":1.10,"a" : [1e400, 123456789012345678901234567890, -0.0]}"#,
    r#"{ "s":"\u00e9\n\"q\"", "n":null, "deep":{"x":[{},[]]} }"#,
    r#"{"i":7}"#,
];

#[tokio::test]
async fn raw_publishes_arrive_as_sent_and_echo_back_exactly() {
    let sim = sim(&["r"]).await;
    let rec = Recorder::new();
    let handlers = Handlers::new()
        .on_connect({
            let rec = rec.clone();
            move |_: Context, _: Value| {
                let rec = rec.clone();
                async move { rec.record("connect") }
            }
        })
        .on_publish_raw({
            let rec = rec.clone();
            move |ctx: Context, message: RawObject| {
                let rec = rec.clone();
                async move {
                    rec.record(format!("publish {}", message.as_str()));
                    ctx.connection().send_raw_notification(&message).await
                }
            }
        });
    let set = ConnectorSet::builder(config_for(&sim, &["r"]))
        .settings(fast_settings())
        .handler(handlers)
        .build()
        .unwrap();
    let running = start(set);
    rec.expect("connect").await;
    // A list, a number and a null between the objects: refused (logged and
    // counted), the objects around them still in order.
    sim.send_raw("r", publish_frame("r", OBJECTS[0]))
        .await
        .unwrap();
    sim.send_raw("r", publish_frame("r", "[1,2]"))
        .await
        .unwrap();
    sim.send_raw("r", publish_frame("r", OBJECTS[1]))
        .await
        .unwrap();
    sim.send_raw("r", publish_frame("r", "42")).await.unwrap();
    sim.send_raw("r", publish_frame("r", "null")).await.unwrap();
    sim.publish("r", serde_json::from_str(OBJECTS[2]).unwrap())
        .await
        .unwrap();
    for object in OBJECTS {
        assert_eq!(rec.expect("publish").await, format!("publish {object}"));
    }
    let got = sim.wait_notifications("r", 3, WAIT).await.unwrap();
    let expected: Vec<Value> = OBJECTS
        .iter()
        .map(|o| serde_json::from_str(o).unwrap())
        .collect();
    // Compared as trees with every number's text kept (arbitrary_precision;
    // the emulator's parse writes an exponent as `e+`, on both sides).
    assert_eq!(objects(&got), expected);
    assert_eq!(got[0].object["z"].to_string(), "1.10");
    assert_eq!(
        got[0].object["a"][1].to_string(),
        "123456789012345678901234567890"
    );
    let conn = running.set.connection("r").unwrap().clone();
    assert_eq!(conn.stats().malformed, 3);
    assert_eq!(conn.stats().publishes, 3);
    running.stop().await.unwrap();
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[tokio::test]
async fn raw_notifications_must_be_json_objects() {
    let sim = sim(&["n"]).await;
    let set = ConnectorSet::builder(config_for(&sim, &["n"]))
        .settings(fast_settings())
        .build()
        .unwrap();
    for (text, kind) in [("[1]", "list"), ("\"s\"", "string"), ("1.5", "number")] {
        match RawObject::from_string(text.to_owned()) {
            Err(e @ RawObjectError::NotAnObject(k)) => {
                assert_eq!(k, kind);
                assert_eq!(e.to_string(), format!("a JSON {kind}, not an object"));
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    for text in ["{\"a\":", "{\"a\":1} {}", "not json"] {
        let e = RawObject::from_string(text.to_owned()).unwrap_err();
        assert!(matches!(e, RawObjectError::NotJson(_)), "{text}: {e:?}");
        assert!(e.to_string().starts_with("not JSON: "), "{e}");
    }
    let conn = set.connection("n").unwrap().clone();
    // Queued before the connection is up, sent after it, in order, with a
    // tree-built notification between them.
    let first = RawObject::from_string(r#"{"k":0.30000000000000004000}"#.to_owned()).unwrap();
    conn.try_send_raw_notification(&first).unwrap();
    conn.try_send_notification(&json!({"k": 1})).unwrap();
    let last: RawObject = "  {\"k\":2, \"x\":1E+2}\n".parse().unwrap();
    assert_eq!(
        last.as_str(),
        "{\"k\":2, \"x\":1E+2}",
        "outer whitespace trimmed"
    );
    let running = start(set);
    conn.send_raw_notification(&last).await.unwrap();
    // Inside another value it is written verbatim too.
    conn.send_notification(&json!({"wrapped": first}))
        .await
        .unwrap();
    let got = sim.wait_notifications("n", 4, WAIT).await.unwrap();
    let texts: Vec<String> = got.iter().map(|n| n.object.to_string()).collect();
    assert_eq!(
        texts,
        [
            r#"{"k":0.30000000000000004000}"#,
            r#"{"k":1}"#,
            // The emulator's parse writes an exponent as `e+`.
            r#"{"k":2,"x":1e+2}"#,
            r#"{"wrapped":{"k":0.30000000000000004000}}"#,
        ]
    );
    running.stop().await.unwrap();
    assert!(matches!(
        conn.send_raw_notification(&last).await,
        Err(NotifyError::Closed)
    ));
}

/// A trait handler that opts in without its own `on_publish_raw`: the
/// default parses the text and calls `on_publish`.
struct TreeByDefault(Recorder);

impl Handler for TreeByDefault {
    fn raw_publishes(&self) -> bool {
        true
    }

    async fn on_publish(&self, _: Context, message: Value) -> HandlerResult {
        self.0.record(format!("publish {message}"));
        Ok(())
    }
}

#[tokio::test]
async fn a_raw_handler_without_on_publish_raw_gets_trees() {
    let sim = sim(&["t"]).await;
    let rec = Recorder::new();
    let set = ConnectorSet::builder(config_for(&sim, &["t"]))
        .settings(fast_settings())
        .handler(TreeByDefault(rec.clone()))
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("t", WAIT).await.unwrap();
    sim.send_raw("t", publish_frame("t", r#"{"b":1.50,"a":2}"#))
        .await
        .unwrap();
    assert_eq!(rec.expect("publish").await, r#"publish {"a":2,"b":1.50}"#);
    running.stop().await.unwrap();
}
