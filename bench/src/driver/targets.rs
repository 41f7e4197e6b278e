//! The targets of the issues, checked against one run's figures of the current echo.

use super::Bench;
use crate::report::{self, Target};
use crate::stats::Summary;

/// A time figure as its median and its slowest round, in milliseconds.
fn ms_with_max(s: &Summary) -> String {
    format!(
        "{} ms (max {} ms)",
        report::fmt_num(s.median),
        report::fmt_num(s.max)
    )
}

impl Bench {
    /// The targets of the issues, checked against the echo's figures.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for (id, name) in [
            ("publish_echo", "publish echo"),
            (
                "publish_echo_windowed",
                "publish echo (≤ 4,000 outstanding)",
            ),
            ("notify", "notifications"),
            ("query_tput", "queries (64 in flight)"),
        ] {
            let f = self.find(id);
            let py = f.and_then(|f| f.ratio("python"));
            out.push(Target {
                requirement: format!("{name} throughput ≥ 20× the Python SDK"),
                measured: py.map_or("not measured".into(), |r| format!("{r:.1}×")),
                met: py.map(|r| r >= 20.0),
            });
            // Issue 13: the Python echo on this SDK's package, against the official one.
            if id != "publish_echo_windowed" {
                let ours =
                    f.and_then(|f| Some(f.get("python_rust")?.median / f.get("python")?.median));
                out.push(Target {
                    requirement: format!(
                        "{name}: the Python echo on this SDK ≥ 4× the official Python SDK"
                    ),
                    measured: ours.map_or("not measured".into(), |r| format!("{r:.1}×")),
                    met: ours.map(|r| r >= 4.0),
                });
            }
            // Issue 17: publishes against the parsing floor (an SDK that gives handlers a
            // tree must parse), notifications and queries against the splicing one.
            let (floor, floor_name) = if id.starts_with("publish") {
                ("floor_parse", "the parsing floor")
            } else {
                ("floor", "the floor")
            };
            let fl = f.and_then(|f| f.ratio(floor));
            let bound = f.is_some_and(|f| f.driver_bound("echo") || f.driver_bound(floor));
            out.push(Target {
                requirement: format!("{name} throughput within 1.5× of {floor_name}"),
                measured: fl.map_or("not measured".into(), |r| {
                    let note = if bound {
                        " (driver-bound: not a result)"
                    } else {
                        ""
                    };
                    format!("{floor_name} is {:.2}× echo{note}", 1.0 / r)
                }),
                met: fl.filter(|_| !bound).map(|r| 1.0 / r <= 1.5),
            });
        }
        // Issue 17: the raw path against the splicing floor.
        for (id, name) in [
            ("publish_echo", "publish echo"),
            ("notify", "notifications"),
        ] {
            let f = self.find(id);
            let r = f.and_then(|f| Some(f.get("echo_raw")?.median / f.get("floor")?.median));
            out.push(Target {
                requirement: format!("{name} on the raw path ≥ 0.8× the floor"),
                measured: r.map_or("not measured".into(), |r| format!("{r:.2}×")),
                met: r.map(|r| r >= 0.8),
            });
        }
        let p99 = self.find("latency_p99");
        let r = p99.and_then(|f| f.ratio("python"));
        let python_p99 = p99.and_then(|f| f.get("python")).map(|s| s.median);
        let kernel_p99 = self
            .find("kernel_rtt_p99")
            .and_then(|f| f.get("ceiling"))
            .map(|s| s.median);
        let kernel = match (kernel_p99, python_p99) {
            (Some(k), Some(p)) => format!(
                "; the kernel's own round trip: {} µs, {:.3}× Python's",
                report::fmt_num(k),
                k / p
            ),
            _ => String::new(),
        };
        out.push(Target {
            requirement: "query latency p99 ≤ 1/10 of the Python SDK's".into(),
            measured: match (p99.and_then(|f| f.get("echo")), python_p99, r) {
                (Some(e), Some(p), Some(r)) => format!(
                    "{} µs vs {} µs ({:.3}×){kernel}",
                    report::fmt_num(e.median),
                    report::fmt_num(p),
                    r
                ),
                _ => "not measured".into(),
            },
            met: r.map(|r| r <= 0.1),
        });
        out.extend(self.ceiling_targets());
        let c = self.find("connect_10000").and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "10,000 sources connected within 5 s".into(),
            measured: c.map_or("not measured".into(), ms_with_max),
            met: c.map(|s| s.median <= 5000.0),
        });
        let m = self
            .find("rss_per_source_10000")
            .and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "≤ 20 KiB resident memory per additional idle source (10,000 sources)"
                .into(),
            measured: m.map_or("not measured".into(), |s| format!("{:.1} KiB", s.median)),
            met: m.map(|s| s.median <= 20.0),
        });
        let r = self.find("restart").and_then(|f| f.get("echo"));
        out.push(Target {
            requirement: "1,000 sources back within 500 ms of the server accepting again".into(),
            measured: r.map_or("not measured".into(), ms_with_max),
            met: r.map(|s| s.median <= 500.0),
        });
        let m = self.find("stalled_stream_rss").and_then(|f| f.get("echo"));
        out.push(Target {
            requirement:
                "≤ 12 MiB peak memory growth streaming 2,000,000 rows to a server not reading"
                    .into(),
            measured: m.map_or("not measured".into(), |s| {
                format!(
                    "{} MiB (max {} MiB)",
                    report::fmt_num(s.median),
                    report::fmt_num(s.max)
                )
            }),
            met: m.map(|s| s.max <= 12.0),
        });
        out
    }

    /// Issue 17: the driver's ceiling at least 1.5× the floor in every single-source
    /// figure (faster for rates, lower for latencies), or the figures measure the driver.
    fn ceiling_targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for id in [
            "publish_echo",
            "publish_echo_windowed",
            "notify",
            "query_tput",
            "latency_p50",
            "latency_p99",
        ] {
            let Some(f) = self.find(id) else { continue };
            let ceiling = f.get("ceiling").map(|s| s.median);
            let floor = ["floor", "floor_parse"]
                .iter()
                .filter_map(|w| f.get(w).map(|s| s.median))
                .reduce(|a, b| {
                    if f.higher_is_better {
                        a.max(b)
                    } else {
                        a.min(b)
                    }
                });
            let headroom = match (ceiling, floor) {
                (Some(c), Some(fl)) if f.higher_is_better && fl > 0.0 => Some(c / fl),
                (Some(c), Some(fl)) if c > 0.0 => Some(fl / c),
                _ => None,
            };
            out.push(Target {
                requirement: format!("{}: driver ceiling ≥ 1.5× the floor", f.title),
                measured: headroom.map_or("not measured".into(), |h| format!("{h:.2}×")),
                met: headroom.map(|h| h >= 1.5),
            });
        }
        out
    }
}
