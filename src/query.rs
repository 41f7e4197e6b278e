//! Queries and their answers.
//!
//! A [`Query`] is handed to the query handler and is the only way to answer
//! it: [`Query::partial`] borrows it (more may follow), while
//! [`Query::complete`], [`Query::empty`] and [`Query::error`] consume it, so a
//! second final answer, or an answer after the final one, does not compile.
//! A query is bound to the connection it came on, so it cannot answer for
//! another source.
//!
//! Whatever the handler does, the query gets exactly one final answer: if the
//! handler panics, returns an error, drops the query, or overruns
//! [`crate::Settings::query_deadline`], the SDK answers with a
//! [`QueryError`] itself.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::connection::outbox::Outgoing;
use crate::connection::{Inner, SourceConnection};
use crate::error::QueryAnswerError;
use crate::handler::Context;
use crate::protocol::session::is_final;

/// Query response status: a partial result, more will follow (Python's
/// `VantiqConnector.QUERY_PARTIAL`).
pub const QUERY_PARTIAL: u16 = 100;
/// Query response status: the last (or only) part (`QUERY_COMPLETE`).
pub const QUERY_COMPLETE: u16 = 200;
/// Query response status: no data (`QUERY_EMPTY`).
pub const QUERY_EMPTY: u16 = 204;
/// Query response status of an error answer.
pub const QUERY_ERROR: u16 = 400;

/// A query error, as the server expects it: a message code, a message
/// template with `{0}`, `{1}`... placeholders, and the parameters that fill
/// them. Serialises to `{"messageCode", "messageTemplate", "parameters"}`
/// (Python's `ERROR_CODE`, `ERROR_TEMPLATE`, `ERROR_PARAMETERS`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct QueryError {
    /// A short, stable name for the error, e.g. `myconnector.badTable`.
    #[serde(rename = "messageCode")]
    pub message_code: String,
    /// The message, with `{0}`-style placeholders.
    #[serde(rename = "messageTemplate")]
    pub message_template: String,
    /// The values of the placeholders.
    pub parameters: Vec<Value>,
}

impl QueryError {
    /// A query error with its code, template and parameters.
    ///
    /// ```
    /// use vantiq_connector_sdk::QueryError;
    /// let e = QueryError::new("db.noTable", "No table {0}", ["orders"]);
    /// assert_eq!(e.to_string(), "db.noTable: No table orders");
    /// ```
    pub fn new<P: Into<Value>>(
        code: impl Into<String>,
        template: impl Into<String>,
        parameters: impl IntoIterator<Item = P>,
    ) -> Self {
        QueryError {
            message_code: code.into(),
            message_template: template.into(),
            parameters: parameters.into_iter().map(Into::into).collect(),
        }
    }

    /// The template with its placeholders filled in.
    pub fn message(&self) -> String {
        let mut out = self.message_template.clone();
        for (i, p) in self.parameters.iter().enumerate() {
            let text = match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out = out.replace(&format!("{{{i}}}"), &text);
        }
        out
    }

    /// The answer to a query for a source with no query handler.
    pub fn no_query_handler(source: &str) -> Self {
        Self::new(
            "io.vantiq.connector.noQueryHandler",
            "Source {0} has no query handler.",
            [source],
        )
    }

    /// The answer to a query whose parameters do not fit the expected type.
    pub fn invalid_parameters(reason: impl fmt::Display) -> Self {
        Self::new(
            "io.vantiq.connector.invalidParameters",
            "Invalid query parameters: {0}",
            [reason.to_string()],
        )
    }

    pub(crate) fn handler_panicked(message: &str) -> Self {
        Self::new(
            "io.vantiq.connector.queryHandlerPanicked",
            "The query handler panicked: {0}",
            [message],
        )
    }

    pub(crate) fn handler_failed(message: &str) -> Self {
        Self::new(
            "io.vantiq.connector.queryHandlerFailed",
            "The query handler failed: {0}",
            [message],
        )
    }

