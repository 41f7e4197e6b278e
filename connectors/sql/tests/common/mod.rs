//! What the three databases' tests share: the emulator and the connector in process
//! (the harness), the configuration documents, the captured log, and the behaviours
//! of the issue, each written once and run against PostgreSQL, MariaDB and SQLite.
//!
//! Every wait is on an event: the emulator's handshakes, answers and notifications,
//! a server's "ready" line.
#![allow(dead_code)]

pub mod servers;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vantiq_connector_sdk::{ConnectorSet, Error, ServerConfig};
use vantiq_sim::{QueryOutcome, Sim};
use vantiq_sql_connector::handler::{QUEUE_FULL, SQL_EXCEPTION};
use vantiq_sql_connector::SqlConnector;

const TOKEN: &str = "sql-test-token-9Qe";
/// Bound for event waits: a passing test never gets near it.
pub const WAIT: Duration = Duration::from_secs(60);

/// Which database a test runs against, and its dialect.
#[derive(Clone, Debug)]
pub struct Db {
    pub kind: Kind,
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// The three databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
    Sqlite,
}

impl Db {
    pub fn postgres(pg: &servers::Postgres) -> Db {
        Db {
            kind: Kind::Postgres,
            url: pg.jdbc_url(),
            user: Some(servers::USER.into()),
            password: Some(servers::PASSWORD.into()),
        }
    }

    pub fn mariadb(m: &servers::MariaDb) -> Db {
        Db {
            kind: Kind::MariaDb,
            url: m.jdbc_url(),
            user: Some(servers::USER.into()),
            password: Some(servers::PASSWORD.into()),
        }
    }

    pub fn sqlite(path: &std::path::Path) -> Db {
        Db {
            kind: Kind::Sqlite,
            url: format!("jdbc:sqlite:{}", path.display()),
            user: None,
            password: None,
        }
    }

    /// jdbcSource's configuration document, with `extra` keys in `general`.
    pub fn config(&self, extra: Value) -> Value {
        let mut general = json!({ "dbURL": self.url });
        if let Some(u) = &self.user {
            general["username"] = json!(u);
        }
        if let Some(p) = &self.password {
            general["password"] = json!(p);
        }
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            general[k] = v;
        }
        json!({"vantiq": {"packageRows": "true"}, "jdbcConfig": {"general": general}})
    }

    /// The `n`th bound parameter's placeholder.
    pub fn param(&self, n: usize) -> String {
        match self.kind {
            Kind::Postgres => format!("${n}"),
            _ => "?".into(),
        }
    }

    /// A statement that fills `table (id)` with 1..=n.
    pub fn fill(&self, table: &str, n: u64) -> String {
        match self.kind {
            Kind::Postgres => {
                format!("INSERT INTO {table} (id) SELECT g FROM generate_series(1, {n}) g")
            }
            Kind::MariaDb => format!("INSERT INTO {table} (id) SELECT seq FROM seq_1_to_{n}"),
            Kind::Sqlite => format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
                 INSERT INTO {table} (id) SELECT x FROM c"
            ),
        }
    }
}

/// The log of the whole test binary, to check that no secret is ever in it.
pub fn log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn log_text() -> String {
    String::from_utf8_lossy(&log().lock().unwrap()).into_owned()
}

