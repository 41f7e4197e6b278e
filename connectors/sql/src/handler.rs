//! The connector: configuration, queries, publishes and polling of each source.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::task::AbortHandle;
use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query, QueryError, SourceConnection};

use crate::config::SourceConfig;
use crate::db::{Database, DbError};
use crate::metrics::SqlMetrics;

/// jdbcSource's default `bundleFactor`.
pub const DEFAULT_BUNDLE_FACTOR: usize = 500;

/// jdbcSource's error code of a database error.
pub const SQL_EXCEPTION: &str = "io.vantiq.extsrc.jdbcSource.exception.VantiqSQLException";
/// jdbcSource's error code when the task queue is full.
pub const QUEUE_FULL: &str =
    "io.vantiq.extsrc.JDBCHandleConfiguration.queryHandler.queuedTasksFull";
/// jdbcSource's error code when `query` is not a string (or a list of strings).
pub const QUERY_NOT_STRING: &str = "io.vantiq.extsrc.jdbcSource.JDBCCore.queryNotString";

/// The answer to a database error, in jdbcSource's shape.
pub fn sql_error(e: &DbError, sql: &str) -> QueryError {
    QueryError::new(
        SQL_EXCEPTION,
        "Failed to execute query for reason: io.vantiq.extsrc.jdbcSource.JDBC: A database error \
         occurred: {0} SQL State: {1}, Error Code: {2}. Exception was: \
         io.vantiq.extsrc.jdbcSource.exception.VantiqSQLException. Request was: {3}",
        [
            Value::from(e.message.clone()),
            Value::from(e.sql_state.clone().unwrap_or_else(|| "null".into())),
            Value::from(e.code),
            Value::from(sql),
        ],
    )
}

fn queue_full() -> QueryError {
    QueryError::new(
        QUEUE_FULL,
        "The queue of tasks has filled, and as a result the request was unable to be processed.",
        Vec::<Value>::new(),
    )
}

/// `maxActiveTasks` and `maxQueuedTasks`: how many requests run at once and how
/// many may wait.
struct Limiter {
    running: Semaphore,
    waiting: AtomicUsize,
    max_waiting: Option<usize>,
}

impl Limiter {
    fn new(config: &SourceConfig) -> Limiter {
        Limiter {
            running: Semaphore::new(config.max_active_tasks),
            waiting: AtomicUsize::new(0),
            max_waiting: config.max_queued_tasks,
        }
    }

    /// A turn, or `None` when the queue is full.
    async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(p) = self.running.try_acquire() {
            return Some(p);
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        if self.max_waiting.is_some_and(|max| before >= max) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let permit = self.running.acquire().await.ok();
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit
    }
}

/// A publish: its statements (one, or a batch) and parameters.
#[derive(Debug, Clone)]
struct Publish {
    statements: Vec<String>,
    params: Vec<Value>,
}

impl Publish {
    fn from_message(message: &Value) -> Result<Publish, String> {
        let params = match message.get("params") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(p)) => p.clone(),
            Some(_) => return Err("\"params\" must be a list".into()),
        };
        let statements = match message.get("query") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or("\"query\" is a list with an element that is not a string")?,
            _ => return Err("\"query\" must be a string or a list of strings".into()),
        };
        if !params.is_empty() && statements.len() != 1 {
            return Err("\"params\" goes with a single statement".into());
        }
        Ok(Publish { statements, params })
    }

    async fn run(&self, db: &Database) -> Result<(), DbError> {
        if self.statements.len() == 1 {
            let mut conn = db.acquire().await?;
            let mut rows = conn.rows(&self.statements[0], &self.params, false);
            while let Some(row) = rows.next().await {
                row.map_err(|e| db.note(e))?;
            }
            Ok(())
        } else {
            db.batch(&self.statements).await
        }
    }
}

/// Publishes kept while the database is unreachable, retried in order.
struct Retry {
    queue: Mutex<VecDeque<Publish>>,
    limit: usize,
    interval: std::time::Duration,
    task: Mutex<Option<AbortHandle>>,
}

