//! The connector against a real MariaDB server (Debian's, started by the test in a
//! temporary directory, unprivileged, on loopback) with vantiq-sim as the Vantiq side.

mod common;

use common::servers::{MariaDb, PASSWORD, USER};
use common::Db;
use serde_json::Value;

// MariaDB's JSON is LONGTEXT: the text as stored. CHAR drops trailing spaces.
const EXPECTED: &str = r#"{"n": 12345678901234.123456, "n2": 0.000001, "n3": -7.000000,
    "big": 9007199254740993, "i": 2147483647, "s": -32768, "ub": 18446744073709551615,
    "f": 0.5, "r": 1.5, "b": true, "t": "héllo \"q\" ✓", "v": "vc", "c": "ab", "bin": "AP8Q",
    "j": "{\"a\":[1,2.50,\"x\"]}", "d": "2024-02-29", "tm": "13:04:05.678+0000",
    "ts": "2024-02-29T13:04:05.678+0000", "tz": "2024-02-29T13:04:05.678+0000", "bits": 5,
    "e": "two"}"#;

const CREATE: &str = "CREATE TABLE types_t (n DECIMAL(20,6), n2 DECIMAL(20,6), n3 DECIMAL(20,6),
    big BIGINT, i INT, s SMALLINT, ub BIGINT UNSIGNED, f DOUBLE, r FLOAT, b BOOLEAN, t TEXT,
    v VARCHAR(10), c CHAR(3), bin VARBINARY(10), j JSON, d DATE, tm TIME(3), ts DATETIME(3),
    tz TIMESTAMP(3) NULL, bits BIT(4), e ENUM('one','two'), nul TEXT) DEFAULT CHARSET=utf8mb4";
const INSERT: &str = r#"INSERT INTO types_t VALUES (12345678901234.123456, 0.000001, -7,
    9007199254740993, 2147483647, -32768, 18446744073709551615, 0.5, 1.5, true, 'héllo "q" ✓',
    'vc', 'ab', X'00FF10', '{"a":[1,2.50,"x"]}', '2024-02-29', '13:04:05.678',
    '2024-02-29 13:04:05.678', '2024-02-29 13:04:05.678', b'0101', 'two', NULL)"#;

/// Every behaviour that needs no restart, on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours() {
    let m = MariaDb::start().await;
    let db = Db::mariadb(&m);
    let row: Value = serde_json::from_str(EXPECTED).unwrap();
    common::behaviours(&db, (CREATE, INSERT, row)).await;

    // asynchronousProcessing's limits: the test's own connection holds a lock.
    concurrency_on!(
        &db,
        sqlx::MySqlPool,
        sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(m.port)
        .username(USER)
        .password(PASSWORD)
        .database("vantiq"),
        "LOCK TABLES conc_t WRITE",
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE '%lock%' AND INFO LIKE 'SELECT id FROM conc_t%'"
    );
}

/// The server shut down and started again under the connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let m = std::sync::Mutex::new(MariaDb::start().await);
    let db = Db::mariadb(&m.lock().unwrap());
    let stop = || m.lock().unwrap().stop();
    common::faults(&db, stop, || m.lock().unwrap().resume()).await;
}