/// The emulator with some sources and the connector connected to it.
pub struct Harness {
    pub sim: Sim,
    pub set: ConnectorSet,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Harness {
    pub async fn start(sources: &[(&str, Value)]) -> Harness {
        log();
        let mut builder = Sim::builder().token(TOKEN);
        for (name, config) in sources {
            builder = builder.source(*name, config.clone());
        }
        let sim = builder.start().await.expect("emulator starts");
        let mut server_config = ServerConfig::builder(sim.http_url())
            .token(TOKEN)
            .tcp_probe_port(0)
            .metrics_port(0)
            .metrics_address(std::net::Ipv4Addr::LOCALHOST.into());
        for (name, _) in sources {
            server_config = server_config.source(*name);
        }
        let handler = SqlConnector::new();
        let metrics = handler.metrics.clone();
        let set = ConnectorSet::builder(server_config.build().expect("server config"))
            .handler(handler)
            .build()
            .expect("connector set");
        metrics.register(&set);
        let runner = set.clone();
        let task = tokio::spawn(async move { runner.run().await });
        for (name, _) in sources {
            sim.wait_connected(name, WAIT)
                .await
                .expect("the connector connects");
        }
        Harness { sim, set, task }
    }

    pub async fn query(&self, source: &str, params: Value) -> QueryOutcome {
        self.sim
            .query(source, params, WAIT)
            .await
            .expect("the query is answered")
    }

    /// A query that must succeed; its rows.
    pub async fn rows(&self, source: &str, sql: &str) -> Vec<Value> {
        let out = self.query(source, json!({ "query": sql })).await;
        assert!(out.status == 200 || out.status == 204, "{sql}: {out:?}");
        out.rows
    }

    /// A statement sent as a query (jdbcSource's update): one 204 whose body is `{}`.
    pub async fn update(&self, source: &str, sql: &str) {
        let out = self.query(source, json!({ "query": sql })).await;
        assert_eq!(out.status, 204, "{sql}: {out:?}");
        assert_eq!(out.frames.len(), 1, "{out:?}");
        assert_eq!(out.frames[0]["body"], json!({}), "{sql}: {out:?}");
    }

    pub async fn publish(&self, source: &str, message: Value) {
        self.sim.publish(source, message).await.expect("publish");
    }

    pub async fn stop(self) {
        self.set.close().await;
        self.task
            .await
            .expect("run task")
            .expect("run ends cleanly");
    }
}

/// The value of the sample `name{labels}` on the connector's /metrics (0 if absent).
pub async fn metric(h: &Harness, sample: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = h
        .set
        .metrics()
        .local_addr()
        .expect("the metrics endpoint listens");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

pub fn statuses(out: &QueryOutcome) -> Vec<u64> {
    out.frames
        .iter()
        .map(|f| f["status"].as_u64().expect("status"))
        .collect()
}

pub fn sizes(out: &QueryOutcome) -> Vec<usize> {
    out.frames
        .iter()
        .map(|f| f["body"].as_array().map_or(1, Vec::len))
        .collect()
}

/// The error of an error answer (one object, or the first of a list).
pub fn error_of(out: &QueryOutcome) -> Value {
    assert!(out.status >= 400, "expected an error, got {out:?}");
    match out.error.clone().expect("error body") {
        Value::Array(mut list) => list.remove(0),
        other => other,
    }
}

/// The error's message, its template filled in.
pub fn message(e: &Value) -> String {
    let mut text = e["messageTemplate"].as_str().unwrap_or_default().to_owned();
    for (i, p) in e["parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let p = match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text = text.replace(&format!("{{{i}}}"), &p);
    }
    text
}

/// Checks jdbcSource's shape of a database error; returns its message.
pub fn assert_sql_error(out: &QueryOutcome, state: &str) -> String {
    let e = error_of(out);
    assert_eq!(e["messageCode"], SQL_EXCEPTION, "{e}");
    let text = message(&e);
    assert!(
        text.starts_with(
            "Failed to execute query for reason: io.vantiq.extsrc.jdbcSource.JDBC: A database error occurred: "
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(" SQL State: {state}, Error Code: ")),
        "{text}"
    );
    assert!(
        text.contains(". Exception was: io.vantiq.extsrc.jdbcSource.exception.VantiqSQLException. Request was: "),
        "{text}"
    );
    text
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}", N.fetch_add(1, Ordering::Relaxed))
}

// ------------------------------------------------------------------ behaviours

/// A row with `nul: null` added: what a source with `includeNulls` reads.
pub fn with_nulls(row: &Value) -> Value {
    let mut nulls = row.clone();
    nulls["nul"] = Value::Null;
    nulls
}

/// Every behaviour that needs no server restart, in turn; `types` is the values
/// test's CREATE, INSERT and expected row.
pub async fn behaviours(db: &Db, (create, insert, row): (&str, &str, Value)) {
    queries(db).await;
    errors(db).await;
    publishes(db).await;
    polling(db).await;
    bad_configuration(db).await;
    secrets(db).await;
    let nulls = with_nulls(&row);
    values(db, create, insert, row, nulls).await;
    large_answer(db).await;
}

/// The process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024.0
}

