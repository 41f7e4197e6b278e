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

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{json, Map, Number, Value};
use tokio::sync::mpsc;
use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query, QueryError};

pub use crate::metrics::SqliteMetrics;

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
struct Db {
    config: SqliteConfig,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
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

fn bad_parameter(name: &str, reason: impl Into<String>) -> QueryError {
    QueryError::new(
        "sqlite.badParameters",
        "Bad query parameter {0}: {1}",
        [name.to_owned(), reason.into()],
    )
}

/// A query's parameters: `{"sql": "...", "params": [..] or {..}}`.
#[derive(Debug)]
struct Select {
    sql: String,
    params: Binds,
}

#[derive(Debug)]
enum Binds {
    None,
    /// `?`, `?NNN`: bound by position (the first value is `?1`).
    Positional(Vec<Value>),
    /// `:name`, `@name`, `$name`: bound by name. A key without a prefix gets
    /// `:`.
    Named(Map<String, Value>),
}

impl Select {
    fn from_params(params: &Value) -> Result<Select, QueryError> {
        let sql = match params.get("sql") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) => return Err(bad_parameter("sql", "is empty")),
            Some(other) => {
                return Err(bad_parameter(
                    "sql",
                    format!("must be a string, not {}", json_kind(other)),
                ))
            }
            None => return Err(bad_parameter("sql", "is missing")),
        };
        let params = match params.get("params") {
            None | Some(Value::Null) => Binds::None,
            Some(Value::Array(values)) => Binds::Positional(values.clone()),
            Some(Value::Object(values)) => Binds::Named(values.clone()),
            Some(other) => {
                return Err(bad_parameter(
                    "params",
                    format!("must be a list or an object, not {}", json_kind(other)),
                ))
            }
        };
        Ok(Select { sql, params })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// JSON to an SQLite value: booleans become 0/1, lists and objects their
/// JSON text.
fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => SqlValue::Text(v.to_string()),
    }
}

/// An SQLite value to JSON: a blob becomes a base64 string, a non-finite
/// real `null`.
fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(base64(b)),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Inserts `object` as a row of the configured table. Blocking. Returns the
/// new row's rowid.
fn insert(db: &Db, object: &Map<String, Value>) -> Result<i64, String> {
    let table = db
        .config
        .table
        .as_deref()
        .ok_or("the source has no \"table\" to insert into")?;
    if let Some(bad) = object.keys().find(|k| !is_identifier(k)) {
        return Err(format!(
            "key {bad:?} is not a column name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    let sql = if object.is_empty() {
        format!("INSERT INTO \"{table}\" DEFAULT VALUES")
    } else {
        let columns: Vec<String> = object.keys().map(|k| format!("\"{k}\"")).collect();
        let holes: Vec<String> = (1..=object.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({})",
            columns.join(", "),
            holes.join(", ")
        )
    };
    let conn = db.lock();
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| format!("cannot insert into {table}: {e}"))?;
    stmt.execute(rusqlite::params_from_iter(object.values().map(to_sql)))
        .map_err(|e| format!("cannot insert into {table}: {e}"))?;
    Ok(conn.last_insert_rowid())
}

/// What the SQL worker sends to the query task: a chunk of rows, or the
/// error that ends the query.
type Chunk = Result<Vec<Value>, QueryError>;

/// Runs a SELECT and sends its rows in chunks. Blocking. Stops early when
/// the receiver is gone (the query's connection ended).
fn run_select(db: &Db, select: &Select, tx: &mpsc::Sender<Chunk>) {
    if let Err(e) = stream_rows(db, select, tx) {
        let _ = tx.blocking_send(Err(e));
    }
}

fn stream_rows(db: &Db, select: &Select, tx: &mpsc::Sender<Chunk>) -> Result<(), QueryError> {
    let sql = select.sql.as_str();
    let conn = db.lock();
    let mut stmt = conn.prepare(sql).map_err(|e| {
        let reason = match e {
            rusqlite::Error::MultipleStatement => "only one statement is allowed".to_owned(),
            other => other.to_string(),
        };
        QueryError::new(
            "sqlite.badSql",
            "The SQL statement {0} is not valid: {1}",
            [sql.to_owned(), reason],
        )
    })?;
    // `readonly()` alone lets BEGIN, ATTACH and the like through (they
    // change no database file); a statement that returns no columns is no
    // query either.
    if !stmt.readonly() || stmt.column_count() == 0 {
        return Err(QueryError::new(
            "sqlite.notReadOnly",
            "Only read-only statements that return rows (SELECT) are allowed: {0}",
            [sql],
        ));
    }
    bind(&mut stmt, &select.params)?;
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let chunk_size = db.config.chunk_size;
    let max_rows = db.config.max_rows;
    let failed = |e: rusqlite::Error| {
        QueryError::new(
            "sqlite.queryFailed",
            "The SQL statement {0} failed: {1}",
            [sql.to_owned(), e.to_string()],
        )
    };
    let mut rows = stmt.raw_query();
    let mut chunk = Vec::with_capacity(chunk_size.min(4096));
    let mut count: u64 = 0;
    while let Some(row) = rows.next().map_err(failed)? {
        count += 1;
        if count > max_rows {
            return Err(QueryError::new(
                "sqlite.tooManyRows",
                "The query returns more than {0} rows (maxRows): {1}",
                [Value::from(max_rows), Value::from(sql)],
            ));
        }
        let mut object = Map::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            object.insert(name.clone(), to_json(row.get_ref(i).map_err(failed)?));
        }
        chunk.push(Value::Object(object));
        if chunk.len() == chunk_size
            && tx
                .blocking_send(Ok(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(chunk_size.min(4096)),
                )))
                .is_err()
        {
            return Ok(()); // nobody is listening any more
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
    Ok(())
}

/// Binds the query's parameters, checking that they fit the statement.
fn bind(stmt: &mut rusqlite::Statement<'_>, binds: &Binds) -> Result<(), QueryError> {
    let expected = stmt.parameter_count();
    let bind_error = |e: rusqlite::Error| bad_parameter("params", e.to_string());
    match binds {
        Binds::None => {
            if expected > 0 {
                return Err(bad_parameter(
                    "params",
                    format!("the statement has {expected} parameter(s) and none were given"),
                ));
            }
        }
        Binds::Positional(values) => {
            if values.len() != expected {
                return Err(bad_parameter(
                    "params",
                    format!(
                        "the statement has {expected} parameter(s) and {} were given",
                        values.len()
                    ),
                ));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sql(v))
                    .map_err(bind_error)?;
            }
        }
        Binds::Named(values) => {
            let mut given = Vec::with_capacity(values.len());
            for (key, v) in values {
                let name = if key.starts_with([':', '@', '$']) {
                    key.clone()
                } else {
                    format!(":{key}")
                };
                let index = stmt
                    .parameter_index(&name)
                    .map_err(bind_error)?
                    .ok_or_else(|| {
                        bad_parameter("params", format!("the statement has no parameter {name}"))
                    })?;
                stmt.raw_bind_parameter(index, to_sql(v))
                    .map_err(bind_error)?;
                given.push(name);
            }
            let missing: Vec<String> = (1..=expected)
                .map(|i| stmt.parameter_name(i).unwrap_or("?").to_owned())
                .filter(|name| !given.contains(name))
                .collect();
            if !missing.is_empty() {
                return Err(bad_parameter(
                    "params",
                    format!("no value given for {}", missing.join(", ")),
                ));
            }
        }
    }
    Ok(())
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

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
