//! The `sqlite` example connector (connectors/sqlite)
//! against the emulator: publishes insert rows, queries stream them back.
//!
//! Every wait is on an event: the emulator's handshake count or the
//! notifications of inserts (`notifyInserts: true`). Queries need no wait of
//! their own: the SDK starts a query only after the connect and publish
//! handlers of the events that came before it have finished.

#[path = "../../../tests/common/prom.rs"]
mod prom;

use std::time::Duration;

use serde_json::{json, Value};
use vantiq_connector_sdk::{ConnectorSet, Error, ServerConfig};
use vantiq_sim::{QueryOutcome, Sim};
use vantiq_sqlite_connector::SqliteConnector;

const TOKEN: &str = "sqlite-test-token-4Kq";
const SOURCE: &str = "db";
/// Bound for event waits: a passing test never gets near it.
const WAIT: Duration = Duration::from_secs(30);

const DDL: &str = "CREATE TABLE IF NOT EXISTS events (id INTEGER, name TEXT, value REAL, tags TEXT, flag INTEGER)";

/// A configuration document for an in-memory database with `events`.
fn memory_config() -> Value {
    json!({
        "database": ":memory:",
        "table": "events",
        "createTable": DDL,
        "chunkSize": 500,
        "notifyInserts": true,
    })
}

struct Harness {
    sim: Sim,
    set: ConnectorSet,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Harness {
    /// The emulator with source `db` configured with `config`, and the
    /// connector connected to it.
    async fn start(config: Value) -> Harness {
        let sim = Sim::builder()
            .token(TOKEN)
            .source(SOURCE, config)
            .start()
            .await
            .expect("emulator starts");
        let server_config = ServerConfig::builder(sim.http_url())
            .token(TOKEN)
            .source(SOURCE)
            .tcp_probe_port(0)
            .metrics_port(0)
            .metrics_address(prom::LOCALHOST.into())
            .build()
            .expect("valid server config");
        let handler = SqliteConnector::new();
        let metrics = handler.metrics.clone();
        let set = ConnectorSet::builder(server_config)
            .handler(handler)
            .build()
            .expect("connector set");
        metrics.register(&set);
        let runner = set.clone();
        let task = tokio::spawn(async move { runner.run().await });
        sim.wait_connected(SOURCE, WAIT)
            .await
            .expect("the connector connects");
        Harness { sim, set, task }
    }

    /// Publishes `rows` and waits for their insert notifications; returns
    /// the notified rowids.
    async fn insert(&self, rows: &[Value], already: usize) -> Vec<i64> {
        for row in rows {
            self.sim
                .publish(SOURCE, row.clone())
                .await
                .expect("publish");
        }
        let got = self
            .sim
            .wait_notifications(SOURCE, already + rows.len(), WAIT)
            .await
            .expect("insert notifications");
        got[already..]
            .iter()
            .map(|n| {
                assert_eq!(n.object["table"], "events", "{:?}", n.object);
                n.object["inserted"].as_i64().expect("rowid")
            })
            .collect()
    }

    async fn query(&self, params: Value) -> QueryOutcome {
        self.sim
            .query(SOURCE, params, WAIT)
            .await
            .expect("the query is answered")
    }

    async fn stop(self) {
        self.set.close().await;
        self.task
            .await
            .expect("run task")
            .expect("run ends cleanly");
        drop(self.sim);
    }
}

/// The connector's own series are served with the SDK's, and follow the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_serves_its_own_metrics() {
    let h = Harness::start(memory_config()).await;
    let addr = h.set.metrics().local_addr().expect("the endpoint listens");
    let rows: Vec<Value> = (0..3).map(row).collect();
    h.insert(&rows, 0).await;
    // A publish that cannot be inserted, then one that can: publishes are
    // handled in order, so once the second is notified the first was counted.
    h.sim
        .publish(SOURCE, json!({"no_such_column": 1}))
        .await
        .unwrap();
    h.insert(&[row(3)], 3).await;
    let out = h
        .query(json!({"sql": "SELECT id FROM events ORDER BY id"}))
        .await;
    assert_eq!(out.rows.len(), 4);

