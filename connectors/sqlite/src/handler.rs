//! The SQLite connector's behaviour, shared by the `sqlite` example and its
//! test (`tests/sqlite_connector.rs`). See `src/main.rs` and
//! `docs/sqlite-connector.md` for what it does.
//!
//! Every source has its own database connection, opened by the connect
//! handler from the source's configuration document and kept in the
//! handler's state. All SQLite calls run on tokio's blocking thread pool
//! (`spawn_blocking`): SQLite is a synchronous C library, and a long query
//! must not stall the runtime's worker threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query, QueryError};

pub use crate::metrics::SqliteMetrics;
use crate::sql::{insert, run_select, Chunk, Select};

/// Rows per partial answer unless the configuration says otherwise.
pub const DEFAULT_CHUNK_SIZE: usize = 500;
/// The most rows one query may return unless the configuration says otherwise.
pub const DEFAULT_MAX_ROWS: u64 = 100_000;
/// How long a statement waits for a lock held by another connection to the
/// same database file before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A source's configuration document (the `config` object Vantiq sends).
/// Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqliteConfig {
    /// The database file, or `:memory:` for a private in-memory database.
    /// A relative path is relative to the connector's working directory.
    pub database: String,
    /// The table publishes insert into. Without it, publishes are refused
    /// (logged as errors) and the source only answers queries.
    #[serde(default)]
    pub table: Option<String>,
    /// DDL run (as a batch: several statements allowed) every time the
    /// database is opened, e.g. `CREATE TABLE IF NOT EXISTS ...`.
    #[serde(default)]
    pub create_table: Option<String>,
    /// Rows per partial answer (status 100); at least 1.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// The most rows a query may return; more ends the query with
    /// `sqlite.tooManyRows`.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// When true, every successful publish sends the notification
    /// `{"inserted": <rowid>, "table": <table>}`.
    #[serde(default)]
    pub notify_inserts: bool,
}

fn default_chunk_size() -> usize {
    DEFAULT_CHUNK_SIZE
}

fn default_max_rows() -> u64 {
    DEFAULT_MAX_ROWS
}

