//! Every JSON number passes through unchanged: publish -> notification and
//! configuration -> `{"op":"config"}` through the emulator and the echo
//! connector, for named hard cases and for numbers drawn by proptest
//! (arbitrary finite f64 bit patterns, integers far beyond 64 bits).

mod common;

#[path = "../examples/common/echo_handler.rs"]
#[allow(dead_code)]
mod echo_handler;

use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use vantiq_connector_sdk::ConnectorSet;

/// Numbers that the default serde_json would change.
const NAMED: &[&str] = &[
    "1.6499999999999999e-06",
    "0.30000000000000004",
    "1180591620717411303424",                  // 2^70
    "-36893488147419103232",                   // -(2^65)
    "123456789012345678901234567890123456789", // 39 digits
    "9007199254740993",                        // 2^53 + 1
    "-0.0",
    "5e-324",                  // the smallest subnormal
    "2.2250738585072009e-308", // the largest subnormal
    "1.7976931348623157e308",  // f64::MAX
    "-1.7976931348623157e308",
    "18446744073709551616", // 2^64
    "1e400",                // outside f64: kept verbatim
    "0.1",
    "100",
];

fn echo(sim: &vantiq_sim::Sim) -> Running {
    start(
        ConnectorSet::builder(config_for(sim, &["num"]))
            .settings(fast_settings())
            .handler(echo_handler::Echo::default())
            .build()
            .unwrap(),
    )
}

/// `{"n": [..numbers..]}` written as text, and parsed (the parse keeps the
/// text of each number).
fn document(numbers: &[String]) -> (String, Value) {
    let text = format!("{{\"n\":[{}]}}", numbers.join(","));
    let value: Value = serde_json::from_str(&text).expect("valid JSON");
    (text, value)
}

/// The numbers of `value["n"]`, as the text they are written with.
fn written(value: &Value) -> Vec<String> {
    value["n"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// The same number: integers digit for digit, floats bit for bit (the sign
/// of `-0.0` included), and a number beyond the f64 range as the same text
/// (serde_json writes exponents as `e+N`, as Python does: the same number).
fn same_number(sent: &str, got: &str) -> bool {
    let is_integer = |s: &str| !s.contains(['.', 'e', 'E']);
    if is_integer(sent) {
        return got == sent;
    }
    match (sent.parse::<f64>(), got.parse::<f64>()) {
        (Ok(a), Ok(b)) if a.is_finite() => a.to_bits() == b.to_bits(),
        _ => {
            let normal = |s: &str| s.to_ascii_lowercase().replace("e+", "e");
            normal(sent) == normal(got)
        }
    }
}

fn assert_same_numbers(sent: &[String], got: &Value) {
    let got = written(got);
    assert_eq!(got.len(), sent.len());
    for (s, g) in sent.iter().zip(&got) {
        assert!(
            same_number(s, g),
            "number changed in transit: sent {s}, got {g}"
        );
        assert!(!g.contains(['i', 'N']), "not JSON: {g}");
    }
}

#[test]
fn the_comparison_tells_changed_numbers_apart() {
    // What the default serde_json does to these must count as a change.
    assert!(!same_number("1.6499999999999999e-06", "1.65e-06"));
    assert!(!same_number(
        "1180591620717411303424",
        "1.1805916207174113e21"
    ));
    assert!(!same_number("-0.0", "0.0"));
    assert!(!same_number("9007199254740993", "9007199254740992"));
    assert!(same_number(
        "1.7976931348623157e308",
        "1.7976931348623157e+308"
    ));
}

/// Draws `count` numbers: shortest round-trip text of arbitrary finite f64
/// bit patterns (both notations), and integers of up to 60 digits.
fn drawn(count: usize) -> Vec<String> {
    let floats = proptest::num::u64::ANY
        .prop_map(f64::from_bits)
        .prop_filter("finite", |f| f.is_finite())
        .prop_flat_map(|f| {
            proptest::bool::ANY.prop_map(move |sci| {
                if sci {
                    format!("{f:e}")
                } else {
                    format!("{f:?}")
                }
            })
        });
    let ints = ("-?[1-9][0-9]{0,59}").prop_map(|s: String| s);
    let strategy = proptest::prop_oneof![floats, ints];
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

#[tokio::test]
async fn named_numbers_survive_publish_and_notification() {
    let sim = sim(&["num"]).await;
    let running = echo(&sim);
    sim.wait_connected("num", WAIT).await.unwrap();
    let sent: Vec<String> = NAMED.iter().map(|s| s.to_string()).collect();
    let (_, doc) = document(&sent);
    sim.publish("num", doc).await.unwrap();
    let got = sim.wait_notifications("num", 1, WAIT).await.unwrap();
    assert_same_numbers(&sent, &got[0].object);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn drawn_numbers_survive_publish_and_notification() {
    let sim = sim(&["num"]).await;
    let running = echo(&sim);
    sim.wait_connected("num", WAIT).await.unwrap();
    let sent = drawn(2000);
    for chunk in sent.chunks(200) {
        let (_, doc) = document(chunk);
        sim.publish("num", doc).await.unwrap();
    }
    let got = sim.wait_notifications("num", 10, WAIT).await.unwrap();
    for (chunk, n) in sent.chunks(200).zip(&got) {
        assert_same_numbers(chunk, &n.object);
    }
    running.stop().await.unwrap();
}

#[tokio::test]
async fn numbers_of_the_configuration_survive_the_config_query() {
    let mut sent: Vec<String> = NAMED.iter().map(|s| s.to_string()).collect();
    sent.extend(drawn(500));
    let (_, config) = document(&sent);
    let sim = vantiq_sim::Sim::builder()
        .token(TOKEN)
        .source("num", config)
        .start()
        .await
        .unwrap();
    let running = echo(&sim);
    sim.wait_connected("num", WAIT).await.unwrap();
    let out = sim
        .query("num", serde_json::json!({"op": "config"}), WAIT)
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    assert_same_numbers(&sent, &out.rows[0]);
    running.stop().await.unwrap();
}

/// Query parameters and answers: the numbers a query carries come back in
/// its answer unchanged (a handler that answers with its parameters).
#[tokio::test]
async fn numbers_of_query_parameters_survive_the_answer() {
    let sim = sim(&["num"]).await;
    let running = start(
        ConnectorSet::builder(config_for(&sim, &["num"]))
            .settings(fast_settings())
            .handler(vantiq_connector_sdk::Handlers::new().on_query(
                |q: vantiq_connector_sdk::Query| async move {
                    let params = q.params().clone();
                    q.complete(&params).await
                },
            ))
            .build()
            .unwrap(),
    );
    sim.wait_connected("num", WAIT).await.unwrap();
    let sent: Vec<String> = NAMED.iter().map(|s| s.to_string()).collect();
    let (_, params) = document(&sent);
    let out = sim.query("num", params, WAIT).await.unwrap();
    assert_eq!(out.status, 200);
    assert_same_numbers(&sent, &out.rows[0]);
    running.stop().await.unwrap();
}