    let m = prom::scrape(addr).await;
    let db = [("source", SOURCE)];
    assert_eq!(prom::sample(&m, "sqlite_rows_inserted_total", &db), 4.0);
    assert_eq!(prom::sample(&m, "sqlite_inserts_failed_total", &db), 1.0);
    assert_eq!(prom::sample(&m, "sqlite_rows_returned_total", &db), 4.0);
    assert_eq!(prom::sample(&m, "sqlite_query_seconds_count", &db), 1.0);
    // With the SDK's own series.
    assert_eq!(
        prom::sample(&m, "vantiq_connector_publishes_received_total", &db),
        5.0
    );
    h.stop().await;
}

fn statuses(out: &QueryOutcome) -> Vec<u64> {
    out.frames
        .iter()
        .map(|f| f["status"].as_u64().expect("status"))
        .collect()
}

/// The error of an error answer (one object, or the first of a list).
fn error_of(out: &QueryOutcome) -> Value {
    assert!(out.status >= 400, "expected an error, got {out:?}");
    match out.error.clone().expect("error body") {
        Value::Array(mut list) => list.remove(0),
        other => other,
    }
}

fn assert_error(out: &QueryOutcome, code: &str) -> Value {
    let e = error_of(out);
    assert_eq!(e["messageCode"], code, "{e}");
    assert!(e["messageTemplate"].is_string(), "{e}");
    assert!(e["parameters"].is_array(), "{e}");
    e
}

