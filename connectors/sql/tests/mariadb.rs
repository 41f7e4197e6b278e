//! The connector against a real MariaDB server (Debian's, started by the test in a
//! temporary directory, unprivileged, on loopback) with vantiq-sim as the Vantiq side.

mod common;

use common::servers::{MariaDb, PASSWORD, USER};
use common::Db;
use serde_json::Value;
use sqlx::{ConnectOptions, Connection, Executor, Row};

fn expected() -> (Value, Value) {
    // MariaDB's JSON is LONGTEXT: the text as stored. CHAR drops trailing spaces.
    let row = r#"{"n": 12345678901234.123456, "n2": 0.000001, "n3": -7.000000, "big": 9007199254740993,
        "i": 2147483647, "s": -32768, "ub": 18446744073709551615, "f": 0.5, "r": 1.5, "b": true,
        "t": "héllo \"q\" ✓", "v": "vc", "c": "ab", "bin": "AP8Q", "j": "{\"a\":[1,2.50,\"x\"]}",
        "d": "2024-02-29", "tm": "13:04:05.678+0000", "ts": "2024-02-29T13:04:05.678+0000",
        "tz": "2024-02-29T13:04:05.678+0000", "bits": 5, "e": "two"}"#;
    let row: Value = serde_json::from_str(row).unwrap();
    let mut nulls = row.clone();
    nulls["nul"] = Value::Null;
    (row, nulls)
}

const CREATE: &str = "CREATE TABLE types_t (n DECIMAL(20,6), n2 DECIMAL(20,6), n3 DECIMAL(20,6),
    big BIGINT, i INT, s SMALLINT, ub BIGINT UNSIGNED, f DOUBLE, r FLOAT, b BOOLEAN, t TEXT,
    v VARCHAR(10), c CHAR(3), bin VARBINARY(10), j JSON, d DATE, tm TIME(3), ts DATETIME(3),
    tz TIMESTAMP(3) NULL, bits BIT(4), e ENUM('one','two'), nul TEXT) DEFAULT CHARSET=utf8mb4";
const INSERT: &str = r#"INSERT INTO types_t VALUES (12345678901234.123456, 0.000001, -7,
    9007199254740993, 2147483647, -32768, 18446744073709551615, 0.5, 1.5, true, 'héllo "q" ✓',
    'vc', 'ab', X'00FF10', '{"a":[1,2.50,"x"]}', '2024-02-29', '13:04:05.678',
    '2024-02-29 13:04:05.678', '2024-02-29 13:04:05.678', b'0101', 'two', NULL)"#;

fn options(m: &MariaDb) -> sqlx::mysql::MySqlConnectOptions {
    sqlx::mysql::MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(m.port)
        .username(USER)
        .password(PASSWORD)
        .database("vantiq")
}

/// Every behaviour that needs no restart, on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours() {
    let m = MariaDb::start().await;
    let db = Db::mariadb(&m);
    common::queries(&db).await;
    common::errors(&db).await;
    common::publishes(&db).await;
    common::polling(&db).await;
    common::bad_configuration(&db).await;
    common::secrets(&db).await;
    let (row, nulls) = expected();
    common::values(&db, CREATE, INSERT, row, nulls).await;

    let opts = options(&m);
    let opts2 = opts.clone();
    let hold = async move {
        let mut c = opts2.connect().await.expect("connects");
        c.execute("LOCK TABLES conc_my WRITE").await.expect("lock");
        Box::new(c) as Box<dyn std::any::Any + Send>
    };
    let watcher = opts.connect().await.expect("connects");
    let watcher = std::sync::Arc::new(tokio::sync::Mutex::new(watcher));
    let waiting = || {
        let w = watcher.clone();
        async move {
            let mut w = w.lock().await;
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
                 WHERE STATE LIKE '%lock%' AND INFO LIKE 'SELECT id FROM conc_my%'",
            )
            .fetch_one(&mut *w)
            .await
            .expect("processlist");
            row.get::<i64, _>("n") as usize
        }
    };
    common::concurrency(&db, "conc_my", hold, waiting).await;
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
    let m = std::sync::Mutex::new(MariaDb::start().await);
    let db = Db::mariadb(&m.lock().unwrap());
    common::faults(
        &db,
        || m.lock().unwrap().stop(),
        || m.lock().unwrap().resume(),
    )
    .await;
}
