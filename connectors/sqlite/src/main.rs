//! The `sqlite` connector: a Vantiq source backed by an embedded SQLite
//! database. Publishes insert rows; queries run read-only SQL and stream the
//! rows back. The full description is in `docs/sqlite-connector.md`.
//!
//! # The source's configuration document
//!
//! ```json
//! {
//!   "database": "data/events.db",
//!   "table": "events",
//!   "createTable": "CREATE TABLE IF NOT EXISTS events (id INTEGER, name TEXT, value REAL)",
//!   "chunkSize": 500,
//!   "maxRows": 100000,
//!   "notifyInserts": false
//! }
//! ```
//!
//! - `database` (required): the database file (relative to the working
//!   directory), or `:memory:`.
//! - `table`: the table publishes insert into; without it publishes are
//!   refused.
//! - `createTable`: DDL run each time the database is opened (several
//!   statements allowed).
//! - `chunkSize` (default 500): rows per partial answer.
//! - `maxRows` (default 100000): the most rows one query may return.
//! - `notifyInserts` (default false): send `{"inserted": rowid, "table":
//!   table}` after every insert.
//!
//! A new configuration (Vantiq sends `reconnectRequired` when the source is
//! edited) closes the database and opens the one now configured; a
//! reconnection with an unchanged configuration keeps the open database.
//!
//! # Publish
//!
//! `PUBLISH {id: 1, name: "a"} TO SOURCE db` inserts a row: the keys are
//! the column names (each must match `[A-Za-z_][A-Za-z0-9_]*`), the values
//! are bound as parameters (booleans as 0/1, lists and objects as JSON
//! text). A publish that cannot be inserted (a bad key, an unknown column, a
//! constraint) is logged as an error and skipped.
//!
//! # Query
//!
//! `SELECT * FROM SOURCE db WITH sql: "SELECT * FROM events WHERE id > ?1",
//! params: [10]` runs one read-only statement (`params` is a list for `?`/`?N`
//! parameters, or an object for `:name` parameters) and answers with the rows
//! as objects keyed by column name: chunks of `chunkSize` rows as partial
//! answers (status 100), the last chunk with 200, or 204 when there is no
//! row. Errors end the query with a `messageCode` of `sqlite.badSql`,
//! `sqlite.notReadOnly`, `sqlite.badParameters`, `sqlite.notConfigured`,
//! `sqlite.tooManyRows` or `sqlite.queryFailed`.
//!
//! # Running it
//!
//! Like `echo`, it reads `serverConfig/server.config` (or `server.config`)
//! in the working directory; against the emulator:
//!
//! ```text
//! cargo run -p vantiq-sim -- serve --token secret --source db &
//! mkdir -p serverConfig && printf 'targetServer=http://127.0.0.1:8088\nauthToken=secret\nsources=db\n' > serverConfig/server.config
//! cargo run --release -p vantiq-sqlite-connector
//! ```
//!
//! With `metricsPort=9464` in server.config, `/metrics` serves the SDK's
//! series and the connector's own (`sqlite_rows_inserted_total`, ...: see
//! `src/metrics.rs`), and `/healthz` and `/readyz` answer the
//! kubelet's probes.
//!
//! Exit status: 0 after SIGINT/SIGTERM, 2 for a bad server.config, 1 when
//! the server rejects the token (or another fatal error).

use std::process::ExitCode;

use vantiq_connector_sdk::{shutdown_signal, ConnectorSet, ServerConfig};

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(e) = vantiq_connector_sdk::setup_logging() {
        eprintln!("sqlite: logging not set up: {e}");
    }
    let config = match ServerConfig::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sqlite: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let handler = vantiq_sqlite_connector::SqliteConnector::new();
    let metrics = handler.metrics.clone();
    let set = match ConnectorSet::builder(config).handler(handler).build() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("sqlite: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // The connector's own series, served with the SDK's on metricsPort.
    metrics.register(&set);
    if let Err(e) = set.declare_healthy() {
        eprintln!(
            "sqlite: health probe not started on port {}: {e}",
            set.server_config().tcp_probe_port()
        );
        return ExitCode::from(1);
    }
    match set.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlite: {e}");
            ExitCode::from(1)
        }
    }
}