    pub(crate) fn no_answer() -> Self {
        Self::new::<Value>(
            "io.vantiq.connector.queryNotAnswered",
            "The query handler finished without answering the query.",
            [],
        )
    }

    pub(crate) fn deadline(ms: u128) -> Self {
        Self::new(
            "io.vantiq.connector.queryDeadlineExceeded",
            "The query was not answered within {0} ms.",
            [ms as u64],
        )
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message_code, self.message())
    }
}

impl std::error::Error for QueryError {}

/// Where answers of one query go: the connection it came on.
#[derive(Clone)]
pub(crate) struct AnswerSink {
    pub(crate) conn: Arc<Inner>,
    pub(crate) epoch: u64,
    pub(crate) reply_address: Arc<str>,
    /// When the query's frame arrived, if queries are timed (metrics on).
    pub(crate) received: Option<std::time::Instant>,
}

impl AnswerSink {
    /// Queues one answer frame. The query's connection must still be the
    /// current one.
    pub(crate) fn send(&self, status: u16, body: Option<String>) -> Result<(), QueryAnswerError> {
        if !self.conn.is_current(self.epoch) {
            return Err(QueryAnswerError::ConnectionLost);
        }
        self.conn
            .outbox
            .push_answer(Outgoing::Answer {
                epoch: self.epoch,
                reply_address: self.reply_address.clone(),
                status,
                body,
            })
            .map_err(|()| QueryAnswerError::ConnectionLost)?;
        if is_final(status) {
            self.conn.stats.add_query(status >= 400);
            if let Some(received) = self.received {
                self.conn.stats.query_latency.observe(received);
            }
        }
        Ok(())
    }

    /// Sends the SDK's own error answer.
    pub(crate) fn send_error(&self, error: &QueryError) {
        let body = serde_json::to_string(error).expect("a QueryError always serialises");
        if let Err(e) = self.send(QUERY_ERROR, Some(body)) {
            tracing::debug!(reply_address = %self.reply_address, error = %e, "could not send the query error answer");
        }
    }
}

/// The state shared by every handle on one query.
struct Shared {
    source: Arc<str>,
    sink: AnswerSink,
    finished: Arc<AtomicBool>,
    /// Fired when the final answer is sent; dropped (so the SDK's wrapper
    /// sees the query abandoned) when the last handle goes.
    done: Mutex<Option<oneshot::Sender<()>>>,
}

impl Shared {
    fn answer(&self, status: u16, body: Option<String>) -> Result<(), QueryAnswerError> {
        if is_final(status) {
            if self.finished.swap(true, Ordering::AcqRel) {
                return Err(QueryAnswerError::AlreadyAnswered);
            }
        } else if self.finished.load(Ordering::Acquire) {
            return Err(QueryAnswerError::AlreadyAnswered);
        }
        let result = self.sink.send(status, body);
        if is_final(status) {
            if let Some(done) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = done.send(());
            }
        }
        result
    }
}

/// What the SDK's query wrapper keeps of a query to answer it when the
/// handler does not.
pub(crate) struct Guard {
    finished: Arc<AtomicBool>,
    sink: AnswerSink,
}

impl Guard {
    /// Answers with `error` unless the query already had its final answer.
    pub(crate) fn fail(&self, error: &QueryError) {
        if !self.finished.swap(true, Ordering::AcqRel) {
            tracing::warn!(reply_address = %self.sink.reply_address, error = %error, "answering the query with an error");
            self.sink.send_error(error);
        }
    }
}

