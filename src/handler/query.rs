//! Queries and their answers.
//!
//! A [`Query`] is handed to the query handler and is the way to answer it:
//! [`Query::partial`] borrows it (more may follow), while
//! [`Query::complete`], [`Query::empty`] and [`Query::error`] consume it, so
//! through a `Query` a second final answer, or an answer after the final
//! one, does not compile. The explicit form of Python's SDK
//! ([`SourceConnection::send_query_response`] with a [`QueryContext`], which
//! can be cloned) checks the same rules at run time instead:
//! [`QueryAnswerError::AlreadyAnswered`]. A query is bound to the connection
//! it came on, so it cannot answer for another source.
//!
//! Whatever the handler does, the query gets exactly one final answer: if the
//! handler panics, returns an error, drops the query, or overruns
//! [`crate::Settings::query_deadline`], the SDK answers with a
//! [`QueryError`] itself.
//!
//! Answers wait for room in the connection's answer budget
//! ([`crate::Settings::answer_buffer_bytes`]): a handler streaming a large
//! result to a server that reads slowly is slowed down to the server's pace.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use super::query_error::{QueryError, QUERY_COMPLETE, QUERY_EMPTY, QUERY_ERROR, QUERY_PARTIAL};
use super::Context;
use crate::connection::reply::Reply;
use crate::connection::SourceConnection;
use crate::error::QueryAnswerError;
use crate::protocol::session::is_final;

/// The state of one query, shared by its handles ([`Query`] and the
/// [`QueryContext`] clones) and the SDK's [`Guard`]: one allocation per
/// query.
struct Shared {
    reply: Reply,
    source: Arc<str>,
    finished: AtomicBool,
    /// How many handles exist (the guard is not one): when the last one goes
    /// without a final answer, nobody can answer the query any more.
    handles: AtomicUsize,
    /// Woken when the query is finished or its last handle goes.
    settled: Notify,
}

impl Shared {
    /// Sends one answer (its whole frame), unless the query is finished.
    ///
    /// Cancel-safe: a final answer claims the query only when its frame is
    /// queued, after any wait for room in the answer budget, so an answer
    /// whose future is dropped while it waits (a `select!`, a timeout, the
    /// Python package's attempt without waiting) leaves the query open to be
    /// answered again.
    async fn answer(&self, status: u16, frame: String) -> Result<(), QueryAnswerError> {
        if self.finished.load(Ordering::Acquire) {
            return Err(QueryAnswerError::AlreadyAnswered);
        }
        let last = is_final(status);
        let result = self.reply.send(status, frame, || self.claim(last)).await;
        if last {
            self.settled.notify_one();
        }
        result
    }

    /// Called when an answer's frame is about to be queued: a final answer
    /// takes the query (once), any answer is refused after the final one.
    fn claim(&self, last: bool) -> Result<(), QueryAnswerError> {
        let taken = if last {
            self.finished.swap(true, Ordering::AcqRel)
        } else {
            self.finished.load(Ordering::Acquire)
        };
        if taken {
            Err(QueryAnswerError::AlreadyAnswered)
        } else {
            Ok(())
        }
    }

    /// [`Shared::answer`] if there is room now, without waiting or waking the
    /// connection task: `Ok(false)` when it would have to wait (nothing claimed).
    fn answer_quietly(&self, status: u16, frame: String) -> Result<bool, QueryAnswerError> {
        if self.finished.load(Ordering::Acquire) {
            return Err(QueryAnswerError::AlreadyAnswered);
        }
        let last = is_final(status);
        let queued = self
            .reply
            .send_quietly(status, frame, || self.claim(last))?;
        if queued && last {
            self.settled.notify_one();
        }
        Ok(queued)
    }
}

/// What the SDK's query wrapper keeps of a query to answer it when the
/// handler does not.
pub(crate) struct Guard {
    shared: Arc<Shared>,
}

impl Guard {
    /// Waits until the query has had its final answer (`true`), or until
    /// every handle on it is gone without one (`false`): then nobody can
    /// answer it any more.
    pub(crate) async fn settled(&self) -> bool {
        let shared = &self.shared;
        loop {
            // A wake-up between the checks and the wait is kept as a permit
            // (`notify_one`), so none is lost.
            if shared.finished.load(Ordering::Acquire) {
                return true;
            }
            if shared.handles.load(Ordering::Acquire) == 0 {
                return shared.finished.load(Ordering::Acquire);
            }
            shared.settled.notified().await;
        }
    }

