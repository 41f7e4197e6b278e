//! One source's database: a pool of the right driver, statements streamed as JSON
//! rows, batches in a transaction, and errors with the database's message and
//! SQLSTATE.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use sqlx::mysql::{MySql, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

use crate::config::{SourceConfig, Target};
use crate::values::{mysql_row, pg_row, sqlite_row, JsonRow};

/// A database error as jdbcSource reports it: the message, the SQLSTATE and the
/// vendor's error code; `unreachable` when the database could not be reached (the
/// connection was refused, lost, or the server is shutting down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    /// The database's (or driver's) message.
    pub message: String,
    /// The SQLSTATE, when the database gave one.
    pub sql_state: Option<String>,
    /// The vendor's error code (MySQL's error number, SQLite's result code; 0 otherwise).
    pub code: i64,
    /// The database could not be reached: worth a retry later.
    pub unreachable: bool,
}

impl DbError {
    fn unreachable(message: impl Into<String>) -> DbError {
        DbError {
            message: message.into(),
            sql_state: Some("08001".into()),
            code: 0,
            unreachable: true,
        }
    }

    /// An error of the connector's own (a value it cannot convert, bad parameters).
    pub fn other(message: impl Into<String>) -> DbError {
        DbError {
            message: message.into(),
            sql_state: None,
            code: 0,
            unreachable: false,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (SQL State: {}, Error Code: {})",
            self.message,
            self.sql_state.as_deref().unwrap_or("null"),
            self.code
        )
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> DbError {
        match e {
            sqlx::Error::Database(db) => {
                let sql_state = db.code().map(|c| c.into_owned());
                let mut code = 0;
                let mut state = sql_state.clone();
                if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    code = i64::from(my.number());
                } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite has result codes, not SQLSTATEs.
                    code = sql_state
                        .as_deref()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    state = None;
                }
                // Class 08 (connection exception), 57P01-57P03 (the server is shutting
                // down or starting), MySQL's 1053 (server shutdown in progress).
                let unreachable = state
                    .as_deref()
                    .is_some_and(|s| s.starts_with("08") || s.starts_with("57P"))
                    || code == 1053;
                DbError {
                    message: db.message().to_owned(),
                    sql_state: state,
                    code,
                    unreachable,
                }
            }
            sqlx::Error::Io(io) => {
                DbError::unreachable(format!("the database is unreachable: {io}"))
            }
            sqlx::Error::Tls(tls) => DbError::unreachable(format!("TLS: {tls}")),
            sqlx::Error::PoolTimedOut => {
                DbError::unreachable("no database connection free or made in time")
            }
            sqlx::Error::PoolClosed => DbError::unreachable("the connection pool is closed"),
            other => DbError::other(other.to_string()),
        }
    }
}

/// A source's connection pool.
#[derive(Clone)]
pub enum Pool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL or MariaDB.
    MySql(MySqlPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// A source's database: its pool, and whether it was last found unreachable.
pub struct Database {
    pool: Pool,
    target: Target,
    connect_timeout: Duration,
    down: AtomicBool,
}

/// A stream of rows.
pub type Rows<'a> = BoxStream<'a, Result<JsonRow, DbError>>;

/// `params` of a query bound to a statement, per driver.
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Value::Null => q.bind(None::<String>),
                Value::Bool(b) => q.bind(*b),
                Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => q.bind(i),
                    (None, Some(f)) if n.as_u64().is_none() && fits_double(&n.to_string()) => {
                        q.bind(f)
                    }
                    // Digits a double does not hold: their text.
                    _ => q.bind(n.to_string()),
                },
                Value::String(s) => q.bind(s.clone()),
                other => q.bind(other.clone()),
            };
        }
        q
    }};
}

/// Whether a JSON number's text goes through a double unchanged in value: at most 15
/// significant digits (any such decimal does).
fn fits_double(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0');
    let significant = if mantissa.contains('.') {
        significant.trim_end_matches('0')
    } else {
        significant
    };
    significant.len() <= 15
}

/// Runs `sql` (with `params`, if any) and streams its rows converted by `$convert`.
macro_rules! stream {
    ($db:ty, $conn:expr, $sql:expr, $params:expr, $convert:expr, $nulls:expr) => {{
        let nulls = $nulls;
        let rows: BoxStream<'_, Result<_, sqlx::Error>> = if $params.is_empty() {
            sqlx::raw_sql(AssertSqlSafe($sql.to_owned())).fetch(&mut **$conn)
        } else {
            bind_all!(sqlx::query::<$db>(AssertSqlSafe($sql.to_owned())), $params)
                .fetch(&mut **$conn)
        };
        rows.map_err(DbError::from)
            .and_then(move |row| {
                futures_util::future::ready($convert(&row, nulls).map_err(DbError::other))
            })
            .boxed()
    }};
}