fn row(i: i64) -> Value {
    json!({"id": i, "name": format!("n{i}"), "value": i as f64 * 0.5})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_insert_and_queries_stream_back_in_chunks() {
    let h = Harness::start(memory_config()).await;
    let rows: Vec<Value> = (0..1234).map(row).collect();
    let rowids = h.insert(&rows, 0).await;
    assert_eq!(rowids, (1..=1234).collect::<Vec<i64>>());

    let out = h
        .query(json!({"sql": "SELECT id, name, value FROM events ORDER BY id"}))
        .await;
    assert_eq!(out.status, 200, "{:?}", out.error);
    assert_eq!(statuses(&out), vec![100, 100, 200]);
    let sizes: Vec<usize> = out
        .frames
        .iter()
        .map(|f| f["body"].as_array().expect("a list of rows").len())
        .collect();
    assert_eq!(sizes, vec![500, 500, 234]);
    assert_eq!(out.rows, rows);

    // Exactly one chunk: a single 200.
    let out = h
        .query(json!({"sql": "SELECT id FROM events ORDER BY id LIMIT 500"}))
        .await;
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(out.rows.len(), 500);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_as_json() {
    let h = Harness::start(memory_config()).await;
    h.insert(
        &[
            json!({"id": 1, "name": "a", "value": 1.5, "tags": ["x", "y"], "flag": true}),
            json!({"id": 2, "name": null, "value": -3, "tags": {"k": 1}, "flag": false}),
            json!({}),
        ],
        0,
    )
    .await;
    let out = h
        .query(json!({"sql": "SELECT id, name, value, tags, flag, x'00ff' AS b FROM events ORDER BY rowid"}))
        .await;
    assert_eq!(out.status, 200, "{:?}", out.error);
    assert_eq!(
        out.rows,
        vec![
            json!({"id": 1, "name": "a", "value": 1.5, "tags": "[\"x\",\"y\"]", "flag": 1, "b": "AP8="}),
            json!({"id": 2, "name": null, "value": -3.0, "tags": "{\"k\":1}", "flag": 0, "b": "AP8="}),
            json!({"id": null, "name": null, "value": null, "tags": null, "flag": null, "b": "AP8="}),
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameterised_queries() {
    let h = Harness::start(memory_config()).await;
    let rows: Vec<Value> = (0..20).map(row).collect();
    h.insert(&rows, 0).await;

    let out = h
        .query(json!({"sql": "SELECT name FROM events WHERE id = ?1", "params": [7]}))
        .await;
    assert_eq!(out.status, 200, "{:?}", out.error);
    assert_eq!(out.rows, vec![json!({"name": "n7"})]);

    let out = h
        .query(json!({
            "sql": "SELECT id FROM events WHERE id >= ? AND name <> ? ORDER BY id",
            "params": [17, "n18"],
        }))
        .await;
    assert_eq!(out.rows, vec![json!({"id": 17}), json!({"id": 19})]);

    // Named parameters, with and without their prefix.
    let out = h
        .query(json!({
            "sql": "SELECT count(*) AS n FROM events WHERE id BETWEEN :lo AND @hi",
            "params": {"lo": 5, "@hi": 9},
        }))
        .await;
    assert_eq!(out.rows, vec![json!({"n": 5})]);

    // A parameter value that is SQL stays a value.
    let out = h
        .query(json!({
            "sql": "SELECT id FROM events WHERE name = ?1",
            "params": ["n1' OR '1'='1"],
        }))
        .await;
    assert_eq!(out.status, 204, "{out:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rows_is_204() {
    let h = Harness::start(memory_config()).await;
    let out = h.query(json!({"sql": "SELECT * FROM events"})).await;
    assert_eq!(out.status, 204, "{out:?}");
    assert_eq!(statuses(&out), vec![204]);
    assert!(out.rows.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_read_only_statements_are_allowed() {
    let h = Harness::start(memory_config()).await;
    let out = h.query(json!({"sql": "VALUES (1, 'a'), (2, 'b')"})).await;
    assert_eq!(out.status, 200, "{:?}", out.error);
    assert_eq!(out.rows.len(), 2);
    let out = h
        .query(json!({"sql": "WITH t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t WHERE x < 3) SELECT x FROM t"}))
        .await;
    assert_eq!(
        out.rows,
        vec![json!({"x": 1}), json!({"x": 2}), json!({"x": 3})]
    );
    let out = h.query(json!({"sql": "PRAGMA table_info(events)"})).await;
    assert_eq!(out.status, 200, "{:?}", out.error);
    let names: Vec<&str> = out
        .rows
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "name", "value", "tags", "flag"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_are_not_read_only_are_refused() {
    let h = Harness::start(memory_config()).await;
    h.insert(&[row(1)], 0).await;
    for sql in [
        "DELETE FROM events",
        "INSERT INTO events (id) VALUES (99)",
        "UPDATE events SET name = 'x'",
        "DROP TABLE events",
        "CREATE TABLE other (a)",
        "ATTACH DATABASE ':memory:' AS other",
        "BEGIN",
        "WITH x AS (SELECT 1) DELETE FROM events",
    ] {
        let out = h.query(json!({ "sql": sql })).await;
        let e = assert_error(&out, "sqlite.notReadOnly");
        assert_eq!(e["parameters"], json!([sql]), "{e}");
    }
    // Nothing was changed.
    let out = h.query(json!({"sql": "SELECT id, name FROM events"})).await;
    assert_eq!(out.rows, vec![json!({"id": 1, "name": "n1"})]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sql_is_a_clear_error() {
    let h = Harness::start(memory_config()).await;
    let out = h.query(json!({"sql": "SELEC * FROM events"})).await;
    let e = assert_error(&out, "sqlite.badSql");
    assert_eq!(e["parameters"][0], "SELEC * FROM events");
    assert!(
        e["parameters"][1]
            .as_str()
            .unwrap()
            .contains("syntax error"),
        "{e}"
    );

    let out = h.query(json!({"sql": "SELECT * FROM nowhere"})).await;
    let e = assert_error(&out, "sqlite.badSql");
    assert!(
        e["parameters"][1].as_str().unwrap().contains("nowhere"),
        "{e}"
    );

    // Two statements: the second would run unchecked, so it is refused.
    let out = h
        .query(json!({"sql": "SELECT 1; DELETE FROM events"}))
        .await;
    let e = assert_error(&out, "sqlite.badSql");
    assert!(
        e["parameters"][1]
            .as_str()
            .unwrap()
            .contains("one statement"),
        "{e}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_a_clear_error() {
    let h = Harness::start(memory_config()).await;
    let cases = [
        (json!({}), "sql", "missing"),
        (json!({"sql": 5}), "sql", "string"),
        (json!({"sql": "  "}), "sql", "empty"),
        (
            json!({"sql": "SELECT * FROM events", "params": "x"}),
            "params",
            "list or an object",
        ),
        (
            json!({"sql": "SELECT * FROM events WHERE id = ?1"}),
            "params",
            "none were given",
        ),
        (
            json!({"sql": "SELECT * FROM events WHERE id = ?1", "params": [1, 2]}),
            "params",
            "2 were given",
        ),
        (
            json!({"sql": "SELECT * FROM events WHERE id = :id", "params": {"nope": 1}}),
            "params",
            ":nope",
        ),
        (
            json!({"sql": "SELECT * FROM events WHERE id = :id AND name = :name", "params": {"id": 1}}),
            "params",
            ":name",
        ),
    ];
    for (params, name, reason) in cases {
        let out = h.query(params.clone()).await;
        let e = assert_error(&out, "sqlite.badParameters");
        assert_eq!(e["parameters"][0], name, "{params}: {e}");
        assert!(
            e["parameters"][1].as_str().unwrap().contains(reason),
            "{params}: {e}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rows_ends_the_query_with_an_error() {
    let mut config = memory_config();
    config["maxRows"] = json!(25);
    config["chunkSize"] = json!(10);
    let h = Harness::start(config).await;
    let rows: Vec<Value> = (0..30).map(row).collect();
    h.insert(&rows, 0).await;

    let out = h.query(json!({"sql": "SELECT id FROM events"})).await;
    let e = assert_error(&out, "sqlite.tooManyRows");
    assert_eq!(e["parameters"][0], 25);
    // The chunks before the limit went out as partial answers.
    assert_eq!(statuses(&out), vec![100, 100, 400]);

    let out = h
        .query(json!({"sql": "SELECT id FROM events LIMIT 25"}))
        .await;
    assert_eq!(statuses(&out), vec![100, 100, 200]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_that_do_not_fit_are_skipped() {
    let h = Harness::start(memory_config()).await;
    // A key that is no identifier, an unknown column: logged and skipped.
    // Publishes are handled in order, so the notification of the last one
    // means the first two were handled.
    h.sim
        .publish(SOURCE, json!({"id); DROP TABLE events; --": 1}))
        .await
        .unwrap();
    h.sim.publish(SOURCE, json!({"nocolumn": 1})).await.unwrap();
    h.insert(&[row(5)], 0).await;
    let out = h.query(json!({"sql": "SELECT id FROM events"})).await;
    assert_eq!(out.rows, vec![json!({"id": 5})]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfiguration_opens_the_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db");
    let second = dir.path().join("second.db");
    let config = |path: &std::path::Path| {
        json!({
            "database": path.to_str().unwrap(),
            "table": "events",
            "createTable": DDL,
            "notifyInserts": true,
        })
    };
    let h = Harness::start(config(&first)).await;
    h.insert(&[row(1), row(2)], 0).await;
    let out = h
        .query(json!({"sql": "SELECT count(*) AS n FROM events"}))
        .await;
    assert_eq!(out.rows, vec![json!({"n": 2})]);

    h.sim
        .set_config(SOURCE, config(&second))
        .await
        .expect("set_config");
    h.sim
        .wait_connections(SOURCE, 2, WAIT)
        .await
        .expect("the connector reconnects");
    let out = h
        .query(json!({"sql": "SELECT count(*) AS n FROM events"}))
        .await;
    assert_eq!(out.rows, vec![json!({"n": 0})], "the new database is used");
    h.insert(&[row(3)], 2).await;
    let out = h.query(json!({"sql": "SELECT id FROM events"})).await;
    assert_eq!(out.rows, vec![json!({"id": 3})]);

    // The first database kept its rows, on disk.
    let conn = rusqlite::Connection::open(&first).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);

    // A configuration that cannot be used: queries say why.
    h.sim
        .set_config(
            SOURCE,
            json!({"database": dir.path().join("no/such/dir/x.db").to_str().unwrap()}),
        )
        .await
        .expect("set_config");
    h.sim
        .wait_connections(SOURCE, 3, WAIT)
        .await
        .expect("the connector reconnects");
    let out = h.query(json!({"sql": "SELECT 1 AS one"})).await;
    let e = assert_error(&out, "sqlite.notConfigured");
    assert_eq!(e["parameters"][0], SOURCE);
    assert!(
        e["parameters"][1].as_str().unwrap().contains("cannot open"),
        "{e}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_document_is_reported_by_queries() {
    let h = Harness::start(json!({"table": "events"})).await;
    let out = h.query(json!({"sql": "SELECT 1 AS one"})).await;
    let e = assert_error(&out, "sqlite.notConfigured");
    assert!(
        e["parameters"][1].as_str().unwrap().contains("database"),
        "{e}"
    );
    h.stop().await;
}