    /// Answers with `error` unless the query already had its final answer.
    pub(crate) fn fail(&self, error: &QueryError) {
        let shared = &self.shared;
        if !shared.finished.swap(true, Ordering::AcqRel) {
            // Why was logged where it was found out (the handler's error or
            // panic, no answer, the deadline).
            tracing::debug!(reply_address = %shared.reply.reply_address(), error = %error, "answering the query with an error");
            let body = serde_json::to_string(error).expect("a QueryError always serialises");
            let frame = shared.reply.frame(QUERY_ERROR, Some(&body));
            if let Err(e) = shared.reply.send_now(QUERY_ERROR, frame) {
                tracing::debug!(reply_address = %shared.reply.reply_address(), error = %e, "could not send the query error answer");
            }
        }
    }
}

/// The routing information of a query: its source and reply address. This
/// is Python's query context (`SOURCE_NAME`, `RESPONSE_ADDRESS`), for the
/// explicit answer form [`SourceConnection::send_query_response`]; it can be
/// cloned and moved to other tasks. Answers through any clone obey the same
/// rules as through the [`Query`], checked at run time.
pub struct QueryContext {
    shared: Arc<Shared>,
}

impl Clone for QueryContext {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        QueryContext {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for QueryContext {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.settled.notify_one();
        }
    }
}

impl fmt::Debug for QueryContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryContext")
            .field("source", &self.source())
            .field("reply_address", &self.reply_address())
            .finish()
    }
}

impl QueryContext {
    /// The source the query came to.
    pub fn source(&self) -> &str {
        &self.shared.source
    }

    /// The query's reply address (Python's `RESPONSE_ADDRESS`).
    pub fn reply_address(&self) -> &str {
        self.shared.reply.reply_address()
    }

    /// Whether the query has had its final answer.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Sends an answer with an explicit status code (the Python form,
    /// `send_query_response(ctx, code, message)`), with Python's checks.
    async fn respond<T: Serialize + ?Sized>(
        &self,
        status: u16,
        body: Option<&T>,
    ) -> Result<(), QueryAnswerError> {
        let frame = self.frame(status, body)?;
        self.shared.answer(status, frame).await
    }

    /// The answer's frame, with Python's checks.
    fn frame<T: Serialize + ?Sized>(
        &self,
        status: u16,
        body: Option<&T>,
    ) -> Result<String, QueryAnswerError> {
        let reply = &self.shared.reply;
        Ok(match (status, body) {
            (QUERY_PARTIAL | QUERY_COMPLETE, None) => {
                return Err(QueryAnswerError::MissingBody(status))
            }
            (QUERY_PARTIAL | QUERY_COMPLETE, Some(body)) => with_json(body, |json| {
                check_rows(json)?;
                Ok(reply.frame(status, Some(json)))
            })?,
            (QUERY_EMPTY, None) => reply.frame(status, None),
            // The one body a 204 may carry: `{}`, as Vantiq's Java connectors send it.
            (QUERY_EMPTY, Some(body)) => with_json(body, |json| match json {
                "{}" => Ok(reply.frame(status, Some(json))),
                _ => Err(QueryAnswerError::UnexpectedBody),
            })?,
            (other, _) => return Err(QueryAnswerError::InvalidStatus(other)),
        })
    }

    /// Sends an error answer.
    async fn respond_error(&self, error: &QueryError) -> Result<(), QueryAnswerError> {
        let reply = &self.shared.reply;
        let frame = with_json(error, |json| Ok(reply.frame(QUERY_ERROR, Some(json))))?;
        self.shared.answer(QUERY_ERROR, frame).await
    }
}

