//! `vantiq-bench`: the benchmark of the Rust connector SDK against the official Python SDK
//! and a bare WebSocket floor, all driven from one process: by a lean load server on
//! `vantiq-sim`'s wire format for one source, by `vantiq-sim` emulators for many.
//!
//! The library holds the driver (`src/main.rs` is its entry point) and what it shares with
//! the floor client (`src/bin/floor.rs`):
//!
//! * [`driver`]: the benchmark itself: options, columns, the parts and their figures
//!   (start there to add a figure or a column);
//! * [`config`]: writing the connectors' `server.config` (read with the SDK's loader);
//! * [`floor`]: the bare WebSocket client (handshake and JSON echo, no SDK logic), run as
//!   its own process by the `floor` binary and in the driver's process for the driver's
//!   ceiling with many sources;
//! * [`loadsrv`]: the lean load server of the single-source figures (one task per
//!   connection, vantiq-sim's wire format), and [`rawws`], the raw WebSocket frames it and
//!   [`trivial`] (the ceiling's client, `floor --trivial`) are written in;
//! * [`metrics_on`]: the figures of `echo` with its metrics endpoint on and scraped;
//! * [`pingpong`]: the kernel's floor for a round trip (blocking TCP between two processes);
//! * [`stats`]: medians, spreads and percentiles;
//! * [`report`]: the printed table and `latest.json`; [`chart`]: the hand-written SVG chart;
//! * [`sys`]: resident memory of a process, the machine's description.

pub mod chart;
pub mod config;
pub mod driver;
pub mod floor;
pub mod loadsrv;
pub mod metrics_on;
pub mod pingpong;
pub mod rawws;
pub mod report;
pub mod stats;
pub mod sys;
pub mod trivial;

/// Locks a mutex, taking the data of a poisoned one (a panicked holder changes nothing
/// the bench relies on).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