impl Retry {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Publish>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A configured source: its database, limits, retries and poller.
struct Source {
    name: String,
    config: SourceConfig,
    db: Arc<Database>,
    limiter: Limiter,
    retry: Arc<Retry>,
    poller: Mutex<Option<AbortHandle>>,
    metrics: SqlMetrics,
}

impl Drop for Source {
    fn drop(&mut self) {
        for task in [&self.poller, &self.retry.task] {
            if let Some(t) = task.lock().unwrap_or_else(|e| e.into_inner()).take() {
                t.abort();
            }
        }
        // A new configuration replaces the source: publishes still kept go with it.
        let kept = std::mem::take(&mut *self.retry.lock());
        if !kept.is_empty() {
            tracing::error!(source = %self.name, dropped = kept.len(),
                "publishes kept for a retry dropped: the source's configuration was replaced");
            for _ in &kept {
                self.metrics.publish(&self.name, "dropped");
            }
            self.metrics.pending(&self.name, 0);
        }
        // The pool closes when its last user (a query still streaming) lets go.
    }
}

impl Source {
    /// Runs a publish; one that finds the database unreachable is kept for a retry.
    async fn publish(self: &Arc<Self>, publish: Publish) {
        {
            let mut queue = self.retry.lock();
            if !queue.is_empty() {
                self.keep(&mut queue, publish);
                return;
            }
        }
        match publish.run(&self.db).await {
            Ok(()) => self.metrics.publish(&self.name, "ok"),
            Err(e) if e.unreachable => {
                let mut queue = self.retry.lock();
                self.keep(&mut queue, publish);
            }
            Err(e) => self.failed(&publish, &e),
        }
    }

    fn failed(&self, publish: &Publish, e: &DbError) {
        self.metrics.publish(&self.name, "failed");
        tracing::error!(source = %self.name, statements = ?publish.statements, error = %e, "publish failed");
    }

    fn keep(self: &Arc<Self>, queue: &mut VecDeque<Publish>, publish: Publish) {
        if queue.len() >= self.retry.limit {
            self.metrics.publish(&self.name, "dropped");
            tracing::error!(source = %self.name, limit = self.retry.limit, statements = ?publish.statements,
                "publish dropped: the database is unreachable and publishRetryLimit publishes already wait");
            return;
        }
        queue.push_back(publish);
        self.metrics.pending(&self.name, queue.len());
        let mut task = self.retry.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.as_ref().is_none_or(|t| t.is_finished()) {
            tracing::warn!(source = %self.name, "the database is unreachable: publishes are kept and retried");
            let retry = self.retry.clone();
            let db = self.db.clone();
            let metrics = self.metrics.clone();
            let name = self.name.clone();
            *task = Some(tokio::spawn(retry_loop(retry, db, metrics, name)).abort_handle());
        }
    }
}

/// Retries the kept publishes in order until none is left.
async fn retry_loop(retry: Arc<Retry>, db: Arc<Database>, metrics: SqlMetrics, name: String) {
    loop {
        tokio::time::sleep(retry.interval).await;
        loop {
            let Some(front) = retry.lock().front().cloned() else {
                return;
            };
            match front.run(&db).await {
                Err(e) if e.unreachable => break,
                outcome => {
                    let mut queue = retry.lock();
                    queue.pop_front();
                    metrics.pending(&name, queue.len());
                    match outcome {
                        Ok(()) => metrics.publish(&name, "retried"),
                        Err(e) => {
                            metrics.publish(&name, "failed");
                            tracing::error!(source = %name, statements = ?front.statements, error = %e, "kept publish failed");
                        }
                    }
                    if queue.is_empty() {
                        tracing::info!(source = %name, "kept publishes all done");
                        return;
                    }
                }
            }
        }
    }
}

/// Polls `pollQuery` every `pollTime`: each row a notification.
async fn poll_loop(
    connection: SourceConnection,
    db: Arc<Database>,
    config: SourceConfig,
    metrics: SqlMetrics,
) {
    let Some(poll) = config.poll.clone() else {
        return;
    };
    let source = connection.source().to_owned();
    let mut ticks = tokio::time::interval(poll.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A failure is logged as an error once, until a poll works again (not every pollTime).
    let mut failing = false;
    loop {
        ticks.tick().await;
        if !connection.is_connected() {
            continue;
        }
        let started = Instant::now();
        let mut sent = 0;
        let mut conn = db.acquire().await;
        let mut result = conn.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Ok(conn) = &mut conn {
            let mut rows = conn.rows(&poll.query, &[], config.include_nulls);
            while let Some(row) = rows.next().await {
                match row {
                    Ok(row) => {
                        if let Err(e) = connection.send_notification(&row).await {
                            tracing::warn!(source, error = %e, "a polled row was not sent");
                            break;
                        }
                        sent += 1;
                    }
                    Err(e) => {
                        result = Err(db.note(e));
                        break;
                    }
                }
            }
        }
        match &result {
            Err(e) if !failing => {
                tracing::error!(source, query = %poll.query, error = %e, "pollQuery failed (logged again when it works)");
            }
            Err(e) => tracing::debug!(source, error = %e, "pollQuery failed again"),
            Ok(()) if failing => tracing::info!(source, "pollQuery works again"),
            Ok(()) => {}
        }
        failing = result.is_err();
        metrics.poll(
            &source,
            started.elapsed().as_secs_f64(),
            sent,
            result.is_ok(),
        );
        metrics.pool(&source, db.usage());
    }
}

/// What a source has: a database, or the reason its configuration was refused.
#[derive(Default)]
struct Slot(Mutex<Option<Result<Arc<Source>, String>>>);

impl Slot {
    fn get(&self) -> Option<Result<Arc<Source>, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, value: Result<Arc<Source>, String>) {
        // The previous source (if any) stops its tasks when dropped.
        let old = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(value);
        drop(old);
    }
}

/// The SQL connector: every source its own database.
#[derive(Default, Clone)]
pub struct SqlConnector {
    /// The connector's own series (register them with [`SqlMetrics::register`]).
    pub metrics: SqlMetrics,
}

impl SqlConnector {
    /// A connector with no source configured yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn source(ctx: &Context) -> Result<Arc<Source>, QueryError> {
        match ctx.state::<Slot>().get() {
            Some(Ok(s)) => Ok(s),
            Some(Err(reason)) => Err(QueryError::config_rejected(reason)),
            None => Err(QueryError::config_rejected("no configuration received yet")),
        }
    }