impl SourceConnection {
    /// Answers a query with an explicit status code, Python's
    /// `send_query_response(ctx, code, message)`: `code` is
    /// [`crate::QUERY_PARTIAL`] or [`crate::QUERY_COMPLETE`] with a body (an
    /// object or a list of objects), or [`crate::QUERY_EMPTY`] without one.
    /// Prefer the methods of [`Query`], which make a second final answer
    /// impossible to write.
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::InvalidStatus`], [`QueryAnswerError::MissingBody`],
    /// [`QueryAnswerError::UnexpectedBody`], [`QueryAnswerError::NotRows`],
    /// [`QueryAnswerError::AlreadyAnswered`] after the final answer,
    /// [`QueryAnswerError::WrongSource`] for a query of another source, and
    /// [`QueryAnswerError::ConnectionLost`].
    pub async fn send_query_response(
        &self,
        ctx: &QueryContext,
        code: u16,
        body: Option<&Value>,
    ) -> Result<(), QueryAnswerError> {
        self.check_source(ctx)?;
        ctx.respond(code, body).await
    }

    /// Answers a query with an error, Python's `send_query_error(ctx,
    /// message)`.
    ///
    /// # Errors
    ///
    /// As [`SourceConnection::send_query_response`].
    pub async fn send_query_error(
        &self,
        ctx: &QueryContext,
        error: QueryError,
    ) -> Result<(), QueryAnswerError> {
        self.check_source(ctx)?;
        ctx.respond_error(&error).await
    }

    /// Queues an answer (as [`SourceConnection::send_query_response`], any
    /// serde body) if the connection's answer budget has room now, without
    /// waiting and without waking the connection task: `Ok(true)` when queued,
    /// `Ok(false)` when it would have to wait (nothing was queued or claimed:
    /// send it with [`SourceConnection::send_query_response`] then).
    ///
    /// For code that answers many queries in one go (the Python package, one
    /// batch of handlers): it queues them all, then calls
    /// [`SourceConnection::wake_writer`] once, so the connection task wakes
    /// and writes once for the batch instead of once per answer. Until then
    /// the answers wait (also written at the connection task's next wake-up
    /// for any other reason).
    ///
    /// # Errors
    ///
    /// As [`SourceConnection::send_query_response`].
    pub fn queue_query_response<T: Serialize + ?Sized>(
        &self,
        ctx: &QueryContext,
        code: u16,
        body: Option<&T>,
    ) -> Result<bool, QueryAnswerError> {
        self.check_source(ctx)?;
        let frame = ctx.frame(code, body)?;
        ctx.shared.answer_quietly(code, frame)
    }

    fn check_source(&self, ctx: &QueryContext) -> Result<(), QueryAnswerError> {
        if ctx.source() != self.source() {
            return Err(QueryAnswerError::WrongSource {
                query_source: ctx.source().to_owned(),
                connection: self.source().to_owned(),
            });
        }
        Ok(())
    }
}

/// Serialises `body` and calls `then` with its JSON text (in the thread's
/// scratch buffer: the answer's frame is then made at its exact length).
fn with_json<T: Serialize + ?Sized, R>(
    body: &T,
    then: impl FnOnce(&str) -> Result<R, QueryAnswerError>,
) -> Result<R, QueryAnswerError> {
    crate::protocol::scratch::with_json(body, then)
}

/// Serialises `body`, checking that it is an object or a list of objects.
#[cfg(test)]
fn rows_json<T: Serialize + ?Sized>(body: &T) -> Result<String, QueryAnswerError> {
    with_json(body, |json| {
        check_rows(json)?;
        Ok(json.to_owned())
    })
}

/// Checks that compact JSON text is an object or a list of objects, by
/// looking at the first character of each element of the top-level list
/// (no second parse, no allocation).
fn check_rows(json: &str) -> Result<(), QueryAnswerError> {
    match json.as_bytes().first() {
        Some(b'{') => return Ok(()),
        Some(b'[') => {}
        Some(&c) => return Err(QueryAnswerError::NotRows(kind_of_text(c).to_owned())),
        None => return Err(QueryAnswerError::NotRows("nothing".to_owned())),
    }
    let (mut depth, mut in_string, mut escaped, mut element_next) = (0usize, false, false, false);
    for &c in json.as_bytes() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if element_next && !c.is_ascii_whitespace() {
            element_next = false;
            if c != b'{' && c != b']' {
                let held = kind_of_text(c);
                return Err(QueryAnswerError::NotRows(format!("a list holding {held}")));
            }
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                element_next = depth == 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => element_next = true,
            _ => {}
        }
    }
    Ok(())
}

/// The JSON type of a value, from its first character.
fn kind_of_text(first: u8) -> &'static str {
    match first {
        b'{' => "object",
        b'[' => "list",
        b'"' => "string",
        b't' | b'f' => "boolean",
        b'n' => "null",
        _ => "number",
    }
}

/// A query from the server, to be answered.
///
/// ```
/// use serde_json::json;
/// use vantiq_connector_sdk::{HandlerResult, Query, QueryError};
///
/// async fn on_query(mut query: Query) -> HandlerResult {
///     let op = query.params()["op"].clone();
///     match op.as_str() {
///         Some("count") => {
///             query.partial(&vec![json!({"i": 0}), json!({"i": 1})]).await?;
///             query.complete(&vec![json!({"i": 2})]).await?;
///         }
///         Some("nothing") => query.empty().await?,
///         _ => query.error(QueryError::new("my.badOp", "Unknown op {0}", [op])).await?,
///     }
///     Ok(())
/// }
/// ```
pub struct Query {
    ctx: Context,
    params: Value,
    context: QueryContext,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("source", &self.source())
            .field("reply_address", &self.reply_address())
            .field("params", &self.params)
            .finish()
    }
}

