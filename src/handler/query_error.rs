//! Query errors, as the server expects them, and the status codes of query
//! answers.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

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

    /// The answer to a query of a source whose configuration was rejected
    /// (see [`crate::Context::config_rejection`]).
    pub fn config_rejected(reason: impl fmt::Display) -> Self {
        Self::new(
            "io.vantiq.connector.configurationRejected",
            "The source's configuration was rejected: {0}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages_fill_their_templates() {
        let e = QueryError::new("c", "{0} and {1} and {0}", [json!("a"), json!(2)]);
        assert_eq!(e.message(), "a and 2 and a");
    }
}
