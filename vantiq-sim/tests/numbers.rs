//! Every number the emulator parses, records, returns through its control API and sends
//! survives exactly: floats bit for bit, integers digit for digit, `-0.0` kept, numbers
//! beyond the f64 range kept (never `inf` or `NaN`). The CLI's side is in `cli.rs`.

mod common;

use common::{assert_numbers_in, numbers, Conn, NUMBERS, WAIT};
use serde_json::{json, Value};
use vantiq_sim::client::Client;
use vantiq_sim::{kinds, QueryLoad, Sim};

async fn sim(config: Value) -> Sim {
    Sim::builder()
        .token("t")
        .source("src", config)
        .start()
        .await
        .unwrap()
}

/// Opens, validates and connects; returns the raw text of `configureExtension`.
async fn connect_raw(url: &str) -> (Conn, String) {
    let mut c = Conn::open(url).await;
    assert_eq!(c.validate("t").await["status"], 200);
    let status = c.connect_extension("src", "s").await;
    assert_eq!(status["status"], 200, "{status}");
    let configure = c.recv_text().await;
    (c, configure)
}

/// Answers a query with `body`, a JSON text sent as is.
async fn answer_raw(c: &mut Conn, addr: &str, status: u16, body: &str) {
    let msg =
        format!(r#"{{"status":{status},"headers":{{"X-Reply-Address":"{addr}"}},"body":{body}}}"#);
    c.send_text(&msg).await;
}

fn reply_address(query_text: &str) -> String {
    let q: Value = serde_json::from_str(query_text).unwrap();
    q["messageHeaders"]["REPLY_ADDR_HEADER"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn numbers_pass_through_the_library_and_the_control_api_unchanged() {
    let sim = sim(numbers()).await;
    let client = Client::new(&sim.http_url()).unwrap();

    // Configuration: from the library, then set through the control API.
    let (mut c, configure) = connect_raw(&sim.ws_url()).await;
    assert_numbers_in(&configure);
    let (status, body) = client
        .request("PUT", "/sim/sources/src/config", Some(&numbers()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_numbers_in(&body.to_string());
    assert_eq!(c.recv().await["op"], "reconnectRequired");
    c.send(
        json!({"op":"connectExtension","resourceName":"sources","resourceId":"src",
                  "parameters":{"reconnectSecret":"s"}}),
    )
    .await;
    assert_eq!(c.recv().await["status"], 200);
    assert_numbers_in(&c.recv_text().await);
    let (_, all) = client.request("GET", "/sim/sources", None).await.unwrap();
    assert_numbers_in(&all.to_string());

    // Publish through the control API: the frame the connector gets.
    client.publish("src", &numbers()).await.unwrap();
    assert_numbers_in(&c.recv_text().await);

    // A notification: recorded, then returned by the library and the control API.
    let note = format!(
        r#"{{"op":"notification","resourceName":"sources","resourceId":"src","object":{NUMBERS}}}"#
    );
    c.send_text(&note).await;
    let notes = sim.wait_notifications("src", 1, WAIT).await.unwrap();
    assert_eq!(notes[0].object.to_string(), NUMBERS);
    let (_, listed) = client
        .request("GET", "/sim/sources/src/notifications?since=0", None)
        .await
        .unwrap();
    assert_numbers_in(&listed.to_string());
    c.recv().await; // the acknowledgement

    // A query: the parameters sent, and the rows and frames of its answers.
    let query = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .request("POST", "/sim/sources/src/query", Some(&numbers()))
                .await
        }
    });
    let sent = c.recv_text().await;
    assert_numbers_in(&sent);
    let addr = reply_address(&sent);
    answer_raw(&mut c, &addr, 100, NUMBERS).await;
    answer_raw(&mut c, &addr, 200, &format!(r#"[{NUMBERS}]"#)).await;
    let (status, outcome) = query.await.unwrap().unwrap();
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome["rows"].to_string(),
        format!("[{NUMBERS},{NUMBERS}]")
    );
    assert_numbers_in(&outcome["frames"].to_string());

    // The query load's frames and its answers read without a tree.
    let load = tokio::spawn({
        let sim = sim.clone();
        async move { sim.query_load("src", numbers(), QueryLoad::new(2, 1)).await }
    });
    let sent = c.recv_text().await;
    assert_numbers_in(&sent);
    let addr = reply_address(&sent);
    answer_raw(&mut c, &addr, 200, &format!(r#"[{NUMBERS},{NUMBERS}]"#)).await;
    let sent = c.recv_text().await;
    let addr = reply_address(&sent);
    // Numbers are not rows: the fast path must see a list of scalars, as the general one.
    answer_raw(&mut c, &addr, 200, "[1e400,-0.0]").await;
    let report = load.await.unwrap().unwrap();
    assert_eq!((report.answered, report.rows), (2, 4));
    let violations = sim.wait_violations(1, WAIT).await.unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].kind, kinds::BAD_BODY);
}

/// A number beyond the f64 range written without an exponent sign keeps its value; it
/// comes back in serde_json's form, with the sign (`1e+400`), never as `inf`.
#[tokio::test]
async fn a_number_beyond_the_f64_range_keeps_its_digits() {
    let sim = sim(json!({})).await;
    let (mut c, _) = connect_raw(&sim.ws_url()).await;
    c.send_text(
        r#"{"op":"notification","resourceName":"sources","resourceId":"src","object":{"x":1e400,"y":-2E400,"z":1.5E3}}"#,
    )
    .await;
    let notes = sim.wait_notifications("src", 1, WAIT).await.unwrap();
    assert_eq!(
        notes[0].object.to_string(),
        r#"{"x":1e+400,"y":-2e+400,"z":1.5e+3}"#
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Many arbitrary finite f64 bit patterns: published, received by the connector, sent
/// back as a notification and read through the control API, each bit for bit.
#[tokio::test]
async fn arbitrary_f64_bit_patterns_pass_through_bit_for_bit() {
    let sim = sim(json!({})).await;
    let client = Client::new(&sim.http_url()).unwrap();
    let (mut c, _) = connect_raw(&sim.ws_url()).await;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut floats = Vec::new();
    while floats.len() < 2000 {
        // xorshift64*: a fixed, reproducible sequence of bit patterns.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let f = f64::from_bits(state.wrapping_mul(0x2545_F491_4F6C_DD1D));
        if f.is_finite() {
            floats.push(f);
        }
    }
    floats.extend([
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
    ]);
    let text = format!(
        "[{}]",
        floats
            .iter()
            .map(|f| format!("{f:e}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let object: Value = serde_json::from_str(&format!(r#"{{"x":{text}}}"#)).unwrap();
    sim.publish("src", object).await.unwrap();
    let publish: Value = serde_json::from_str(&c.recv_text().await).unwrap();
    assert_bits(&publish["object"]["x"], &floats);
    c.notify("src", publish["object"].clone()).await;
    sim.wait_notifications("src", 1, WAIT).await.unwrap();
    let (_, listed) = client
        .request("GET", "/sim/sources/src/notifications", None)
        .await
        .unwrap();
    assert_bits(&listed[0]["object"]["x"], &floats);
}

/// Each number in `list`, parsed from its own digits, is `expected`'s float bit for bit.
fn assert_bits(list: &Value, expected: &[f64]) {
    let got = list.as_array().expect("a list");
    assert_eq!(got.len(), expected.len());
    for (n, want) in got.iter().zip(expected) {
        let digits = n.as_number().expect("a number").to_string();
        let parsed: f64 = digits.parse().expect("digits");
        assert_eq!(parsed.to_bits(), want.to_bits(), "{digits} is not {want:e}");
    }
}