impl Query {
    /// Makes a query and the guard the SDK keeps to answer it if the
    /// handler does not.
    pub(crate) fn new(ctx: Context, params: Value, reply: Reply) -> (Query, Guard) {
        let shared = Arc::new(Shared {
            source: ctx.connection().source_arc(),
            reply,
            finished: AtomicBool::new(false),
            handles: AtomicUsize::new(1),
            settled: Notify::new(),
        });
        let guard = Guard {
            shared: shared.clone(),
        };
        let query = Query {
            ctx,
            params,
            context: QueryContext { shared },
        };
        (query, guard)
    }

    /// The source the query came to.
    pub fn source(&self) -> &str {
        self.ctx.source()
    }

    /// The query's reply address.
    pub fn reply_address(&self) -> &str {
        self.context.reply_address()
    }

    /// The query parameters (the VAIL `WITH` clause), a JSON object.
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// The parameters as a `P` (any serde type).
    ///
    /// # Errors
    ///
    /// A [`QueryError`] (`io.vantiq.connector.invalidParameters`) naming the
    /// parameter that does not fit and why (`count: invalid type: string
    /// "2", expected usize`), ready to be sent with [`Query::error`] or
    /// returned from the handler.
    pub fn parse_params<P: DeserializeOwned>(&self) -> Result<P, QueryError> {
        super::parse_value(&self.params).map_err(QueryError::invalid_parameters)
    }

    /// The handler context (source name and connection).
    pub fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// The source connection the query came on.
    pub fn connection(&self) -> &SourceConnection {
        self.ctx.connection()
    }

    /// The routing information, for the explicit answer form.
    pub fn context(&self) -> &QueryContext {
        &self.context
    }

    /// Sends a partial result (status 100): `rows` is one object or a list
    /// of objects. More answers must follow. Waits while the answers already
    /// waiting to be written fill the answer budget.
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::NotRows`] if `rows` is not an object or a list of
    /// objects; [`QueryAnswerError::ConnectionLost`] if the connection the
    /// query came on has ended.
    pub async fn partial<T: Serialize + ?Sized>(
        &mut self,
        rows: &T,
    ) -> Result<(), QueryAnswerError> {
        self.context.respond(QUERY_PARTIAL, Some(rows)).await
    }

    /// Sends the final result (status 200): one object or a list of objects.
    ///
    /// # Errors
    ///
    /// As [`Query::partial`].
    pub async fn complete<T: Serialize + ?Sized>(self, rows: &T) -> Result<(), QueryAnswerError> {
        self.context.respond(QUERY_COMPLETE, Some(rows)).await
    }

    /// Ends the query with no data (status 204).
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::ConnectionLost`] if the connection has ended.
    pub async fn empty(self) -> Result<(), QueryAnswerError> {
        self.context.respond::<Value>(QUERY_EMPTY, None).await
    }

    /// Ends the query with no data (status 204) and the body `{}`, an empty
    /// map: how Vantiq's Java connectors (jdbcSource) answer a statement that
    /// returns no rows, for connectors that replace them.
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::ConnectionLost`] if the connection has ended.
    pub async fn empty_map(self) -> Result<(), QueryAnswerError> {
        let empty = serde_json::Map::new();
        self.context.respond(QUERY_EMPTY, Some(&empty)).await
    }

    /// Ends the query with an error (status 400).
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::ConnectionLost`] if the connection has ended.
    pub async fn error(self, error: impl Into<QueryError>) -> Result<(), QueryAnswerError> {
        self.context.respond_error(&error.into()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_an_object_or_a_list_of_objects() {
        for ok in [
            json!({}),
            json!({"a": [1, "x]"]}),
            json!([]),
            json!([{}, {"b": {"c": [{}]}}]),
            json!([{"s": "\\\"[,"}]),
        ] {
            assert!(rows_json(&ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            (json!(1), "number"),
            (json!("s"), "string"),
            (json!(null), "null"),
            (json!([1]), "a list holding number"),
            (json!([{}, "x"]), "a list holding string"),
            (json!([{}, [{}]]), "a list holding list"),
            (json!([true]), "a list holding boolean"),
        ] {
            match rows_json(&bad) {
                Err(QueryAnswerError::NotRows(got)) => assert_eq!(got, why, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
