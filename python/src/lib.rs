//! `vantiq_connector_sdk._native`: the Rust core of the Python package
//! `vantiq_connector_sdk` (the official `vantiqconnectorsdk` API, in
//! `python/vantiq_connector_sdk/`).
//!
//! - `core`: the connector set, handlers, queries and health on the Rust SDK, and
//!   `translate`: its settings and errors; the only two files that use the SDK's API.
//! - `errors`: Python exceptions and results for completions.
//! - `bridge`: how Rust tasks hand work to the asyncio loop without taking the GIL.
//! - `convert`: JSON to and from Python objects.
//! - `logs`: the core's `tracing` events into Python's `logging`.
//! - `sim`: the vantiq-sim emulator, for `vantiq_connector_sdk.testing`.

use std::sync::OnceLock;

use pyo3::prelude::*;

mod bridge;
mod convert;
mod core;
mod errors;
mod logs;
mod sim;
mod translate;

/// The tokio runtime every connector set and emulator of the process runs on. It lives
/// as long as the process: it is never shut down under a finalising interpreter, and
/// none of its tasks touches the interpreter (see `bridge`). One worker thread by
/// default (`VANTIQ_CONNECTOR_THREADS` changes it): the asyncio thread is the busy one,
/// and one Rust thread beside it measured faster than two (fewer cross-thread wake-ups,
/// as for the Rust echo on its one-threaded runtime).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("VANTIQ_CONNECTOR_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("vantiq-connector")
            .enable_all()
            .build()
            .expect("the tokio runtime of vantiq_connector_sdk")
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logs::install();
    // The package's version: the workspace's, the same as the crates'.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<bridge::Bridge>()?;
    m.add_function(wrap_pyfunction!(logs::set_log_level, m)?)?;
    core::register(m)?;
    sim::register(m)?;
    Ok(())
}
