//! The connector against a real PostgreSQL server (Debian's, started by the test in a
//! temporary directory, unprivileged, on loopback) with vantiq-sim as the Vantiq side.

mod common;

use common::servers::{Postgres, PASSWORD, USER};
use common::Db;
use serde_json::Value;
use sqlx::{ConnectOptions, Connection, Executor, Row};

fn expected() -> (Value, Value) {
    let row = r#"{"n": 12345678901234.123456, "n2": 0.000001, "n3": -7.000000, "big": 9007199254740993,
        "i": 2147483647, "s": -32768, "f": 0.5, "r": 1.5, "b": true, "t": "héllo \"q\" ✓",
        "v": "vc", "c": "ab ", "bin": "AP8Q", "j": {"a": [1, 2.50, "x"]}, "jb": {"b": null},
        "d": "2024-02-29", "tm": "13:04:05.678+0000", "ts": "2024-02-29T13:04:05.678+0000",
        "tz": "2024-02-29T11:04:05.678+0000", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "arr": [1, null, 3], "tarr": ["a b", "c"], "narr": [1.50, null], "jarr": [{"k": 1}]}"#;
    let row: Value = serde_json::from_str(row).unwrap();
    let mut nulls = row.clone();
    nulls["nul"] = Value::Null;
    (row, nulls)
}

const CREATE: &str = "CREATE TABLE types_t (n NUMERIC(20,6), n2 NUMERIC(20,6), n3 NUMERIC(20,6),
    big BIGINT, i INTEGER, s SMALLINT, f DOUBLE PRECISION, r REAL, b BOOLEAN, t TEXT,
    v VARCHAR(10), c CHAR(3), bin BYTEA, j JSON, jb JSONB, d DATE, tm TIME, ts TIMESTAMP,
    tz TIMESTAMPTZ, u UUID, arr INTEGER[], tarr TEXT[], narr NUMERIC[], jarr JSONB[], nul TEXT)";
const INSERT: &str = r#"INSERT INTO types_t VALUES (12345678901234.123456, 0.000001, -7,
    9007199254740993, 2147483647, -32768, 0.5, 1.5, true, 'héllo "q" ✓', 'vc', 'ab',
    '\x00ff10', '{"a":[1,2.50,"x"]}', '{"b": null}', '2024-02-29', '13:04:05.678',
    '2024-02-29 13:04:05.678', '2024-02-29 13:04:05.678+02',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', '{"a b",c}', '{1.50,NULL}',
    ARRAY['{"k": 1}'::jsonb], NULL)"#;

fn options(pg: &Postgres) -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(pg.port)
        .username(USER)
        .password(PASSWORD)
        .database("postgres")
}

/// Every behaviour that needs no restart, on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours() {
    let pg = Postgres::start();
    let db = Db::postgres(&pg);
    common::queries(&db).await;
    common::errors(&db).await;
    common::publishes(&db).await;
    common::polling(&db).await;
    common::bad_configuration(&db).await;
    common::secrets(&db).await;
    let (row, nulls) = expected();
    common::values(&db, CREATE, INSERT, row, nulls).await;

    let opts = options(&pg);
    let opts2 = opts.clone();
    let hold = async move {
        let mut c = opts2.connect().await.expect("connects");
        c.execute("BEGIN; LOCK TABLE conc_pg IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        Box::new(c) as Box<dyn std::any::Any + Send>
    };
    let watcher = opts.connect().await.expect("connects");
    let watcher = std::sync::Arc::new(tokio::sync::Mutex::new(watcher));
    let waiting = || {
        let w = watcher.clone();
        async move {
            let mut w = w.lock().await;
            let row = sqlx::query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND query LIKE 'SELECT id FROM conc_pg%'",
            )
            .fetch_one(&mut *w)
            .await
            .expect("pg_stat_activity");
            row.get::<i64, _>("n") as usize
        }
    };
    common::concurrency(&db, "conc_pg", hold, waiting).await;
    std::sync::Arc::try_unwrap(watcher)
        .ok()
        .unwrap()
        .into_inner()
        .close()
        .await
        .ok();
}

/// The server killed and started again under the connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let pg = std::sync::Mutex::new(Postgres::start());
    let db = Db::postgres(&pg.lock().unwrap());
    common::faults(
        &db,
        || pg.lock().unwrap().stop(),
        || pg.lock().unwrap().resume(),
    )
    .await;
}
