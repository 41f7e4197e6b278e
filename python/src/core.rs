//! The binding's use of the Rust SDK's API (with `translate.rs`, the only place).
//!
//! [`NativeSet`] is a connector set seen from Python: the server configuration is loaded
//! when the Python `VantiqConnectorSet` is made (so configuration errors are raised
//! there, as by the official SDK), and the Rust `ConnectorSet` is made when the
//! connectors first run, when every Python handler is known. Each source's Rust handler
//! ([`ToPython`]) only queues the event on the loop's bridge; the Python dispatcher calls
//! the Python handlers. Queries travel as [`QueryHandle`]s, through which Python answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use futures_util::FutureExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use vantiq_connector_sdk::config::{properties, ServerConfig};
use vantiq_connector_sdk::health::HealthProbe;
use vantiq_connector_sdk::{
    ConnectorSet, Context, Handler, HandlerResult, NotifyError, OverflowPolicy, Query, QueryError,
    Settings, SourceConnection,
};

use crate::bridge::{Bridge, Shared};
use crate::convert::{to_py, to_value, PyJson};
use crate::errors::{exception, none_build};
use crate::runtime;
use crate::translate::{
    answer_error, answer_error_build, notify_error, notify_error_build, run_error, settings_from,
};

/// The Rust handler of one source: queues each event for the Python dispatcher.
struct ToPython {
    bridge: Arc<Shared>,
    set: u64,
    source: u32,
    open: OpenQueries,
}

/// The open queries of one source, weakly, by reply address: how an answer given with a
/// plain `dict` copy of a query's context finds its query (the context objects hold the
/// handles themselves). An entry goes when the last handle on its query does.
#[derive(Clone, Default)]
struct OpenQueries(Arc<Mutex<HashMap<Box<str>, Weak<Query>>>>);

impl OpenQueries {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Weak<Query>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A handle on `query`, noted as open.
    fn handle(&self, query: Query) -> QueryHandle {
        let query = Arc::new(query);
        self.lock()
            .insert(query.reply_address().into(), Arc::downgrade(&query));
        QueryHandle {
            query,
            open: self.clone(),
        }
    }

    /// Another handle on the open query of `reply`, if there is one.
    fn find(&self, reply: &str) -> Option<QueryHandle> {
        let query = self.lock().get(reply)?.upgrade()?;
        Some(QueryHandle {
            query,
            open: self.clone(),
        })
    }
}

impl ToPython {
    async fn send(&self, kind: &'static str, value: Option<Value>) {
        let (set, source) = (self.set, self.source);
        self.bridge
            .push_event(Box::new(move |py| {
                let value = match &value {
                    Some(v) => to_py(py, v)?,
                    None => py.None().into_bound(py),
                };
                Ok((kind, set, source, value).into_pyobject(py)?.into_any())
            }))
            .await;
    }
}

impl Handler for ToPython {
    async fn on_connect(&self, _ctx: Context, config: Value) -> HandlerResult {
        self.send("c", Some(config)).await;
        Ok(())
    }

    async fn on_publish(&self, _ctx: Context, message: Value) -> HandlerResult {
        self.send("p", Some(message)).await;
        Ok(())
    }

    async fn on_query(&self, query: Query) -> HandlerResult {
        let (set, source, open) = (self.set, self.source, self.open.clone());
        self.bridge
            .push_event(Box::new(move |py| {
                let params = to_py(py, query.params())?;
                let reply = query.reply_address().to_owned();
                let handle = Py::new(py, open.handle(query))?;
                Ok(("q", set, source, handle, reply, params)
                    .into_pyobject(py)?
                    .into_any())
            }))
            .await;
        Ok(())
    }

    async fn on_close(&self, _ctx: Context) -> HandlerResult {
        self.send("x", None).await;
        Ok(())
    }
}

/// One query, held by the Python context objects of the query (and the dispatcher while
/// its handler runs); answers go through it. When Python lets go of the last of them
/// without a final answer, the core answers with an error.
#[pyclass(frozen, module = "vantiq_connector_sdk._native")]
pub(crate) struct QueryHandle {
    query: Arc<Query>,
    open: OpenQueries,
}