/// A large answer is streamed: 200,000 rows (about 40 MB of JSON) pass through the
/// connector while this process's peak memory grows by far less (the emulator counts
/// the rows without keeping them: `Sim::query_load`).
pub async fn large_answer(db: &Db) {
    const ROWS: u64 = 200_000;
    let h = Harness::start(&[("db", db.config(json!({})))]).await;
    let t = unique("large");
    h.update(
        "db",
        &format!(
            "CREATE TABLE {t} (id INTEGER, \
             name VARCHAR(100) DEFAULT 'a name long enough to weigh on memory, row after row')"
        ),
    )
    .await;
    h.update("db", &db.fill(&t, ROWS)).await;
    let before = peak_rss_mib();
    let report = h
        .sim
        .query_load(
            "db",
            json!({"query": format!("SELECT id, name FROM {t}"), "bundleFactor": 500}),
            vantiq_sim::QueryLoad::new(1, 1).timeout(WAIT),
        )
        .await
        .expect("the query is answered");
    assert_eq!((report.rows, report.errors), (ROWS, 0), "{report:?}");
    let grew = peak_rss_mib() - before;
    assert!(
        grew < 30.0,
        "peak RSS grew by {grew:.1} MiB for {ROWS} rows"
    );
    h.stop().await;
}

/// Queries: bundles of bundleFactor rows (100 ... 200), 0 for one answer, the default
/// 500; an update sent as a query answered with one 204; an empty result 204; a
/// statement that returns rows recognised by the database (WITH ... SELECT), bound
/// parameters.
pub async fn queries(db: &Db) {
    let h = Harness::start(&[("db", db.config(json!({})))]).await;
    let t = unique("bundles");
    h.update(
        "db",
        &format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(20))"),
    )
    .await;
    h.update("db", &db.fill(&t, 1234)).await;
    let select = format!("SELECT id FROM {t} ORDER BY id");

    let out = h
        .query("db", json!({"query": select, "bundleFactor": 500}))
        .await;
    assert_eq!(statuses(&out), vec![100, 100, 200]);
    assert_eq!(sizes(&out), vec![500, 500, 234]);
    let ids: Vec<i64> = out.rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=1234).collect::<Vec<_>>());

    let out = h
        .query("db", json!({"query": select, "bundleFactor": 100}))
        .await;
    assert_eq!(out.frames.len(), 13);
    assert_eq!(sizes(&out).last(), Some(&34));

    let out = h
        .query("db", json!({"query": select, "bundleFactor": 0}))
        .await;
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(out.rows.len(), 1234);

    let out = h.query("db", json!({"query": select})).await;
    assert_eq!(
        statuses(&out),
        vec![100, 100, 200],
        "default bundleFactor 500"
    );

    // Exactly one bundle: a single 200.
    let out = h
        .query(
            "db",
            json!({"query": format!("{select} LIMIT 200"), "bundleFactor": 200}),
        )
        .await;
    assert_eq!(statuses(&out), vec![200]);

    // No row: 204.
    let out = h
        .query(
            "db",
            json!({"query": format!("SELECT id FROM {t} WHERE id < 0")}),
        )
        .await;
    assert_eq!(statuses(&out), vec![204]);
    assert_eq!(out.frames[0]["body"], json!({}), "jdbcSource's empty map");

    // An update as a query: applied, one 204.
    h.update("db", &format!("UPDATE {t} SET name = 'x' WHERE id <= 10"))
        .await;
    let rows = h
        .rows(
            "db",
            &format!("SELECT COUNT(*) AS n FROM {t} WHERE name = 'x'"),
        )
        .await;
    assert_eq!(rows, vec![json!({"n": 10})]);

    // A statement that returns rows though it does not start with SELECT.
    let rows = h
        .rows(
            "db",
            &format!(
                "WITH small AS (SELECT id FROM {t} WHERE id <= 3) SELECT id FROM small ORDER BY id"
            ),
        )
        .await;
    assert_eq!(
        rows,
        vec![json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]
    );
    let rows = h.rows("db", "  \n  select 1 AS one").await;
    assert_eq!(rows, vec![json!({"one": 1})]);

    // Bound parameters.
    let out = h
        .query(
            "db",
            json!({
                "query": format!("SELECT id, name FROM {t} WHERE id >= {} AND name = {} ORDER BY id", db.param(1), db.param(2)),
                "params": [9, "x"],
            }),
        )
        .await;
    assert_eq!(
        out.rows,
        vec![
            json!({"id": 9, "name": "x"}),
            json!({"id": 10, "name": "x"})
        ]
    );
    // A parameter is a value, never SQL.
    let out = h
        .query(
            "db",
            json!({
                "query": format!("SELECT COUNT(*) AS n FROM {t} WHERE name = {}", db.param(1)),
                "params": ["x' OR '1'='1"],
            }),
        )
        .await;
    assert_eq!(out.rows, vec![json!({"n": 0})]);

    // A list of statements as a query: a batch, answered with 204.
    let out = h
        .query(
            "db",
            json!({"query": [format!("DELETE FROM {t} WHERE id = 1"), format!("DELETE FROM {t} WHERE id = 2")]}),
        )
        .await;
    assert_eq!(statuses(&out), vec![204]);
    let rows = h
        .rows("db", &format!("SELECT COUNT(*) AS n FROM {t}"))
        .await;
    assert_eq!(rows, vec![json!({"n": 1232})]);

    // `query` missing or not a string: jdbcSource's queryNotString.
    let out = h.query("db", json!({"sql": "SELECT 1"})).await;
    assert_eq!(
        error_of(&out)["messageCode"],
        "io.vantiq.extsrc.jdbcSource.JDBCCore.queryNotString"
    );

    // The connector's own series.
    let rows = |o: &str| format!("sql_queries_total{{source=\"db\",outcome=\"{o}\"}}");
    assert!(metric(&h, &rows("rows")).await >= 9.0);
    assert!(metric(&h, &rows("empty")).await >= 5.0);
    assert_eq!(metric(&h, &rows("error")).await, 1.0);
    assert!(metric(&h, "sql_rows_total{source=\"db\"}").await >= 5136.0);
    assert!(metric(&h, "sql_pool_connections{source=\"db\",state=\"open\"}").await >= 1.0);
    h.stop().await;
}

