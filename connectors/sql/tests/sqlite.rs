//! The connector against SQLite (a file in a temporary directory) with vantiq-sim as
//! the Vantiq side. SQLite has no server: the fault and lock-queue behaviours are the
//! servers' (tests/postgres.rs, tests/mariadb.rs).

mod common;

use common::Db;
use serde_json::Value;

// SQLite has no exact decimal type: exact decimals are kept as TEXT.
const EXPECTED: &str = r#"{"n": "12345678901234.123456", "n2": "0.000001", "n3": "-7.000000",
    "big": 9007199254740993, "i": 2147483647, "f": 0.5, "t": "héllo \"q\" ✓",
    "bin": "AP8Q", "d": "2024-02-29"}"#;

const CREATE: &str = "CREATE TABLE types_t (n TEXT, n2 TEXT, n3 TEXT, big INTEGER, i INTEGER,
    f REAL, t TEXT, bin BLOB, d DATE, nul TEXT)";
const INSERT: &str = r#"INSERT INTO types_t VALUES ('12345678901234.123456', '0.000001',
    '-7.000000', 9007199254740993, 2147483647, 0.5, 'héllo "q" ✓', X'00FF10', '2024-02-29', NULL)"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviours() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(&dir.path().join("test.db"));
    let row: Value = serde_json::from_str(EXPECTED).unwrap();
    common::behaviours(&db, (CREATE, INSERT, row)).await;
}

/// `jdbc:sqlite::memory:`: one connection, kept, so the data stays between requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory() {
    let db = Db {
        kind: common::Kind::Sqlite,
        url: "jdbc:sqlite::memory:".into(),
        user: None,
        password: None,
    };
    common::queries(&db).await;
}
