//! The figures a run declares: id, title, unit, direction and chart panel. A figure with
//! no result and no note is left out of the output.

use crate::report::{Figure, Panel};

/// Every figure of a run whose `connect` part uses `sizes` sources.
pub fn declare(sizes: &[usize]) -> Vec<Figure> {
    let f = |id: &str, title: &str, unit: &str, hib: bool, panel: Panel, group: &str| {
        Figure::new(id, title, unit, hib, panel).group(group)
    };
    let mut figures = vec![
        f(
            "publish_echo",
            "publish → notification echo",
            "msg/s",
            true,
            Panel::Throughput,
            "publish echo",
        ),
        f(
            "publish_echo_windowed",
            "publish → notification echo, ≤ 4,000 outstanding",
            "msg/s",
            true,
            Panel::Throughput,
            "publish (windowed)",
        ),
        f(
            "notify",
            "notifications (notify query)",
            "msg/s",
            true,
            Panel::Throughput,
            "notify",
        ),
        f(
            "query_tput",
            "queries, 64 in flight (rows 1)",
            "queries/s",
            true,
            Panel::Throughput,
            "queries ×64",
        ),
        f(
            "latency_p50",
            "query latency p50, sequential (rows 1)",
            "µs",
            false,
            Panel::Latency,
            "p50",
        ),
        f(
            "latency_p99",
            "query latency p99, sequential (rows 1)",
            "µs",
            false,
            Panel::Latency,
            "p99",
        ),
        f(
            "kernel_rtt_p50",
            "kernel floor: TCP round trip p50 (2 processes, blocking sockets)",
            "µs",
            false,
            Panel::None,
            "",
        ),
        f(
            "kernel_rtt_p99",
            "kernel floor: TCP round trip p99 (2 processes, blocking sockets)",
            "µs",
            false,
            Panel::None,
            "",
        ),
        f(
            "sim_publish_only",
            "emulator alone: publishes delivered to a counting reader",
            "msg/s",
            true,
            Panel::None,
            "",
        ),
        f(
            "sim_notify_only",
            "emulator alone: notifications absorbed from a raw writer",
            "msg/s",
            true,
            Panel::None,
            "",
        ),
    ];
    for &n in sizes {
        figures.push(f(
            &format!("connect_{n}"),
            &format!("connect time, {n} sources"),
            "ms",
            false,
            Panel::Connect,
            &format!("{n}"),
        ));
    }
    for &n in sizes {
        figures.push(f(
            &format!("rss_{n}"),
            &format!("resident memory, {n} idle sources"),
            "MiB",
            false,
            Panel::None,
            "",
        ));
    }
    let big: Vec<usize> = sizes.iter().copied().filter(|n| *n > 1).collect();
    for &n in &big {
        figures.push(f(
            &format!("rss_per_source_{n}"),
            &format!("memory per additional idle source, {n} sources"),
            "KiB",
            false,
            if n == *big.last().unwrap_or(&0) {
                Panel::Memory
            } else {
                Panel::None
            },
            &format!("KiB/source ({n})"),
        ));
    }
    figures.push(f(
        "restart",
        "restart: server accepting → 1,000 sources back",
        "ms",
        false,
        Panel::Restart,
        "restart (ms)",
    ));
    figures.push(f(
        "restart_from_stop",
        "restart: server stopped → 1,000 sources back",
        "ms",
        false,
        Panel::None,
        "",
    ));
    figures.push(f(
        "stalled_stream_rss",
        "peak memory growth, 2,000,000 rows streamed to a server not reading",
        "MiB",
        false,
        Panel::None,
        "",
    ));
    figures
}