/// Bad SQL and constraint violations: jdbcSource's error, with the database's message
/// and SQLSTATE; the connector runs on.
pub async fn errors(db: &Db) {
    let h = Harness::start(&[("db", db.config(json!({})))]).await;
    let out = h
        .query("db", json!({"query": "SELECT * FROM no_such_table_x"}))
        .await;
    let state = match db.kind {
        Kind::Postgres => "42P01",
        Kind::MariaDb => "42S02",
        Kind::Sqlite => "null",
    };
    let text = assert_sql_error(&out, state);
    assert!(text.contains("no_such_table_x"), "{text}");
    assert!(
        text.ends_with("Request was: SELECT * FROM no_such_table_x"),
        "{text}"
    );

    let out = h.query("db", json!({"query": "SELEKT 1"})).await;
    let state = match db.kind {
        Kind::Postgres => "42601",
        Kind::MariaDb => "42000",
        Kind::Sqlite => "null",
    };
    assert_sql_error(&out, state);

    let t = unique("uniq");
    h.update("db", &format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY)"))
        .await;
    h.update("db", &format!("INSERT INTO {t} (id) VALUES (1)"))
        .await;
    let out = h
        .query(
            "db",
            json!({"query": format!("INSERT INTO {t} (id) VALUES (1)")}),
        )
        .await;
    let state = match db.kind {
        Kind::Postgres => "23505",
        Kind::MariaDb => "23000",
        Kind::Sqlite => "null",
    };
    let text = assert_sql_error(&out, state);
    match db.kind {
        Kind::MariaDb => assert!(text.contains("Error Code: 1062"), "{text}"),
        Kind::Sqlite => assert!(text.contains("UNIQUE constraint failed"), "{text}"),
        Kind::Postgres => assert!(text.contains("duplicate key"), "{text}"),
    }
    // And on it goes.
    assert_eq!(
        h.rows("db", &format!("SELECT id FROM {t}")).await,
        vec![json!({"id": 1})]
    );
    h.stop().await;
}

