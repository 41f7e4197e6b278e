//! The JSON control API under `/sim`, served on the WebSocket's listener: what the CLI
//! subcommands and tests in other languages use to drive the emulator.
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/sim/sources` | every source's status |
//! | GET | `/sim/sources/{name}` | one source's status |
//! | PUT | `/sim/sources/{name}/config` | sets the configuration; a connected source gets `reconnectRequired` |
//! | POST | `/sim/sources/{name}/publish` | publishes the body (202) |
//! | POST | `/sim/sources/{name}/query?timeout_ms=N` | queries with the body as parameters; 504 on timeout |
//! | POST | `/sim/sources/{name}/query?stream=1&timeout_ms=N` | the same, streamed: each answer frame a line of JSON as it arrives (nothing kept); a failure after the first line is a last line `{"streamError": {"status", "error"}}` |
//! | POST | `/sim/sources/{name}/query-load?queries=N&in_flight=K&timeout_ms=T` | sends N queries (body: parameters), K in flight; a [`crate::QueryLoadSummary`] |
//! | GET | `/sim/sources/{name}/notifications?since=K&wait_ms=N` | notifications with seq >= K; `wait_ms` waits for the first one |
//! | POST | `/sim/sources/{name}/reconnect` | sends `reconnectRequired` (202) |
//! | POST | `/sim/sources/{name}/drop` | cuts the connection abruptly (202) |
//! | POST | `/sim/sources/{name}/stop-reading` | stops reading the connection, kept open (202 once stopped) |
//! | POST | `/sim/sources/{name}/resume-reading` | reads the connection again (202) |
//! | GET | `/sim/violations` | protocol violations |
//!
//! Errors are `{"error": ".."}`: 404 unknown source, 409 no connector, 504 timeout, 502 the
//! connection was lost during a query, 400 a bad body or parameter.

use crate::load::QueryLoad;
use crate::state::Core;
use crate::types::{SimError, SourceStatus};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Answer frames a streamed query may have between the connector and the HTTP reader,
/// in each of its two queues.
const STREAM_FRAMES: usize = 8;

/// Default query timeout of the control API.
const DEFAULT_QUERY_TIMEOUT_MS: u64 = 10_000;

/// The control API's routes.
pub(crate) fn routes() -> Router<super::http::AppState> {
    Router::new()
        .route("/sim/sources", get(list_sources))
        .route("/sim/sources/{name}", get(get_source))
        .route("/sim/sources/{name}/config", put(set_config))
        .route("/sim/sources/{name}/publish", post(publish))
        .route("/sim/sources/{name}/query", post(query))
        .route("/sim/sources/{name}/query-load", post(query_load))
        .route("/sim/sources/{name}/notifications", get(notifications))
        .route("/sim/sources/{name}/reconnect", post(reconnect))
        .route("/sim/sources/{name}/drop", post(drop_connection))
        .route("/sim/sources/{name}/stop-reading", post(stop_reading))
        .route("/sim/sources/{name}/resume-reading", post(resume_reading))
        .route("/sim/violations", get(violations))
}

/// An error answer: `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A failed control request.
struct ApiError(StatusCode, String);

impl From<SimError> for ApiError {
    fn from(e: SimError) -> Self {
        let status = match e {
            SimError::UnknownSource(_) => StatusCode::NOT_FOUND,
            SimError::NotConnected(_) | SimError::Busy(_) => StatusCode::CONFLICT,
            SimError::ConnectionLost(_) => StatusCode::BAD_GATEWAY,
            SimError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        };
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.0, self.1)
    }
}

type ApiResult = Result<Response, ApiError>;

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the request body must be JSON: {e}"),
        )
    })
}

/// A query's parameters: the JSON body, or `{}` when there is none.
fn query_params(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        Ok(json!({}))
    } else {
        parse_body(body)
    }
}

/// The value of a numeric query-string parameter.
fn param(query: &Option<String>, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            return value.parse().map(Some).map_err(|_| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be a non-negative integer, not {value:?}"),
                )
            });
        }
    }
    Ok(None)
}

async fn list_sources(State(core): State<Arc<Core>>, RawQuery(query): RawQuery) -> ApiResult {
    let secrets = flag(&query, "secrets")?;
    let all: Vec<_> = core
        .sources()
        .into_iter()
        .map(|s| if secrets { s } else { without_secrets(s) })
        .collect();
    Ok(Json(all).into_response())
}

async fn get_source(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let secrets = flag(&query, "secrets")?;
    let status = core.status(&name).ok_or(SimError::UnknownSource(name))?;
    Ok(Json(if secrets {
        status
    } else {
        without_secrets(status)
    })
    .into_response())
}