    async fn answer(&self, source: &Source, mut query: Query, sql: &str) -> HandlerResult {
        let params = match query.params().get("params") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(p)) => p.clone(),
            Some(_) => {
                return Ok(query
                    .error(QueryError::invalid_parameters("\"params\" must be a list"))
                    .await?)
            }
        };
        let bundle = match query.params().get("bundleFactor").and_then(Value::as_u64) {
            Some(n) => n as usize,
            None => DEFAULT_BUNDLE_FACTOR,
        };
        let name = &source.name;
        let db = &source.db;
        let mut conn = match db.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                source.metrics.query(name, "error");
                return Ok(query.error(sql_error(&e, sql)).await?);
            }
        };
        let mut rows = conn.rows(sql, &params, source.config.include_nulls);
        let mut sent = 0;
        let mut batch = Vec::with_capacity(bundle.clamp(1, 1024));
        while let Some(row) = rows.next().await {
            match row {
                Ok(row) => {
                    // A full bundle goes when the next row shows it is not the last.
                    if bundle > 0 && batch.len() == bundle {
                        query.partial(&batch).await?;
                        sent += batch.len();
                        batch.clear();
                    }
                    batch.push(row);
                }
                Err(e) => {
                    let e = db.note(e);
                    drop(rows);
                    drop(conn);
                    source.metrics.query(name, "error");
                    source.metrics.rows(name, sent);
                    tracing::warn!(source = %name, error = %e, "query failed");
                    return Ok(query.error(sql_error(&e, sql)).await?);
                }
            }
        }
        drop(rows);
        drop(conn);
        source.metrics.pool(name, db.usage());
        if batch.is_empty() {
            // jdbcSource's answer to a statement without rows: 204 with an empty map.
            source.metrics.query(name, "empty");
            Ok(query.empty_map().await?)
        } else {
            source.metrics.query(name, "rows");
            source.metrics.rows(name, sent + batch.len());
            Ok(query.complete(&batch).await?)
        }
    }
}