/// Publishes: one statement; a list as one batch in one transaction (all or none); a
/// publish that fails on its SQL is logged and counted, and the next ones run.
pub async fn publishes(db: &Db) {
    let h = Harness::start(&[("db", db.config(json!({})))]).await;
    let t = unique("pub");
    h.publish(
        "db",
        json!({"query": format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, name VARCHAR(20))")}),
    )
    .await;
    h.publish(
        "db",
        json!({"query": format!("INSERT INTO {t} VALUES (1, 'a')")}),
    )
    .await;
    h.publish(
        "db",
        json!({"query": [format!("INSERT INTO {t} VALUES (2, 'b')"), format!("INSERT INTO {t} VALUES (3, 'c')")]}),
    )
    .await;
    // A batch whose last statement fails: none of it is applied.
    h.publish(
        "db",
        json!({"query": [format!("INSERT INTO {t} VALUES (4, 'd')"), format!("INSERT INTO {t} VALUES (1, 'dup')")]}),
    )
    .await;
    h.publish("db", json!({"query": "NOT SQL AT ALL"})).await;
    h.publish(
        "db",
        json!({"query": format!("INSERT INTO {t} VALUES ({}, {})", db.param(1), db.param(2)), "params": [5, "e'e"]}),
    )
    .await;
    // Publishes are handled in order, and before a query that follows them.
    let rows = h
        .rows("db", &format!("SELECT id, name FROM {t} ORDER BY id"))
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "name": "a"}),
            json!({"id": 2, "name": "b"}),
            json!({"id": 3, "name": "c"}),
            json!({"id": 5, "name": "e'e"}),
        ]
    );
    let log = log_text();
    assert!(
        log.contains("publish failed"),
        "the failed publish is logged"
    );
    let publishes = |o: &str| format!("sql_publishes_total{{source=\"db\",outcome=\"{o}\"}}");
    assert_eq!(metric(&h, &publishes("ok")).await, 4.0);
    assert_eq!(metric(&h, &publishes("failed")).await, 2.0);
    h.stop().await;
}

/// Polling: every pollTime, each row of pollQuery a notification, the same rows again
/// each time.
pub async fn polling(db: &Db) {
    // The table first, through a source without polling.
    let t = unique("poll");
    {
        let h = Harness::start(&[("setup", db.config(json!({})))]).await;
        h.update(
            "setup",
            &format!("CREATE TABLE {t} (id INTEGER, name VARCHAR(10))"),
        )
        .await;
        h.update(
            "setup",
            &format!("INSERT INTO {t} VALUES (1, 'a'), (2, 'b')"),
        )
        .await;
        h.stop().await;
    }
    let h = Harness::start(&[(
        "db",
        db.config(
            json!({"pollTime": 50, "pollQuery": format!("SELECT id, name FROM {t} ORDER BY id")}),
        ),
    )])
    .await;
    let got = h
        .sim
        .wait_notifications("db", 6, WAIT)
        .await
        .expect("polled rows");
    let objects: Vec<Value> = got.iter().take(6).map(|n| n.object.clone()).collect();
    let a = json!({"id": 1, "name": "a"});
    let b = json!({"id": 2, "name": "b"});
    assert_eq!(
        objects,
        vec![a.clone(), b.clone(), a.clone(), b.clone(), a, b.clone()]
    );
    assert!(metric(&h, "sql_poll_rows_total{source=\"db\"}").await >= 6.0);
    assert!(metric(&h, "sql_poll_seconds_count{source=\"db\"}").await >= 3.0);

    // The source edited in Vantiq (a new configuration, reconnectRequired): the new
    // pollQuery replaces the old one.
    let edited = db.config(
        json!({"pollTime": 50, "pollQuery": format!("SELECT id, name FROM {t} WHERE id = 2")}),
    );
    h.sim.set_config("db", edited).await.expect("set_config");
    h.sim
        .wait_connections("db", 2, WAIT)
        .await
        .expect("reconnects");
    let start = h.sim.notifications("db", 0).len();
    let mut seen = start;
    loop {
        let all = h
            .sim
            .wait_notifications("db", seen + 1, WAIT)
            .await
            .expect("polled rows");
        seen = all.len();
        let last: Vec<&Value> = all.iter().rev().take(4).map(|n| &n.object).collect();
        if seen - start >= 4 && last.iter().all(|o| **o == b) {
            break;
        }
        assert!(seen - start < 200, "the old pollQuery still runs: {last:?}");
    }
    h.stop().await;
}