impl Drop for QueryHandle {
    fn drop(&mut self) {
        // The last handle on the query: it is no longer open for plain-dict answers.
        if Arc::strong_count(&self.query) == 1 {
            let mut open = self.open.lock();
            let reply = self.query.reply_address();
            if open
                .get(reply)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.query)))
            {
                open.remove(reply);
            }
        }
    }
}

/// An answer that had to wait for room in the answer budget: sent from a task, which
/// completes `token` on `bridge` when it is written (or refused).
fn answer_later<F>(bridge: &Bridge, token: u64, send: F)
where
    F: std::future::Future<Output = Result<(), vantiq_connector_sdk::QueryAnswerError>>
        + Send
        + 'static,
{
    let shared = bridge.shared.clone();
    runtime().spawn(async move {
        let result = send.await;
        shared.complete(
            token,
            result
                .map(|()| none_build())
                .map_err(|e| answer_error_build(e)),
        );
    });
}

#[pymethods]
impl QueryHandle {
    /// Queues an answer with status `code` (100, 200 with a body; 204 without) if the
    /// answer budget has room now: `True`. The body is serialised straight from the
    /// Python objects. The connection task is not woken: the caller calls `wake_writer`
    /// of the set once for its batch of answers. `False` when it would have to wait:
    /// nothing was queued (then use `respond_later`).
    #[pyo3(signature = (code, body=None))]
    fn respond(
        &self,
        py: Python<'_>,
        code: u16,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let body = body.filter(|b| !b.is_none()).map(PyJson::new);
        let (conn, ctx) = (self.query.connection(), self.query.context());
        conn.queue_query_response(ctx, code, body.as_ref())
            .map_err(|e| answer_error(py, e))
    }

    /// Sends an answer, waiting for room; completes `token` when it is written.
    #[pyo3(signature = (bridge, token, code, body=None))]
    fn respond_later(
        &self,
        bridge: &Bridge,
        token: u64,
        code: u16,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let body = body.filter(|b| !b.is_none()).map(to_value).transpose()?;
        let (conn, ctx) = (
            self.query.connection().clone(),
            self.query.context().clone(),
        );
        answer_later(bridge, token, async move {
            conn.send_query_response(&ctx, code, body.as_ref()).await
        });
        Ok(())
    }

    /// Sends an error answer (code, template and parameters) if there is room now:
    /// `True`; `False` when it would have to wait (then use `error_later`).
    fn error(
        &self,
        py: Python<'_>,
        code: String,
        template: String,
        parameters: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let error = query_error(code, template, parameters)?;
        let (conn, ctx) = (self.query.connection(), self.query.context());
        match conn.send_query_error(ctx, error).now_or_never() {
            Some(result) => result.map(|()| true).map_err(|e| answer_error(py, e)),
            None => Ok(false),
        }
    }

    /// Sends an error answer, waiting for room; completes `token` when it is written.
    fn error_later(
        &self,
        bridge: &Bridge,
        token: u64,
        code: String,
        template: String,
        parameters: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let error = query_error(code, template, parameters)?;
        let (conn, ctx) = (
            self.query.connection().clone(),
            self.query.context().clone(),
        );
        answer_later(bridge, token, async move {
            conn.send_query_error(&ctx, error).await
        });
        Ok(())
    }

    /// Whether the query has had its final answer.
    fn finished(&self) -> bool {
        self.query.context().is_finished()
    }
}

fn query_error(
    code: String,
    template: String,
    parameters: &Bound<'_, PyAny>,
) -> PyResult<QueryError> {
    let parameters = match to_value(parameters)? {
        Value::Array(items) => items,
        other => vec![other],
    };
    Ok(QueryError::new(code, template, parameters))
}

/// A connector set seen from Python (`vantiq_connector_sdk._native.NativeSet`).
#[pyclass(frozen, module = "vantiq_connector_sdk._native")]
pub(crate) struct NativeSet {
    config: ServerConfig,
    settings: Settings,
    probe: HealthProbe,
    set: OnceLock<ConnectorSet>,
    /// Each source's open queries, in the order of `sources`.
    open: Vec<OpenQueries>,
}

impl NativeSet {
    fn started(&self, py: Python<'_>) -> PyResult<&ConnectorSet> {
        self.set.get().ok_or_else(|| {
            exception(
                py,
                "VantiqConnectorException",
                "the connectors are not running yet".into(),
            )
        })
    }

