//! The echo connector's behaviour (`shared/conformance/echo-contract.md`),
//! shared by the `echo` and `quickstart` examples.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query, QueryError, RawObject};

/// The echo connector: keeps each source's configuration, echoes publishes,
/// and answers the queries of the contract.
#[derive(Default, Clone)]
pub struct Echo {
    /// The configuration document of each source, as last given.
    configs: Arc<Mutex<HashMap<String, Value>>>,
    /// The raw path (issue 17): publishes echoed as their text, the notify
    /// query's notifications sent from pre-serialised text.
    raw: bool,
}

impl Echo {
    /// The same behaviour on the raw path: no JSON tree is built for a
    /// publish or a `notify` notification (the frames on the wire are the
    /// same).
    #[allow(dead_code)] // the quickstart example shares this file
    pub fn raw() -> Self {
        Echo {
            raw: true,
            ..Echo::default()
        }
    }

    /// The configuration document `source` was last given.
    pub fn config(&self, source: &str) -> Value {
        self.configs
            .lock()
            .unwrap()
            .get(source)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn bad_parameter(name: &str, reason: &str) -> QueryError {
    QueryError::new(
        "echo.badParameter",
        "Bad parameter {0}: {1}",
        [name, reason],
    )
}

/// A non-negative integer parameter.
fn count(params: &Value, name: &str) -> Result<u64, QueryError> {
    params
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad_parameter(name, "must be a non-negative integer"))
}

impl Handler for Echo {
    async fn on_connect(&self, ctx: Context, config: Value) -> HandlerResult {
        tracing::info!(source = ctx.source(), %config, "configuration received");
        self.configs
            .lock()
            .unwrap()
            .insert(ctx.source().to_owned(), config);
        Ok(())
    }

    async fn on_publish(&self, ctx: Context, message: Value) -> HandlerResult {
        ctx.connection().send_notification(&message).await?;
        Ok(())
    }

    fn raw_publishes(&self) -> bool {
        self.raw
    }

    async fn on_publish_raw(&self, ctx: Context, message: RawObject) -> HandlerResult {
        ctx.connection().send_raw_notification(&message).await?;
        Ok(())
    }

    async fn on_query(&self, mut query: Query) -> HandlerResult {
        // Read what is asked first (the parameters stay borrowed only that long),
        // then answer.
        let request = match Request::parse(query.params()) {
            Ok(request) => request,
            Err(e) => return Ok(query.error(e).await?),
        };
        match request {
            Request::Config => {
                let config = self.config(query.source());
                query.complete(&config).await?;
            }
            Request::Rows { n: 0, .. } => query.empty().await?,
            Request::Rows { n, chunk } => {
                #[derive(serde::Serialize)]
                struct Row {
                    i: u64,
                }
                // One chunk at a time: a large result is never all in memory,
                // and the answer budget paces it to the server.
                let mut start = 0;
                loop {
                    let end = n.min(start + chunk);
                    let part: Vec<Row> = (start..end).map(|i| Row { i }).collect();
                    if end < n {
                        query.partial(&part).await?;
                        start = end;
                    } else {
                        query.complete(&part).await?;
                        break;
                    }
                }
            }
            Request::Fail { reason } => {
                query
                    .error(QueryError::new(
                        "echo.failed",
                        "Failure requested: {0}",
                        [reason],
                    ))
                    .await?;
            }
            Request::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                query.complete(&json!({ "slept": ms })).await?;
            }
            Request::Notify { n } => {
                // A struct, not `json!`: serialised as it is, with no tree
                // built and dropped for every notification.
                #[derive(serde::Serialize)]
                struct Seq {
                    seq: u64,
                }
                for seq in 0..n {
                    if self.raw {
                        // Text made elsewhere, as a forwarding connector gets
                        // it; checked once by `RawObject::from_string`.
                        let mut text = String::with_capacity(32);
                        text.push_str(r#"{"seq":"#);
                        text.push_str(itoa::Buffer::new().format(seq));
                        text.push('}');
                        let text = RawObject::from_string(text)?;
                        query.connection().send_raw_notification(&text).await?;
                    } else {
                        query.connection().send_notification(&Seq { seq }).await?;
                    }
                }
                query.complete(&json!({ "sent": n })).await?;
            }
            Request::Stream { n, every } => {
                let connection = query.connection().clone();
                query.complete(&json!({ "streaming": n })).await?;
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(every.max(1)));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    for i in 0..n {
                        if every > 0 {
                            tick.tick().await;
                        }
                        if let Err(e) = connection.send_notification(&json!({ "stream": i })).await
                        {
                            tracing::error!(error = %e, "stream notification not sent");
                            return;
                        }
                    }
                });
            }
            Request::Panic => panic!("panic requested by the query"),
            Request::Drop => drop(query),
            Request::Unknown(op) => {
                query
                    .error(QueryError::new("echo.unknownOp", "Unknown op {0}", [op]))
                    .await?;
            }
        }
        Ok(())
    }
}

/// What a query asks for (its `op` and that op's parameters).
enum Request {
    Config,
    Rows { n: u64, chunk: u64 },
    Fail { reason: Value },
    Sleep { ms: u64 },
    Notify { n: u64 },
    Stream { n: u64, every: u64 },
    Panic,
    Drop,
    Unknown(Value),
}

impl Request {
    /// Reads the request from the query parameters; a bad parameter is the
    /// query's error answer.
    fn parse(params: &Value) -> Result<Request, QueryError> {
        let op = params.get("op").unwrap_or(&Value::Null);
        Ok(match op.as_str() {
            Some("config") => Request::Config,
            Some("rows") => {
                let n = count(params, "count")?;
                let chunk = match params.get("chunk") {
                    None | Some(Value::Null) => n.max(1),
                    Some(_) => match count(params, "chunk")? {
                        0 => return Err(bad_parameter("chunk", "must be at least 1")),
                        k => k,
                    },
                };
                Request::Rows { n, chunk }
            }
            Some("fail") => Request::Fail {
                reason: params.get("reason").cloned().unwrap_or(Value::Null),
            },
            Some("sleep") => Request::Sleep {
                ms: count(params, "ms")?,
            },
            Some("notify") => Request::Notify {
                n: count(params, "count")?,
            },
            Some("stream") => Request::Stream {
                n: count(params, "count")?,
                every: count(params, "every_ms")?,
            },
            Some("panic") => Request::Panic,
            Some("drop") => Request::Drop,
            _ => Request::Unknown(op.clone()),
        })
    }
}