/// A source's status without its reconnect secrets (their count stays): what the control
/// API lists unless asked for them, and all the console shows.
pub(super) fn without_secrets(mut status: SourceStatus) -> SourceStatus {
    status.reconnect_secrets.clear();
    status
}

/// A boolean query parameter: `true`/`1`, `false`/`0`, absent (`false`).
fn flag(query: &Option<String>, name: &str) -> Result<bool, ApiError> {
    let Some(query) = query else { return Ok(false) };
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if key == name {
            return match value {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be true or false, not {other:?}"),
                )),
            };
        }
    }
    Ok(false)
}

async fn set_config(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    core.entry(&name)?;
    let config = parse_body(&body)?;
    Ok(Json(core.set_config(&name, config)?).into_response())
}

async fn publish(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    core.entry(&name)?;
    let object = parse_body(&body)?;
    core.publish_many(&name, [object]).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn query(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    core.entry(&name)?;
    let timeout = param(&query, "timeout_ms")?.unwrap_or(DEFAULT_QUERY_TIMEOUT_MS);
    let timeout = Duration::from_millis(timeout);
    let params = query_params(&body)?;
    if param(&query, "stream")? == Some(1) {
        return streamed_query(core, name, &params, timeout);
    }
    let outcome = core.query(&name, &params, timeout).await?;
    Ok(Json(outcome).into_response())
}

/// A query whose answer frames go out as lines of JSON as they arrive (`stream=1`): the
/// emulator keeps none of them, so an answer of any size passes through. What waits is
/// only what the HTTP reader has not taken yet.
fn streamed_query(core: Arc<Core>, name: String, params: &Value, timeout: Duration) -> ApiResult {
    // Both channels are bounded: a reader slower than the connector fills them, then the
    // session stops reading the connector until there is room (`SessionLink::backlog`).
    let (frames_tx, mut frames) = mpsc::channel::<Value>(STREAM_FRAMES);
    // Sent before the response starts: an unknown or unconnected source is an HTTP error.
    let started = core.start_streamed_query(&name, params, frames_tx)?;
    let (lines_tx, lines) = mpsc::channel::<Bytes>(STREAM_FRAMES);
    tokio::spawn(async move {
        let forward = async {
            while let Some(frame) = frames.recv().await {
                let mut line = serde_json::to_vec(&frame).expect("a Value serialises");
                line.push(b'\n');
                if lines_tx.send(Bytes::from(line)).await.is_err() {
                    break; // the reader left
                }
            }
        };
        let (outcome, ()) = tokio::join!(core.finish_query(&name, started, timeout), forward);
        if let Err(e) = outcome {
            let ApiError(status, error) = e.into();
            let line = json!({"streamError": {"status": status.as_u16(), "error": error}});
            let _ = lines_tx.send(Bytes::from(format!("{line}\n"))).await;
        }
    });
    let body = futures_util::stream::unfold(lines, |mut lines| async move {
        let line = lines.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(line), lines))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

async fn query_load(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    core.entry(&name)?;
    let queries = param(&query, "queries")?.unwrap_or(1000);
    let in_flight = param(&query, "in_flight")?.unwrap_or(1);
    if in_flight == 0 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "in_flight must be at least 1".into(),
        ));
    }
    let mut load = QueryLoad::new(queries, in_flight);
    if let Some(ms) = param(&query, "timeout_ms")? {
        load = load.timeout(Duration::from_millis(ms));
    }
    let params = query_params(&body)?;
    let report = core.query_load(&name, &params, &load).await?;
    Ok(Json(report.summary()).into_response())
}

async fn notifications(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    core.entry(&name)?;
    let since = param(&query, "since")?.unwrap_or(0);
    if let Some(wait) = param(&query, "wait_ms")? {
        // Long poll: until a notification with seq >= since exists, or the wait is over.
        let _ = core
            .wait_notification_count(&name, since + 1, Duration::from_millis(wait))
            .await;
    }
    Ok(Json(core.notifications(&name, since)).into_response())
}

async fn reconnect(State(core): State<Arc<Core>>, Path(name): Path<String>) -> ApiResult {
    core.reconnect(&name)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn drop_connection(State(core): State<Arc<Core>>, Path(name): Path<String>) -> ApiResult {
    core.drop_connection(&name)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn stop_reading(State(core): State<Arc<Core>>, Path(name): Path<String>) -> ApiResult {
    core.stop_reading(&name).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn resume_reading(State(core): State<Arc<Core>>, Path(name): Path<String>) -> ApiResult {
    core.resume_reading(&name)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn violations(State(core): State<Arc<Core>>) -> Response {
    Json(core.violations()).into_response()
}
