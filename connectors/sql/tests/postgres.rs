//! The connector against a real PostgreSQL server (Debian's, started by the test in a
//! temporary directory, unprivileged, on loopback) with vantiq-sim as the Vantiq side.

mod common;

use common::servers::{Postgres, PASSWORD, USER};
use common::Db;
use serde_json::Value;

const EXPECTED: &str = r#"{"n": 12345678901234.123456, "n2": 0.000001, "n3": -7.000000,
    "big": 9007199254740993, "i": 2147483647, "s": -32768, "f": 0.5, "r": 1.5, "b": true,
    "t": "héllo \"q\" ✓", "v": "vc", "c": "ab ", "bin": "AP8Q", "j": {"a": [1, 2.50, "x"]},
    "jb": {"b": null}, "d": "2024-02-29", "tm": "13:04:05.678+0000",
    "ts": "2024-02-29T13:04:05.678+0000", "tz": "2024-02-29T11:04:05.678+0000",
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "arr": [1, null, 3], "tarr": ["a b", "c"],
    "narr": [1.50, null], "jarr": [{"k": 1}]}"#;

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

/// Every behaviour that needs no restart, on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours() {
    let pg = Postgres::start();
    let db = Db::postgres(&pg);
    let row: Value = serde_json::from_str(EXPECTED).unwrap();
    common::behaviours(&db, (CREATE, INSERT, row)).await;

    // asynchronousProcessing's limits: the test's own connection holds a lock.
    concurrency_on!(
        &db,
        sqlx::PgPool,
        sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(pg.port)
        .username(USER)
        .password(PASSWORD)
        .database("postgres"),
        "BEGIN; LOCK TABLE conc_t IN ACCESS EXCLUSIVE MODE",
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT id FROM conc_t%'"
    );
}

/// The server shut down and started again under the connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let pg = std::sync::Mutex::new(Postgres::start());
    let db = Db::postgres(&pg.lock().unwrap());
    let stop = || pg.lock().unwrap().stop();
    common::faults(&db, stop, || pg.lock().unwrap().resume()).await;
}
