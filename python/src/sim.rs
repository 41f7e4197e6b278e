//! The vantiq-sim emulator in the Python process, for `vantiq_connector_sdk.testing`.
//!
//! Calls that wait (publish, query, the waits, stop and restart) run as tasks on the
//! runtime and complete a future of the calling loop's bridge, so a connector under test
//! keeps running on that loop meanwhile. State reads are plain calls.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde::Serialize;
use serde_json::Value;
use vantiq_sim::{RawFrame, Sim, SimError};

use crate::bridge::{Bridge, Build};
use crate::convert::{to_py, to_value};
use crate::errors::exception;
use crate::runtime;

fn sim_error(e: SimError) -> Build {
    let name = match e {
        SimError::Timeout(_) => "EmulatorTimeout",
        _ => "EmulatorError",
    };
    let message = e.to_string();
    Box::new(move |py| {
        Ok(exception(py, name, message)
            .into_value(py)
            .into_bound(py)
            .into_any())
    })
}

fn value_build<T: Serialize + Send + 'static>(value: T) -> Build {
    Box::new(move |py| {
        let json = serde_json::to_value(&value).unwrap_or(Value::Null);
        to_py(py, &json)
    })
}

fn py_of<'py, T: Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value).unwrap_or(Value::Null);
    to_py(py, &json)
}

/// An emulator (`vantiq_connector_sdk._native.NativeSim`); see `testing.Emulator`.
#[pyclass(frozen, module = "vantiq_connector_sdk._native")]
pub(crate) struct NativeSim {
    sim: Mutex<Option<Sim>>,
}

impl NativeSim {
    fn sim(&self) -> PyResult<Sim> {
        self.sim
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the emulator is closed"))
    }

    /// Runs `work` on the runtime and completes `token` of `bridge` with its result.
    fn spawn<F, Fut, T>(&self, bridge: &Bridge, token: u64, work: F) -> PyResult<()>
    where
        F: FnOnce(Sim) -> Fut,
        Fut: std::future::Future<Output = Result<T, SimError>> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let fut = work(self.sim()?);
        let shared = bridge.shared.clone();
        runtime().spawn(async move {
            let result = fut.await;
            shared.complete(token, result.map(value_build).map_err(sim_error));
        });
        Ok(())
    }
}

fn timeout(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("{seconds} is not a timeout in seconds"))
    })
}