impl SqliteConfig {
    /// Parses and checks a configuration document.
    pub fn from_document(doc: &Value) -> Result<Self, String> {
        let config: SqliteConfig = serde_json::from_value(doc.clone())
            .map_err(|e| format!("invalid configuration document: {e}"))?;
        if config.database.is_empty() {
            return Err("\"database\" must name a file or be \":memory:\"".into());
        }
        if config.chunk_size == 0 {
            return Err("\"chunkSize\" must be at least 1".into());
        }
        if let Some(table) = &config.table {
            if !is_identifier(table) {
                return Err(format!(
                    "\"table\" {table:?} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
                ));
            }
        }
        Ok(config)
    }
}

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]*`: safe to use, quoted, as
/// a table or column name.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One source's open database.
pub(crate) struct Db {
    pub(crate) config: SqliteConfig,
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens the database and runs `createTable`. Blocking.
    fn open(config: SqliteConfig) -> Result<Db, String> {
        let conn = Connection::open(&config.database)
            .map_err(|e| format!("cannot open database {:?}: {e}", config.database))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| format!("cannot set the busy timeout: {e}"))?;
        if let Some(ddl) = &config.create_table {
            conn.execute_batch(ddl)
                .map_err(|e| format!("\"createTable\" failed: {e}"))?;
        }
        Ok(Db {
            config,
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a source has: an open database, or the reason it has none.
#[derive(Clone)]
enum SourceDb {
    Open(Arc<Db>),
    Failed(String),
}

/// The SQLite connector: one database per source.
#[derive(Default, Clone)]
pub struct SqliteConnector {
    sources: Arc<Mutex<HashMap<String, SourceDb>>>,
    /// The connector's own series (register them with [`SqliteMetrics::register`]).
    pub metrics: SqliteMetrics,
}

impl SqliteConnector {
    /// A connector with no source configured yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, source: &str) -> Option<SourceDb> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
            .cloned()
    }

    fn set(&self, source: &str, db: SourceDb) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_owned(), db);
    }

    /// The open database of `source`, or the `sqlite.notConfigured` error.
    fn db(&self, source: &str) -> Result<Arc<Db>, QueryError> {
        match self.get(source) {
            Some(SourceDb::Open(db)) => Ok(db),
            Some(SourceDb::Failed(reason)) => Err(not_configured(source, &reason)),
            None => Err(not_configured(source, "no configuration received yet")),
        }
    }
}

fn not_configured(source: &str, reason: &str) -> QueryError {
    QueryError::new(
        "sqlite.notConfigured",
        "Source {0} has no usable database: {1}",
        [source, reason],
    )
}

pub(crate) fn bad_parameter(name: &str, reason: impl Into<String>) -> QueryError {
    QueryError::new(
        "sqlite.badParameters",
        "Bad query parameter {0}: {1}",
        [name.to_owned(), reason.into()],
    )
}

impl Handler for SqliteConnector {
    async fn on_connect(&self, ctx: Context, config: Value) -> HandlerResult {
        let source = ctx.source().to_owned();
        let parsed = match SqliteConfig::from_document(&config) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.set(&source, SourceDb::Failed(reason.clone()));
                return Err(format!("source {source}: {reason}").into());
            }
        };
        // A reconnection with the same configuration keeps the database (an
        // in-memory one keeps its rows); a new configuration reopens it.
        if let Some(SourceDb::Open(db)) = self.get(&source) {
            if db.config == parsed {
                tracing::info!(source, database = %parsed.database, "configuration unchanged, database kept");
                return Ok(());
            }
        }
        let database = parsed.database.clone();
        let opened = tokio::task::spawn_blocking(move || Db::open(parsed))
            .await
            .unwrap_or_else(|e| Err(format!("opening the database panicked: {e}")));
        match opened {
            Ok(db) => {
                tracing::info!(source, database, "database opened");
                // The old connection closes when its last query finishes.
                self.set(&source, SourceDb::Open(Arc::new(db)));
                Ok(())
            }
            Err(reason) => {
                self.set(&source, SourceDb::Failed(reason.clone()));
                Err(format!("source {source}: {reason}").into())
            }
        }
    }

    async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
        let source = ctx.source();
        let db = self.db(source).map_err(|e| e.message())?;
        let Value::Object(object) = message else {
            return Err(format!("publish to {source} skipped: not an object").into());
        };
        let writer = db.clone();
        let inserted = tokio::task::spawn_blocking(move || insert(&writer, &object))
            .await
            .unwrap_or_else(|e| Err(format!("the insert panicked: {e}")));
        self.metrics.insert(source, inserted.is_ok());
        let rowid = inserted.map_err(|reason| format!("publish to {source} skipped: {reason}"))?;
        tracing::debug!(source, rowid, "row inserted");
        if db.config.notify_inserts {
            ctx.connection()
                .send_notification(&json!({ "inserted": rowid, "table": db.config.table }))
                .await?;
        }
        Ok(())
    }

    async fn on_query(&self, mut query: Query) -> HandlerResult {
        let select = match Select::from_params(query.params()) {
            Ok(select) => select,
            Err(e) => return Ok(query.error(e).await?),
        };
        let db = match self.db(query.source()) {
            Ok(db) => db,
            Err(e) => return Ok(query.error(e).await?),
        };
        // A small channel: the worker reads ahead at most two chunks of
        // what the connection has not taken yet.
        let (tx, mut rx) = mpsc::channel::<Chunk>(2);
        let started = std::time::Instant::now();
        let worker = tokio::task::spawn_blocking(move || run_select(&db, &select, &tx));
        // Holds one chunk back: only at the end is it known whether a chunk
        // is a partial answer (100) or the last one (200).
        let mut pending: Option<Vec<Value>> = None;
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Ok(rows) => {
                    self.metrics.returned(query.source(), rows.len());
                    if let Some(previous) = pending.replace(rows) {
                        query.partial(&previous).await?;
                    }
                }
                Err(e) => {
                    // The rows read before the error go out first.
                    if let Some(previous) = pending.take() {
                        query.partial(&previous).await?;
                    }
                    return Ok(query.error(e).await?);
                }
            }
        }
        let ran = worker.await;
        self.metrics
            .query_ran(query.source(), started.elapsed().as_secs_f64());
        if let Err(e) = ran {
            let e = QueryError::new(
                "sqlite.queryFailed",
                "The SQL statement {0} failed: {1}",
                [
                    query.params()["sql"].clone(),
                    Value::from(format!("worker failed: {e}")),
                ],
            );
            return Ok(query.error(e).await?);
        }
        match pending {
            Some(last) => query.complete(&last).await?,
            None => query.empty().await?,
        }
        Ok(())
    }

    async fn on_close(&self, ctx: Context) -> HandlerResult {
        // The database stays open: a reconnection with the same
        // configuration goes on with it.
        tracing::debug!(source = ctx.source(), "connection closed");
        Ok(())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("a"));
        assert!(is_identifier("_a1"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("a\"b"));
    }
}