/// The routing information of a query: its source and reply address. This
/// is Python's query context (`SOURCE_NAME`, `RESPONSE_ADDRESS`), for the
/// explicit answer form [`SourceConnection::send_query_response`]; it can be
/// cloned and moved to other tasks. Answers through any clone obey the same
/// rules as through the [`Query`].
#[derive(Clone)]
pub struct QueryContext {
    shared: Arc<Shared>,
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
        &self.shared.sink.reply_address
    }

    /// Whether the query has had its final answer.
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Sends an answer with an explicit status code (the Python form,
    /// `send_query_response(ctx, code, message)`), with Python's checks.
    pub(crate) fn respond<T: Serialize + ?Sized>(
        &self,
        status: u16,
        body: Option<&T>,
    ) -> Result<(), QueryAnswerError> {
        let body = match (status, body) {
            (QUERY_PARTIAL | QUERY_COMPLETE, None) => {
                return Err(QueryAnswerError::MissingBody(status))
            }
            (QUERY_PARTIAL | QUERY_COMPLETE, Some(body)) => Some(rows_json(body)?),
            (QUERY_EMPTY, None) => None,
            (QUERY_EMPTY, Some(_)) => return Err(QueryAnswerError::UnexpectedBody),
            (other, _) => return Err(QueryAnswerError::InvalidStatus(other)),
        };
        self.shared.answer(status, body)
    }

    /// Sends an error answer.
    pub(crate) fn respond_error(&self, error: &QueryError) -> Result<(), QueryAnswerError> {
        let body = serde_json::to_string(error)?;
        self.shared.answer(QUERY_ERROR, Some(body))
    }
}

/// Serialises `body`, checking that it is an object or a list of objects.
fn rows_json<T: Serialize + ?Sized>(body: &T) -> Result<String, QueryAnswerError> {
    let json = serde_json::to_string(body)?;
    check_rows(&json)?;
    Ok(json)
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

/// The JSON type of `v`, in words.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
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
    /// Makes a query, the guard the SDK keeps to answer it if the handler
    /// does not, and a receiver that resolves when the final answer is sent
    /// (or fails when every handle on the query is gone without one).
    pub(crate) fn new(
        connection: SourceConnection,
        params: Value,
        sink: AnswerSink,
    ) -> (Query, Guard, oneshot::Receiver<()>) {
        let finished = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            source: connection.source_arc(),
            sink: sink.clone(),
            finished: finished.clone(),
            done: Mutex::new(Some(done_tx)),
        });
        let query = Query {
            ctx: Context::new(connection),
            params,
            context: QueryContext { shared },
        };
        let guard = Guard { finished, sink };
        (query, guard, done_rx)
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
    /// A [`QueryError`] (`io.vantiq.connector.invalidParameters`) saying why
    /// they do not fit, ready to be sent with [`Query::error`].
    pub fn parse_params<P: DeserializeOwned>(&self) -> Result<P, QueryError> {
        P::deserialize(&self.params).map_err(QueryError::invalid_parameters)
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
    /// of objects. More answers must follow.
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
        self.context.respond(QUERY_PARTIAL, Some(rows))
    }

    /// Sends the final result (status 200): one object or a list of objects.
    ///
    /// # Errors
    ///
    /// As [`Query::partial`].
    pub async fn complete<T: Serialize + ?Sized>(self, rows: &T) -> Result<(), QueryAnswerError> {
        self.context.respond(QUERY_COMPLETE, Some(rows))
    }

    /// Ends the query with no data (status 204).
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::ConnectionLost`] if the connection has ended.
    pub async fn empty(self) -> Result<(), QueryAnswerError> {
        self.context.respond::<Value>(QUERY_EMPTY, None)
    }

    /// Ends the query with an error (status 400).
    ///
    /// # Errors
    ///
    /// [`QueryAnswerError::ConnectionLost`] if the connection has ended.
    pub async fn error(self, error: impl Into<QueryError>) -> Result<(), QueryAnswerError> {
        self.context.respond_error(&error.into())
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

    #[test]
    fn error_messages_fill_their_templates() {
        let e = QueryError::new("c", "{0} and {1} and {0}", [json!("a"), json!(2)]);
        assert_eq!(e.message(), "a and 2 and a");
    }
}