#[pymethods]
impl NativeSim {
    #[new]
    #[pyo3(signature = (tokens, users, sources, acks=true, listen=None, keep_notifications=None))]
    fn new(
        py: Python<'_>,
        tokens: Vec<String>,
        users: Vec<(String, String)>,
        sources: &Bound<'_, PyDict>,
        acks: bool,
        listen: Option<String>,
        keep_notifications: Option<usize>,
    ) -> PyResult<Self> {
        let mut builder = Sim::builder().acks(acks);
        for t in tokens {
            builder = builder.token(t);
        }
        for (u, p) in users {
            builder = builder.user(u, p);
        }
        for (name, config) in sources.iter() {
            builder = builder.source(name.extract::<String>()?, to_value(&config)?);
        }
        if let Some(addr) = listen {
            let addr: SocketAddr = addr.parse().map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("listen {addr:?}: {e}"))
            })?;
            builder = builder.listen(addr);
        }
        if let Some(n) = keep_notifications {
            builder = builder.keep_notifications(n);
        }
        let sim = py.detach(|| runtime().block_on(builder.start()))?;
        Ok(NativeSim {
            sim: Mutex::new(Some(sim)),
        })
    }

    fn http_url(&self) -> PyResult<String> {
        Ok(self.sim()?.http_url())
    }

    fn ws_url(&self) -> PyResult<String> {
        Ok(self.sim()?.ws_url())
    }

    fn add_source(&self, name: String, config: &Bound<'_, PyAny>) -> PyResult<()> {
        self.sim()?.add_source(name, to_value(config)?);
        Ok(())
    }

    fn remove_source(&self, name: &str) -> PyResult<()> {
        self.sim()?.remove_source(name);
        Ok(())
    }

    fn set_acks(&self, on: bool) -> PyResult<()> {
        self.sim()?.set_acks(on);
        Ok(())
    }

    fn notifications<'py>(
        &self,
        py: Python<'py>,
        source: &str,
        since: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        py_of(py, &self.sim()?.notifications(source, since))
    }

    fn source_status<'py>(&self, py: Python<'py>, source: &str) -> PyResult<Bound<'py, PyAny>> {
        py_of(py, &self.sim()?.source_status(source))
    }

    fn sources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_of(py, &self.sim()?.sources())
    }

    fn violations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_of(py, &self.sim()?.violations())
    }

    fn clear_violations(&self) -> PyResult<()> {
        self.sim()?.clear_violations();
        Ok(())
    }

    fn auth_failures(&self) -> PyResult<u64> {
        Ok(self.sim()?.auth_failures())
    }

    fn publish(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        object: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let object = to_value(object)?;
        self.spawn(bridge, token, |sim| async move {
            sim.publish(&source, object).await
        })
    }

    fn publish_many(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        objects: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let objects = objects.iter().map(to_value).collect::<PyResult<Vec<_>>>()?;
        self.spawn(bridge, token, |sim| async move {
            sim.publish_many(&source, objects).await
        })
    }

    fn query(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        params: &Bound<'_, PyAny>,
        seconds: f64,
    ) -> PyResult<()> {
        let params = to_value(params)?;
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.query(&source, params, t).await
        })
    }

    fn set_config(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        config: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let config = to_value(config)?;
        self.spawn(bridge, token, |sim| async move {
            sim.set_config(&source, config).await
        })
    }

    fn reconnect(&self, bridge: &Bridge, token: u64, source: String) -> PyResult<()> {
        self.spawn(
            bridge,
            token,
            |sim| async move { sim.reconnect(&source).await },
        )
    }

    fn drop_connection(&self, bridge: &Bridge, token: u64, source: String) -> PyResult<()> {
        self.spawn(bridge, token, |sim| async move {
            sim.drop_connection(&source).await
        })
    }

    fn stop_reading(&self, bridge: &Bridge, token: u64, source: String) -> PyResult<()> {
        self.spawn(bridge, token, |sim| async move {
            sim.stop_reading(&source).await
        })
    }

    fn resume_reading(&self, bridge: &Bridge, token: u64, source: String) -> PyResult<()> {
        self.spawn(bridge, token, |sim| async move {
            sim.resume_reading(&source).await
        })
    }

    fn go_silent(&self, bridge: &Bridge, token: u64, source: String) -> PyResult<()> {
        self.spawn(
            bridge,
            token,
            |sim| async move { sim.go_silent(&source).await },
        )
    }

    fn send_raw(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        frame: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let frame = match frame.cast::<PyBytes>() {
            Ok(bytes) => RawFrame::Binary(bytes.as_bytes().to_vec()),
            Err(_) => RawFrame::Text(frame.extract()?),
        };
        self.spawn(bridge, token, |sim| async move {
            sim.send_raw(&source, frame).await
        })
    }

    fn stop(&self, bridge: &Bridge, token: u64) -> PyResult<()> {
        self.spawn(bridge, token, |sim| async move {
            sim.stop().await;
            Ok(())
        })
    }

    fn restart(&self, bridge: &Bridge, token: u64) -> PyResult<()> {
        self.spawn(bridge, token, |sim| async move {
            sim.restart()
                .await
                .map_err(|e| SimError::NotConnected(format!("restart failed: {e}")))
        })
    }

    fn wait_connected(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        seconds: f64,
    ) -> PyResult<()> {
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.wait_connected(&source, t).await
        })
    }

    fn wait_connections(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        n: u64,
        seconds: f64,
    ) -> PyResult<()> {
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.wait_connections(&source, n, t).await
        })
    }

    fn wait_disconnected(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        seconds: f64,
    ) -> PyResult<()> {
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.wait_disconnected(&source, t).await
        })
    }

    fn wait_notifications(
        &self,
        bridge: &Bridge,
        token: u64,
        source: String,
        count: usize,
        seconds: f64,
    ) -> PyResult<()> {
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.wait_notifications(&source, count, t).await
        })
    }

    fn wait_violations(&self, bridge: &Bridge, token: u64, n: usize, seconds: f64) -> PyResult<()> {
        let t = timeout(seconds)?;
        self.spawn(bridge, token, |sim| async move {
            sim.wait_violations(n, t).await
        })
    }

    /// Stops the emulator for good (its port is released).
    fn close(&self) {
        let sim = self
            .sim
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(sim);
    }
}

/// Adds the emulator class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSim>()
}