    fn connection(&self, py: Python<'_>, index: usize) -> PyResult<&SourceConnection> {
        self.started(py)?
            .iter()
            .nth(index)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("no such source"))
    }
}

#[pymethods]
impl NativeSet {
    /// Loads server.config (from `directory`, or the working directory as the official
    /// SDK does) and keeps the settings.
    #[new]
    #[pyo3(signature = (directory=None, settings=None))]
    fn new(
        py: Python<'_>,
        directory: Option<PathBuf>,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let loaded = match &directory {
            Some(dir) => ServerConfig::load_from_dir(dir),
            None => ServerConfig::load(),
        };
        let config =
            loaded.map_err(|e| exception(py, "VantiqConnectorConfigException", e.to_string()))?;
        let settings = settings_from(settings)?;
        let probe = HealthProbe::new(config.tcp_probe_addr());
        // One map per source (`vec![..; n]` would clone one Arc n times).
        let open = (0..config.sources().len())
            .map(|_| OpenQueries::default())
            .collect();
        Ok(NativeSet {
            config,
            settings,
            probe,
            set: OnceLock::new(),
            open,
        })
    }

    /// The source names, in the order of `sources`.
    fn sources(&self) -> Vec<String> {
        self.config.sources().to_vec()
    }

    /// The properties of server.config as the official SDK's dict: every key as written
    /// (values as text), `targetServer` as its WebSocket URL, `authToken` from the
    /// environment when the file has none.
    fn properties<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        if let Some(path) = self.config.origin() {
            let text = std::fs::read_to_string(path)?;
            let map = properties::parse_map(&text)
                .map_err(|e| exception(py, "VantiqConnectorConfigException", e.to_string()))?;
            for (k, v) in map {
                dict.set_item(k, v)?;
            }
        }
        if dict.get_item("authToken")?.is_none() {
            dict.set_item(
                "authToken",
                std::env::var(ServerConfig::AUTH_TOKEN_ENV).ok(),
            )?;
        }
        dict.set_item("targetServer", self.config.websocket_url())?;
        Ok(dict)
    }

    /// Makes the Rust connector set, every source's events going to `bridge` under
    /// `set_id`. Does nothing when already made.
    fn start(&self, py: Python<'_>, bridge: &Bridge, set_id: u64) -> PyResult<()> {
        if self.set.get().is_some() {
            return Ok(());
        }
        let _entered = runtime().enter();
        let mut builder = ConnectorSet::builder(self.config.clone())
            .settings(self.settings.clone())
            .health_probe(self.probe.clone());
        for (i, name) in self.config.sources().iter().enumerate() {
            builder = builder.source_handler(
                name.clone(),
                ToPython {
                    bridge: bridge.shared.clone(),
                    set: set_id,
                    source: i as u32,
                    open: self.open[i].clone(),
                },
            );
        }
        let set = builder
            .build()
            .map_err(|e| exception(py, "VantiqConnectorConfigException", e.to_string()))?;
        let _ = self.set.set(set);
        Ok(())
    }

    /// Runs every connection (or the one of `source`); completes `token` when it ends.
    #[pyo3(signature = (bridge, token, source=None))]
    fn run(
        &self,
        py: Python<'_>,
        bridge: &Bridge,
        token: u64,
        source: Option<usize>,
    ) -> PyResult<()> {
        let set = self.started(py)?.clone();
        let shared = bridge.shared.clone();
        runtime().spawn(async move {
            let name = source.and_then(|i| set.sources().nth(i).map(str::to_owned));
            let result = match name {
                Some(name) => set.run_source(&name).await,
                None => set.run().await,
            };
            shared.complete(
                token,
                match result {
                    Ok(()) => Ok(none_build()),
                    Err(e) => Err(run_error(&e)),
                },
            );
        });
        Ok(())
    }

    /// Closes every connection (or the one of `source`); completes `token` when done.
    #[pyo3(signature = (bridge, token, source=None))]
    fn close(&self, bridge: &Bridge, token: u64, source: Option<usize>) {
        let shared = bridge.shared.clone();
        let Some(set) = self.set.get().cloned() else {
            shared.complete(token, Ok(none_build()));
            return;
        };
        runtime().spawn(async move {
            match source.and_then(|i| set.iter().nth(i)) {
                Some(conn) => conn.close().await,
                None => set.close().await,
            }
            shared.complete(token, Ok(none_build()));
        });
    }

    /// Sends a notification if there is room, without waiting: `False` when the buffer
    /// is full (then use `notify`).
    fn try_notify(
        &self,
        py: Python<'_>,
        index: usize,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let conn = self.connection(py, index)?;
        match conn.try_send_notification(&PyJson::new(message)) {
            Ok(()) => Ok(true),
            Err(NotifyError::BufferFull) if self.settings.overflow() != OverflowPolicy::Fail => {
                Ok(false)
            }
            Err(e) => Err(notify_error(py, e)),
        }
    }

    /// Sends a notification, waiting for room; completes `token` when queued.
    fn notify(
        &self,
        py: Python<'_>,
        bridge: &Bridge,
        token: u64,
        index: usize,
        message: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let conn = self.connection(py, index)?.clone();
        let value = to_value(message)?;
        let shared = bridge.shared.clone();
        runtime().spawn(async move {
            let result = conn.send_notification(&value).await;
            shared.complete(
                token,
                result.map(|()| none_build()).map_err(notify_error_build),
            );
        });
        Ok(())
    }

    /// Completes `token` once every notification accepted so far is settled.
    fn flush(&self, py: Python<'_>, bridge: &Bridge, token: u64, index: usize) -> PyResult<()> {
        let conn = self.connection(py, index)?.clone();
        let shared = bridge.shared.clone();
        runtime().spawn(async move {
            conn.flush().await;
            shared.complete(token, Ok(none_build()));
        });
        Ok(())
    }

    /// The counters of source `index`, as a dict (empty before the connectors run).
    fn stats<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        let Some(conn) = self.set.get().and_then(|s| s.iter().nth(index)) else {
            return Ok(dict);
        };
        let s = conn.stats();
        for (k, v) in [
            ("sent", s.sent),
            ("acknowledged", s.acknowledged),
            ("rejected", s.rejected),
            ("resent", s.resent),
            ("dropped", s.dropped),
            ("buffered", s.buffered),
            ("connections", s.connections),
            ("reconnections", s.reconnections),
            ("queries_answered", s.queries_answered),
            ("queries_failed", s.queries_failed),
            ("malformed", s.malformed),
        ] {
            dict.set_item(k, v)?;
        }
        Ok(dict)
    }

    /// Another handle on source `index`'s open query whose reply address is `reply`
    /// (for answers given with a plain dict copy of its context), or `None`.
    fn find_query(&self, index: usize, reply: &str) -> Option<QueryHandle> {
        self.open.get(index)?.find(reply)
    }

    /// Wakes the connection task of source `index` to write the answers queued by
    /// `QueryHandle.respond`.
    fn wake_writer(&self, index: usize) {
        if let Some(conn) = self.set.get().and_then(|s| s.iter().nth(index)) {
            conn.wake_writer();
        }
    }

    /// Whether source `index` is connected and configured now.
    fn is_connected(&self, index: usize) -> bool {
        self.set
            .get()
            .and_then(|s| s.iter().nth(index))
            .is_some_and(SourceConnection::is_connected)
    }

    /// Starts the TCP health probe (at `tcpProbePort`).
    fn declare_healthy(&self) -> PyResult<()> {
        let _entered = runtime().enter();
        Ok(self.probe.declare_healthy()?)
    }

    /// Stops the TCP health probe.
    fn declare_unhealthy(&self) {
        self.probe.declare_unhealthy();
    }

    /// `True`/`False` as last declared, `None` before.
    fn is_healthy(&self) -> Option<bool> {
        self.probe.is_healthy()
    }

    /// The port the probe listens on now, if it does.
    fn probe_port(&self) -> Option<u16> {
        self.probe.local_addr().map(|a| a.port())
    }
}

/// `targetServer` as the WebSocket URL the connector dials (the official
/// `sanitize_url`).
#[pyfunction]
pub(crate) fn sanitize_url(py: Python<'_>, url: &str) -> PyResult<String> {
    vantiq_connector_sdk::config::websocket_url(url)
        .map_err(|e| exception(py, "VantiqConnectorConfigException", e.to_string()))
}

/// Names of the `_native` classes and functions of this file, for the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSet>()?;
    m.add_class::<QueryHandle>()?;
    m.add_function(wrap_pyfunction!(sanitize_url, m)?)?;
    Ok(())
}
