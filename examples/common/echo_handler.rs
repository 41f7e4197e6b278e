//! The echo connector's behaviour (`shared/conformance/echo-contract.md`),
//! shared by the `echo` and `quickstart` examples.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use vantiq_connector_sdk::{Context, Handler, HandlerResult, Query, QueryError};

/// The echo connector: keeps each source's configuration, echoes publishes,
/// and answers the queries of the contract.
#[derive(Default, Clone)]
pub struct Echo {
    /// The configuration document of each source, as last given.
    configs: Arc<Mutex<HashMap<String, Value>>>,
}

impl Echo {
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

    async fn on_query(&self, mut query: Query) -> HandlerResult {
        let params = query.params().clone();
        let op = params.get("op").cloned().unwrap_or(Value::Null);
        match op.as_str() {
            Some("config") => {
                let config = self.config(query.source());
                query.complete(&config).await?;
            }
            Some("rows") => {
                let n = match count(&params, "count") {
                    Ok(n) => n,
                    Err(e) => return Ok(query.error(e).await?),
                };
                let chunk = match params.get("chunk") {
                    None | Some(Value::Null) => n.max(1),
                    Some(_) => match count(&params, "chunk") {
                        Ok(0) => {
                            return Ok(query
                                .error(bad_parameter("chunk", "must be at least 1"))
                                .await?)
                        }
                        Ok(k) => k,
                        Err(e) => return Ok(query.error(e).await?),
                    },
                };
                if n == 0 {
                    query.empty().await?;
                    return Ok(());
                }
                #[derive(serde::Serialize)]
                struct Row {
                    i: u64,
                }
                let rows: Vec<Row> = (0..n).map(|i| Row { i }).collect();
                let mut chunks = rows.chunks(chunk as usize).peekable();
                while let Some(part) = chunks.next() {
                    if chunks.peek().is_some() {
                        query.partial(part).await?;
                    } else {
                        query.complete(part).await?;
                        break;
                    }
                }
            }
            Some("fail") => {
                let reason = params.get("reason").cloned().unwrap_or(Value::Null);
                query
                    .error(QueryError::new(
                        "echo.failed",
                        "Failure requested: {0}",
                        [reason],
                    ))
                    .await?;
            }
            Some("sleep") => {
                let ms = match count(&params, "ms") {
                    Ok(ms) => ms,
                    Err(e) => return Ok(query.error(e).await?),
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                query.complete(&json!({ "slept": ms })).await?;
            }
            Some("notify") => {
                let n = match count(&params, "count") {
                    Ok(n) => n,
                    Err(e) => return Ok(query.error(e).await?),
                };
                for seq in 0..n {
                    query
                        .connection()
                        .send_notification(&json!({ "seq": seq }))
                        .await?;
                }
                query.complete(&json!({ "sent": n })).await?;
            }
            Some("stream") => {
                let (n, every) = match (count(&params, "count"), count(&params, "every_ms")) {
                    (Ok(n), Ok(d)) => (n, d),
                    (Err(e), _) | (_, Err(e)) => return Ok(query.error(e).await?),
                };
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
            Some("panic") => panic!("panic requested by the query"),
            Some("drop") => drop(query),
            _ => {
                query
                    .error(QueryError::new("echo.unknownOp", "Unknown op {0}", [op]))
                    .await?;
            }
        }
        Ok(())
    }
}