impl Handler for SqlConnector {
    async fn on_connect(&self, ctx: Context, config: Value) -> HandlerResult {
        let name = ctx.source().to_owned();
        let slot = ctx.state::<Slot>();
        let parsed = match SourceConfig::from_document(&config) {
            Ok(parsed) => parsed,
            Err(e) => {
                let reason = format!("configuration refused: {e}");
                slot.set(Err(reason.clone()));
                return Err(format!("source {name}: {reason}").into());
            }
        };
        if let Some(Ok(current)) = slot.get() {
            if current.config == parsed {
                tracing::info!(source = %name, "configuration unchanged, database kept");
                return Ok(());
            }
        }
        for warning in &parsed.warnings {
            tracing::warn!(source = %name, "{warning}");
        }
        // The requests' connections, one for publishes (which do not wait for a query's
        // turn when processing is synchronous) and one for the poller.
        let connections = parsed.max_active_tasks as u32 + 1 + u32::from(parsed.poll.is_some());
        let db = Arc::new(Database::new(&parsed, connections));
        match db.check().await {
            Ok(()) => {
                tracing::info!(source = %name, url = %parsed.display_url, "database connected")
            }
            Err(e) => {
                tracing::warn!(source = %name, url = %parsed.display_url, error = %e, "database not reachable yet")
            }
        }
        let source = Arc::new(Source {
            name: name.clone(),
            retry: Arc::new(Retry {
                queue: Mutex::new(VecDeque::new()),
                limit: parsed.publish_retry_limit,
                interval: parsed.publish_retry_interval,
                task: Mutex::new(None),
            }),
            limiter: Limiter::new(&parsed),
            db: db.clone(),
            poller: Mutex::new(None),
            metrics: self.metrics.clone(),
            config: parsed.clone(),
        });
        if parsed.poll.is_some() {
            let task = tokio::spawn(poll_loop(
                ctx.connection().clone(),
                db,
                parsed,
                self.metrics.clone(),
            ));
            *source.poller.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        }
        slot.set(Ok(source));
        Ok(())
    }

    async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
        let source = Self::source(&ctx).map_err(|e| e.message())?;
        let publish = match Publish::from_message(&message) {
            Ok(p) => p,
            Err(reason) => {
                source.metrics.publish(&source.name, "failed");
                return Err(format!("publish to {} refused: {reason}", source.name).into());
            }
        };
        if source.config.asynchronous {
            // As jdbcSource's asynchronousProcessing: at most maxActiveTasks at once,
            // maxQueuedTasks waiting, the rest refused.
            tokio::spawn(async move {
                let Some(_turn) = source.limiter.enter().await else {
                    source.metrics.publish(&source.name, "dropped");
                    tracing::error!(source = %source.name, "{}", queue_full().message());
                    return;
                };
                source.publish(publish).await;
            });
        } else {
            source.publish(publish).await;
        }
        Ok(())
    }

    async fn on_query(&self, query: Query) -> HandlerResult {
        let source = match Self::source(query.ctx()) {
            Ok(s) => s,
            Err(e) => return Ok(query.error(e).await?),
        };
        let Some(_turn) = source.limiter.enter().await else {
            source.metrics.query(&source.name, "rejected");
            return Ok(query.error(queue_full()).await?);
        };
        match query.params().get("query").cloned() {
            Some(Value::String(sql)) => self.answer(&source, query, &sql).await,
            Some(Value::Array(list)) => {
                // A batch of updates, as a publish of a list, answered with 204.
                let publish = match Publish::from_message(query.params()) {
                    Ok(p) => p,
                    Err(reason) => {
                        source.metrics.query(&source.name, "error");
                        return Ok(query
                            .error(QueryError::new(QUERY_NOT_STRING, "{0}", [reason]))
                            .await?);
                    }
                };
                match publish.run(&source.db).await {
                    Ok(()) => {
                        source.metrics.query(&source.name, "empty");
                        Ok(query.empty_map().await?)
                    }
                    Err(e) => {
                        source.metrics.query(&source.name, "error");
                        let sql = Value::from(list).to_string();
                        Ok(query.error(sql_error(&e, &sql)).await?)
                    }
                }
            }
            _ => {
                source.metrics.query(&source.name, "error");
                Ok(query
                    .error(QueryError::new(
                        QUERY_NOT_STRING,
                        "The Query Request could not be executed because the query property is not a string.",
                        Vec::<Value>::new(),
                    ))
                    .await?)
            }
        }
    }

    async fn on_close(&self, ctx: Context) -> HandlerResult {
        // The database and poller stay: a reconnection with the same configuration
        // goes on with them (polling skips its turns while disconnected).
        tracing::debug!(source = ctx.source(), "connection closed");
        Ok(())
    }
}