/// A configuration that cannot be used is refused with the field named; the
/// connector keeps serving its other sources; no password in answers or logs.
pub async fn bad_configuration(db: &Db) {
    let mut bad_url = db.config(json!({}));
    bad_url["jdbcConfig"]["general"]["dbURL"] = json!("jdbc:oracle:thin:@host:1521:x");
    let mut bad_poll = db.config(json!({"pollTime": "often", "pollQuery": "SELECT 1"}));
    bad_poll["jdbcConfig"]["general"]["password"] = json!("pw-bad-config-Kq2");
    let h = Harness::start(&[
        ("good", db.config(json!({}))),
        ("badurl", bad_url),
        ("badpoll", bad_poll),
        (
            "nopackage",
            json!({"jdbcConfig": {"general": {"dbURL": db.url}}}),
        ),
    ])
    .await;
    for (source, field) in [
        ("badurl", "jdbcConfig.general.dbURL"),
        ("badpoll", "jdbcConfig.general.pollTime"),
        ("nopackage", "vantiq.packageRows"),
    ] {
        let out = h.query(source, json!({"query": "SELECT 1 AS one"})).await;
        let e = error_of(&out);
        assert_eq!(
            e["messageCode"], "io.vantiq.connector.configurationRejected",
            "{e}"
        );
        assert!(message(&e).contains(field), "{source}: {e}");
    }
    assert_eq!(
        h.rows("good", "SELECT 1 AS one").await,
        vec![json!({"one": 1})]
    );
    let log = log_text();
    assert!(
        log.contains("jdbcConfig.general.pollTime"),
        "the refusal is logged"
    );
    assert!(!log.contains("pw-bad-config-Kq2"));
    h.stop().await;
}