/// Runs `statements` in one transaction.
macro_rules! batch {
    ($conn:expr, $statements:expr) => {{
        let mut tx = $conn.begin().await?;
        for s in $statements {
            sqlx::raw_sql(AssertSqlSafe(s.clone()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }};
}

impl Database {
    /// A pool for the source, connecting lazily (a database that is down does not
    /// stop the source from being configured); `connections` is the most it opens.
    pub fn new(config: &SourceConfig, connections: u32) -> Database {
        let timeout = config.connect_timeout;
        let pool = match &config.target {
            Target::Postgres(o) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(o.clone()),
            ),
            Target::MySql(o) => Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(o.clone()),
            ),
            Target::Sqlite { options, memory } => {
                // Each connection to `:memory:` is its own database: one, kept.
                let mut p = SqlitePoolOptions::new().acquire_timeout(timeout);
                p = if *memory {
                    p.max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    p.max_connections(connections)
                };
                Pool::Sqlite(p.connect_lazy_with(options.clone()))
            }
        };
        Database {
            pool,
            target: config.target.clone(),
            connect_timeout: timeout,
            down: AtomicBool::new(true),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Fails at once while the database is known to be unreachable: one connection is
    /// tried (not the pool's retries until its timeout); when it works the database is
    /// up again and the pool is used.
    pub async fn check(&self) -> Result<(), DbError> {
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        self.probe().await?;
        self.down.store(false, Ordering::Release);
        Ok(())
    }

    /// Tries one direct connection (not through the pool).
    async fn probe(&self) -> Result<(), DbError> {
        let attempt = async {
            match &self.target {
                Target::Postgres(o) => o.connect().await?.close().await,
                Target::MySql(o) => o.connect().await?.close().await,
                // SQLite has no server; the pool opens the file.
                Target::Sqlite { .. } => Ok(()),
            }
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.note(e.into())),
            Err(_) => Err(DbError::unreachable(format!(
                "no connection to the database within {:?}",
                self.connect_timeout
            ))),
        }
    }

    /// Notes an error: an unreachable database makes the next use check first.
    pub fn note(&self, e: DbError) -> DbError {
        if e.unreachable {
            self.down.store(true, Ordering::Release);
        }
        e
    }

    /// Whether the database was last found unreachable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// One connection of the pool. While the pool waits (for a free connection, or
    /// for the server, which the pool retries until `connectTimeout`), one direct
    /// connection is tried: if the database is unreachable the answer is that error,
    /// at once, rather than a timeout.
    pub async fn acquire(&self) -> Result<Conn, DbError> {
        self.check().await?;
        let pooled = async {
            match &self.pool {
                Pool::Postgres(p) => p.acquire().await.map(Conn::Postgres),
                Pool::MySql(p) => p.acquire().await.map(Conn::MySql),
                Pool::Sqlite(p) => p.acquire().await.map(Conn::Sqlite),
            }
        };
        let watchdog = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            loop {
                if let Err(e) = self.probe().await {
                    if e.unreachable {
                        return e;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            conn = pooled => conn.map_err(|e| self.note(e.into())),
            e = watchdog => Err(self.note(e)),
        }
    }

    /// Runs `statements` as one batch, in one transaction.
    pub async fn batch(&self, statements: &[String]) -> Result<(), DbError> {
        let mut conn = self.acquire().await?;
        let r: Result<(), sqlx::Error> = match &mut conn {
            Conn::Postgres(c) => batch!(c, statements),
            Conn::MySql(c) => batch!(c, statements),
            Conn::Sqlite(c) => batch!(c, statements),
        };
        r.map_err(|e| self.note(e.into()))
    }

    /// Connections open and idle.
    pub fn usage(&self) -> (u32, usize) {
        match &self.pool {
            Pool::Postgres(p) => (p.size(), p.num_idle()),
            Pool::MySql(p) => (p.size(), p.num_idle()),
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

/// One connection of a source's pool, back to the pool when dropped.
pub enum Conn {
    /// PostgreSQL.
    Postgres(PoolConnection<Postgres>),
    /// MySQL or MariaDB.
    MySql(PoolConnection<MySql>),
    /// SQLite.
    Sqlite(PoolConnection<Sqlite>),
}

impl Conn {
    /// Runs one statement (or several, without `params`) and streams the rows the
    /// database returns: none for a statement that returns none.
    pub fn rows<'a>(&'a mut self, sql: &'a str, params: &'a [Value], nulls: bool) -> Rows<'a> {
        match self {
            Conn::Postgres(c) => stream!(Postgres, c, sql, params, pg_row, nulls),
            Conn::MySql(c) => stream!(MySql, c, sql, params, mysql_row, nulls),
            Conn::Sqlite(c) => stream!(Sqlite, c, sql, params, sqlite_row, nulls),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fits_double;

    #[test]
    fn doubles_hold_up_to_fifteen_significant_digits() {
        for ok in [
            "2.50",
            "0.000001",
            "-7.000000",
            "1.5e10",
            "123456789012345",
            "0.1",
        ] {
            assert!(fits_double(ok), "{ok}");
        }
        for not in [
            "12345678901234.123456",
            "1234567890123456",
            "0.12345678901234567",
        ] {
            assert!(!fits_double(not), "{not}");
        }
    }
}
