//! The benchmark driver behind `bash scripts/bench.sh` (the binary `vantiq-bench` only
//! parses options, runs the parts and writes the results).
//!
//! It drives, with the same workload, every column of [`columns::columns`]: the Rust SDK's
//! `echo` example, the echo of other builds given as baselines (`--baseline NAME=PATH`,
//! `BENCH_BASELINE`; see `scripts/bench-compare.sh`), the same echo on the official Python
//! SDK and on this SDK's Python package, the bare `floor` client (splicing and parsing),
//! and the driver's own ceiling. Every figure is the median of several rounds with the
//! spread.
//!
//! **What serves the connectors.** The single-source figures (publish echo, notifications,
//! query latency and rate) are driven by the load server [`crate::loadsrv`], one per
//! column, each on a thread of its own inside the driver: a lean server for one source on
//! vantiq-sim's wire format ([`vantiq_sim::frames`]) that checks every notification and
//! answer by the emulator's rules but spends about 0.1–0.2 µs a message, where the
//! emulator's sessions spend about 1 µs (two tasks per socket, a JSON tree per
//! notification: right for a test server, but then every connector met the emulator's
//! wall, issue 17). The other parts (many sources, restart, the stalled stream) need what
//! only the emulator offers (thousands of sources, `stop`/`restart`, `stop_reading`) and
//! run on `vantiq-sim` emulators in the driver's process.
//!
//! **The ceiling** (column `ceiling`) is what the driver and the machine sustain with a
//! client that does nothing but WebSocket framing: in the single-source figures the
//! trivial client `floor --trivial` ([`crate::trivial`]), its own process, answering
//! publishes and queries with frames made in advance; it gets [`workload::CEILING_SCALE`]
//! times the messages per round so that its rounds last as long as the others'. With many
//! sources it is the floor's code on a thread of the driver. A connector's figure within
//! [`crate::report::DRIVER_BOUND`] of the ceiling measures the driver, not the connector,
//! and is marked so; [`targets`] checks the ceiling's headroom over the floors.
//!
//! **Rounds are interleaved**: all columns of a figure are set up side by side (each with
//! its own emulator), and round `r` runs every column once before round `r + 1` starts,
//! in an order rotated each round. A burst of load from elsewhere on the machine then
//! hits every column alike, which is what makes before/after ratios of one run worth
//! more than figures of two runs.
//!
//! The modules, one job each:
//!
//! * [`opts`]: the command line and the paths of the programs;
//! * [`columns`]: the list of columns and how each is started ([`columns::Running`]);
//! * [`workload`]: workload sizes, the published object, warm-up and waits;
//! * [`figures`]: the figures a run declares (id, title, unit, chart panel);
//! * [`single`]: one source: throughput and latency;
//! * [`ceiling`]: what the machine and the emulator sustain without any connector (the
//!   kernel's round trip, the emulator driven one way);
//! * [`scale`]: many sources: connect time and memory;
//! * [`restart`]: reconnection after the server restarts;
//! * [`stalled`]: memory while a query streams to a server that stopped reading;
//! * [`targets`]: the targets checked against the figures.
//!
//! # Adding a column
//!
//! A column is a [`columns::Connector`]: a [`Column`] (name,
//! header, legend, description, whether the table shows `echo ÷ name`), a
//! [`columns::Launch`] (program, arguments and environment, started in a directory with
//! its `server.config`), whether it is slow (a tenth of the work), and which parts
//! measure it (`echo_build`: also the stalled stream; `single_only`: only the
//! single-source figures). Push it in [`columns::columns`] at the place it should appear
//! in the table; every part measures it, interleaved with the others, and the table,
//! chart and `latest.json` show it. For example, a Python echo on our own package is
//! `python` with another script, and the echo with metrics on (`echo_metrics`) is the
//! echo's program marked `metrics` (its endpoint enabled and scraped) and `single_only`,
//! its results moved into figures of their own by [`crate::metrics_on::split`].

pub mod ceiling;
pub mod columns;
pub mod figures;
pub mod opts;
pub mod restart;
pub mod scale;
pub mod single;
pub mod stalled;
pub mod targets;
pub mod workload;

use crate::report::{self, Column, Figure};
use crate::stats::Summary;
use columns::Connector;
use opts::Opts;

/// Prints a progress line on stderr.
pub fn log(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// The order of the columns in round `round`: rotated by one each round, so that no
/// column always runs first (just after a setup) or last.
pub fn rotation(round: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n.max(1))
}

/// A run of the benchmark: the options, the columns, and what has been measured.
pub struct Bench {
    /// The options.
    pub opts: Opts,
    /// The columns, in table order.
    pub connectors: Vec<Connector>,
    /// The figures declared, with their results.
    pub figures: Vec<Figure>,
    /// Notes not tied to a figure.
    pub notes: Vec<String>,
}

impl Bench {
    /// A run with the figures of `opts` declared and nothing measured.
    pub fn new(opts: Opts) -> Bench {
        Bench {
            connectors: columns::columns(&opts),
            figures: figures::declare(&opts.sizes),
            notes: Vec::new(),
            opts,
        }
    }

    /// The table's columns: every column's but those of [`Connector::metrics`], whose
    /// results [`crate::metrics_on::split`] moves into figures of their own.
    pub fn columns(&self) -> Vec<Column> {
        self.connectors
            .iter()
            .filter(|c| !c.metrics)
            .map(|c| c.column.clone())
            .collect()
    }

    /// The columns measured with many sources (connect time, memory, restart): all but
    /// those of [`Connector::single_only`].
    pub fn many_source_columns(&self) -> Vec<Connector> {
        let all = self.connectors.iter();
        all.filter(|c| !c.single_only).cloned().collect()
    }

    /// The figure `id` (it must be declared).
    pub fn figure(&mut self, id: &str) -> &mut Figure {
        let i = self
            .figures
            .iter()
            .position(|f| f.id == id)
            .unwrap_or_else(|| panic!("figure {id} not declared"));
        &mut self.figures[i]
    }

    /// The figure `id`, if declared.
    pub fn find(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }

    /// Records the rounds of figure `id` for column `who` (nothing when there are none).
    pub fn record(&mut self, id: &str, who: &str, samples: &[f64], workload: String) {
        if let Some(s) = Summary::of(samples) {
            log(&format!(
                "{id} {who}: median {} (min {}, max {}) [{workload}]",
                report::fmt_num(s.median),
                report::fmt_num(s.min),
                report::fmt_num(s.max)
            ));
            self.figure(id).results.push((who.into(), s, workload));
        }
    }

    /// Adds a note to figure `id`.
    pub fn note(&mut self, id: &str, text: String) {
        log(&format!("note on {id}: {text}"));
        self.figure(id).notes.push(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_takes_every_place() {
        let orders: Vec<Vec<usize>> = (0..3).map(|r| rotation(r, 3).collect()).collect();
        assert_eq!(orders, [[0, 1, 2], [1, 2, 0], [2, 0, 1]]);
        assert_eq!(rotation(5, 0).count(), 0);
    }
}