/// Secrets: a wrong password's error (answer and log) names neither password; nor
/// does a bad statement's, nor the configuration's `Debug`.
pub async fn secrets(db: &Db) {
    let mut wrong = db.config(json!({"connectTimeout": 3000}));
    wrong["jdbcConfig"]["general"]["password"] = json!("pw-wrong-Hh3");
    let mut good = db.config(json!({}));
    if db.kind == Kind::Sqlite {
        // SQLite has no password; a document may still carry one (ignored).
        good["jdbcConfig"]["general"]["password"] = json!(servers::PASSWORD);
    }
    let h = Harness::start(&[("db", good.clone()), ("wrong", wrong)]).await;
    let mut answers = Vec::new();
    if db.kind != Kind::Sqlite {
        let out = h.query("wrong", json!({"query": "SELECT 1 AS one"})).await;
        let e = error_of(&out);
        assert_eq!(e["messageCode"], SQL_EXCEPTION, "{e}");
        answers.push(e.to_string());
    }
    let bad = h
        .query("db", json!({"query": "SELECT nope FROM nowhere_t"}))
        .await;
    answers.push(error_of(&bad).to_string());
    let log = log_text();
    for secret in ["pw-wrong-Hh3", servers::PASSWORD] {
        for answer in &answers {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
        assert!(!log.contains(secret), "{secret} in the log");
    }
    let config = vantiq_sql_connector::SourceConfig::from_document(&good).unwrap();
    assert!(!format!("{config:?}").contains(servers::PASSWORD));
    h.stop().await;
}

/// Values: jdbcSource's formats where it has them, exact JSON where it is broken.
/// `table` is created by `create` and filled by `insert`; `expected` is the row.
pub async fn values(db: &Db, create: &str, insert: &str, expected: Value, with_nulls: Value) {
    let h = Harness::start(&[
        ("db", db.config(json!({}))),
        ("nulls", db.config(json!({"includeNulls": true}))),
    ])
    .await;
    h.update("db", create).await;
    h.update("db", insert).await;
    let rows = h.rows("db", "SELECT * FROM types_t").await;
    assert_eq!(rows, vec![expected.clone()]);
    // The numbers' text, digit for digit, in the frame itself.
    let out = h
        .query("db", json!({"query": "SELECT * FROM types_t"}))
        .await;
    let frame = serde_json::to_string(&out.frames[0]).unwrap();
    for digits in [
        "12345678901234.123456",
        "0.000001",
        "-7.000000",
        "9007199254740993",
    ] {
        assert!(frame.contains(digits), "{digits} in {frame}");
    }
    // Through a bound parameter (PostgreSQL's and MySQL's binary formats): the same.
    let out = h
        .query(
            "db",
            json!({"query": format!("SELECT * FROM types_t WHERE i = {}", db.param(1)), "params": [2147483647]}),
        )
        .await;
    assert_eq!(out.rows, vec![expected], "through a bound parameter");
    // NULL columns as null when the configuration asks for them.
    let rows = h.rows("nulls", "SELECT * FROM types_t").await;
    assert_eq!(rows, vec![with_nulls]);
    h.stop().await;
}

/// [`concurrency`] on a server: `$opts` (the driver's connect options for the tests'
/// user) makes the connection that runs `$lock` (a lock on `conc_t` held until it is
/// dropped) and the pool that runs `$count` (statements waiting on it).
#[macro_export]
macro_rules! concurrency_on {
    ($db:expr, $pool:ty, $opts:expr, $lock:expr, $count:expr) => {{
        use sqlx::{ConnectOptions, Executor};
        let opts = $opts;
        let watcher = <$pool>::connect_with(opts.clone()).await.unwrap();
        let hold = async move {
            let mut c = opts.connect().await.expect("connects");
            c.execute($lock).await.expect("lock");
            Box::new(c) as Box<dyn std::any::Any + Send>
        };
        let waiting = || {
            let w = watcher.clone();
            async move {
                sqlx::query_scalar::<_, i64>($count)
                    .fetch_one(&w)
                    .await
                    .unwrap() as usize
            }
        };
        common::concurrency($db, "conc_t", hold, waiting).await;
    }};
}

/// asynchronousProcessing: maxActiveTasks at once, maxQueuedTasks waiting, then
/// jdbcSource's queuedTasksFull. `hold` locks `table` from outside the connector
/// until what it returns is dropped; `waiting` says how many of the connector's
/// statements wait on that lock.
pub async fn concurrency<H, W, F>(db: &Db, table: &str, hold: H, waiting: W)
where
    H: std::future::Future<Output = Box<dyn std::any::Any + Send>>,
    W: Fn() -> F,
    F: std::future::Future<Output = usize>,
{
    let h = Arc::new(
        Harness::start(&[(
            "db",
            db.config(
                json!({"asynchronousProcessing": true, "maxActiveTasks": 2, "maxQueuedTasks": 1}),
            ),
        )])
        .await,
    );
    h.update("db", &format!("CREATE TABLE {table} (id INTEGER)"))
        .await;
    h.update("db", &format!("INSERT INTO {table} VALUES (1)"))
        .await;
    let lock = hold.await;
    let select = json!({"query": format!("SELECT id FROM {table}")});
    let spawn = |h: &Arc<Harness>| {
        let h = h.clone();
        let q = select.clone();
        tokio::spawn(async move { h.query("db", q).await })
    };
    let active: Vec<_> = (0..2).map(|_| spawn(&h)).collect();
    // Both active queries wait on the lock.
    while waiting().await < 2 {
        tokio::task::yield_now().await;
    }
    // Three more: one fits in the queue, two are refused at once.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let more: Vec<_> = (0..3)
        .map(|_| {
            let task = spawn(&h);
            let done = done_tx.clone();
            tokio::spawn(async move {
                let out = task.await.unwrap();
                let _ = done.send(out.clone());
                out
            })
        })
        .collect();
    for _ in 0..2 {
        let out = done_rx.recv().await.unwrap();
        assert_eq!(error_of(&out)["messageCode"], QUEUE_FULL, "{out:?}");
    }
    drop(lock);
    let mut ok = 0;
    for task in more {
        let out = task.await.unwrap();
        if out.status == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "the queued query runs");
    for task in active {
        let out = task.await.unwrap();
        assert_eq!(out.rows, vec![json!({"id": 1})], "{out:?}");
    }
    // Publishes run on tasks of their own (not ordered with queries): ask until the
    // row is there.
    h.publish(
        "db",
        json!({"query": format!("INSERT INTO {table} VALUES (2)")}),
    )
    .await;
    let count = json!({"query": format!("SELECT COUNT(*) AS n FROM {table}")});
    let mut asked = 0;
    while h.query("db", count.clone()).await.rows != vec![json!({"n": 2})] {
        asked += 1;
        assert!(asked < 10_000, "the asynchronous publish never ran");
    }
    Arc::try_unwrap(h).ok().expect("one harness").stop().await;
}

/// Faults: while the database is down a query gets the error at once and polling
/// pauses, a publish is kept; after a restart the first query succeeds, the kept
/// publish is applied and polling resumes. `stop` and `resume` control the server.
pub async fn faults<S, R>(db: &Db, mut stop: S, mut resume: R)
where
    S: FnMut(),
    R: FnMut(),
{
    let t = unique("fault");
    let h = Harness::start(&[(
        "db",
        db.config(json!({
            "pollTime": 50,
            "pollQuery": format!("SELECT id FROM {t} ORDER BY id"),
            "publishRetryInterval": 50,
            "publishRetryLimit": 1,
            "connectTimeout": 20000,
        })),
    )])
    .await;
    h.update("db", &format!("CREATE TABLE {t} (id INTEGER)"))
        .await;
    h.update("db", &format!("INSERT INTO {t} VALUES (1)")).await;
    h.sim.wait_notifications("db", 1, WAIT).await.unwrap();

    stop();
    // At once: well within connectTimeout (20 s).
    let started = Instant::now();
    let out = h
        .query("db", json!({"query": format!("SELECT id FROM {t}")}))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let e = error_of(&out);
    assert_eq!(e["messageCode"], SQL_EXCEPTION, "{e}");
    assert!(message(&e).contains("SQL State: 08"), "{e}");
    // Kept (publishRetryLimit 1), then one too many: dropped and counted.
    for id in [2, 3] {
        h.publish(
            "db",
            json!({"query": format!("INSERT INTO {t} VALUES ({id})")}),
        )
        .await;
    }

    resume();
    let rows = h.rows("db", "SELECT 1 AS one").await;
    assert_eq!(
        rows,
        vec![json!({"one": 1})],
        "the first query after the restart succeeds"
    );
    // The kept publish is applied, and polling resumes: wait for a poll that shows it.
    loop {
        let all = h.sim.notifications("db", 0);
        if all.iter().any(|n| n.object == json!({"id": 2})) {
            break;
        }
        let n = all.len();
        h.sim
            .wait_notifications("db", n + 1, WAIT)
            .await
            .expect("polling resumes");
    }
    let retried = "sql_publishes_total{source=\"db\",outcome=\"retried\"}";
    assert_eq!(metric(&h, retried).await, 1.0, "the kept publish, counted");
    let dropped = "sql_publishes_total{source=\"db\",outcome=\"dropped\"}";
    assert_eq!(
        metric(&h, dropped).await,
        1.0,
        "the one beyond the limit, counted"
    );
    assert_eq!(
        metric(&h, "sql_publishes_pending{source=\"db\"}").await,
        0.0
    );
    let ids = h
        .rows("db", &format!("SELECT id FROM {t} ORDER BY id"))
        .await;
    assert_eq!(ids, vec![json!({"id": 1}), json!({"id": 2})]);
    h.stop().await;
}
