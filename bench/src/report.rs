//! The benchmark's output: the printed table, the JSON document (`latest.json`) and the
//! hand-written SVG chart (`chart.svg`, no plotting dependency).

use crate::stats::Summary;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The columns of the table and the bars of each chart group, in order.
pub const WHO: [&str; 5] = ["echo", "python", "python_rust", "floor", "ceiling"];

/// What a column is, for the table's legend and the JSON.
pub fn who_description(who: &str) -> &'static str {
    match who {
        "echo" => "the Rust SDK's echo example (target/release/examples/echo), its own process",
        "python" => "the same echo on the official Python SDK (vantiqconnectorsdk 1.3.7), its own process",
        "python_rust" => "the same Python echo file, imports changed to vantiq_connector_sdk (python/, on this SDK's core), its own process",
        "floor" => "bare tokio-tungstenite client, no SDK logic (target/release/floor), its own process",
        "ceiling" => "the driver's own ceiling: the floor's code run inside the driver process, or a one-way raw client",
        _ => "",
    }
}

/// The chart panel a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Messages or queries per second.
    Throughput,
    /// Query latency in microseconds.
    Latency,
    /// Connect time in milliseconds.
    Connect,
    /// Memory.
    Memory,
    /// Reconnection after a server restart, in milliseconds.
    Restart,
    /// Not charted.
    None,
}

/// One measured figure: its median and spread for each connector measured.
#[derive(Debug, Clone)]
pub struct Figure {
    /// A stable identifier (`publish_echo`, `latency_p99`, `connect_10000`, ...).
    pub id: String,
    /// What it measures, for the table.
    pub title: String,
    /// The unit of the values.
    pub unit: String,
    /// Whether a larger value is better.
    pub higher_is_better: bool,
    /// The chart panel, and the label of the figure's group in it.
    pub panel: Panel,
    /// The label of this figure's group of bars in its panel.
    pub group: String,
    /// The results: connector, summary of its rounds, and the workload it ran.
    pub results: Vec<(String, Summary, String)>,
    /// Why a connector has no value, or anything else worth saying.
    pub notes: Vec<String>,
}

impl Figure {
    /// A figure with no results yet.
    pub fn new(id: &str, title: &str, unit: &str, higher_is_better: bool, panel: Panel) -> Self {
        Figure {
            id: id.into(),
            title: title.into(),
            unit: unit.into(),
            higher_is_better,
            panel,
            group: title.into(),
            results: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Sets the group label in the chart.
    pub fn group(mut self, label: &str) -> Self {
        self.group = label.into();
        self
    }

    /// The summary for connector `who`, if measured.
    pub fn get(&self, who: &str) -> Option<&Summary> {
        self.results
            .iter()
            .find(|(w, _, _)| w == who)
            .map(|(_, s, _)| s)
    }

    /// `echo`'s median divided by `other`'s median.
    pub fn ratio(&self, other: &str) -> Option<f64> {
        self.ratio_of("echo", other)
    }

    /// `who`'s median over `other`'s.
    pub fn ratio_of(&self, who: &str, other: &str) -> Option<f64> {
        let e = self.get(who)?.median;
        let o = self.get(other)?.median;
        (o != 0.0).then_some(e / o)
    }

    /// The figure as JSON.
    pub fn to_json(&self) -> Value {
        let mut results = serde_json::Map::new();
        for (who, s, workload) in &self.results {
            let mut v = s.to_json();
            v["workload"] = json!(workload);
            results.insert(who.clone(), v);
        }
        json!({
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "results": results,
            "echo_over_python": self.ratio("python"),
            "echo_over_floor": self.ratio("floor"),
            "python_rust_over_python": self.ratio_of("python_rust", "python"),
            "notes": self.notes,
        })
    }
}

/// A target of the issue, checked against one run.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is required.
    pub requirement: String,
    /// What was measured, in words.
    pub measured: String,
    /// Met or not (None: could not be measured).
    pub met: Option<bool>,
}

impl Target {
    /// The target as JSON.
    pub fn to_json(&self) -> Value {
        json!({"requirement": self.requirement, "measured": self.measured, "met": self.met})
    }
}

/// A number with a sensible precision and thousands separators.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}x"),
        Some(r) if r >= 0.1 => format!("{r:.2}x"),
        Some(r) => format!("{r:.3}x"),
        None => "-".into(),
    }
}

fn cell(s: Option<&Summary>) -> String {
    match s {
        Some(s) if s.samples.len() > 1 => format!(
            "{} ({}–{})",
            fmt_num(s.median),
            fmt_num(s.min),
            fmt_num(s.max)
        ),
        Some(s) => fmt_num(s.median),
        None => "-".into(),
    }
}

/// The table of figures, as Markdown (it reads well in a terminal too).
pub fn table(figures: &[Figure]) -> String {
    let mut rows: Vec<Vec<String>> = vec![vec![
        "figure".into(),
        "unit".into(),
        "echo (Rust SDK)".into(),
        "python SDK".into(),
        "python on this SDK".into(),
        "floor".into(),
        "driver ceiling".into(),
        "echo ÷ python".into(),
        "echo ÷ floor".into(),
        "python on this SDK ÷ python SDK".into(),
    ]];
    for f in figures {
        let mut row = vec![f.title.clone(), f.unit.clone()];
        for who in WHO {
            row.push(cell(f.get(who)));
        }
        row.push(fmt_ratio(f.ratio("python")));
        row.push(fmt_ratio(f.ratio("floor")));
        row.push(fmt_ratio(f.ratio_of("python_rust", "python")));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push('|');
        for (c, text) in row.iter().enumerate() {
            let pad = widths[c] - text.chars().count();
            if c < 2 {
                let _ = write!(out, " {text}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{text} |", " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            for (c, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(*w);
                if c < 2 {
                    let _ = write!(out, " {dashes} |");
                } else {
                    let _ = write!(out, " {}: |", &dashes[1..]);
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The targets, as a Markdown table.
pub fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("| target | measured | met |\n| --- | --- | --- |\n");
    for t in targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {met} |", t.requirement, t.measured);
    }
    out
}

// ---- the chart ---------------------------------------------------------------------------

const COLORS: [&str; 5] = ["#d9480f", "#1971c2", "#7048e8", "#2f9e44", "#868e96"];
const PANEL_W: f64 = 600.0;
const PANEL_H: f64 = 330.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn axis_label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else {
        format!("{v}")
    }
}

/// One panel: groups of bars (one bar per connector), log-scale value axis.
fn panel(out: &mut String, x0: f64, y0: f64, title: &str, unit: &str, figures: &[&Figure]) {
    let left = 64.0;
    let top = 34.0;
    let bottom = 58.0;
    let plot_w = PANEL_W - left - 16.0;
    let plot_h = PANEL_H - top - bottom;
    let _ = writeln!(
        out,
        r##"<g transform="translate({x0},{y0})"><rect x="0" y="0" width="{PANEL_W}" height="{PANEL_H}" fill="white" stroke="#dee2e6"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-weight="bold">{} ({}, log scale)</text>"#,
        PANEL_W / 2.0,
        esc(title),
        esc(unit)
    );
    let values: Vec<f64> = figures
        .iter()
        .flat_map(|f| f.results.iter().flat_map(|(_, s, _)| [s.min, s.max]))
        .filter(|v| *v > 0.0)
        .collect();
    if values.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text></g>"#,
            PANEL_W / 2.0,
            PANEL_H / 2.0
        );
        return;
    }
    let lo = values
        .iter()
        .cloned()
        .fold(f64::MAX, f64::min)
        .log10()
        .floor();
    let hi = values
        .iter()
        .cloned()
        .fold(f64::MIN, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let y_of = |v: f64| top + plot_h - plot_h * ((v.max(10f64.powf(lo)).log10() - lo) / (hi - lo));
    // Decade grid.
    let mut d = lo;
    while d <= hi + 1e-9 {
        let y = y_of(10f64.powf(d));
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e9ecef"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            axis_label(10f64.powf(d))
        );
        d += 1.0;
    }
    let groups = figures.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8 / WHO.len() as f64).min(36.0);
    for (g, f) in figures.iter().enumerate() {
        let gx = left + group_w * g as f64 + (group_w - bar_w * WHO.len() as f64) / 2.0;
        for (i, who) in WHO.iter().enumerate() {
            let x = gx + bar_w * i as f64;
            let Some(s) = f.get(who) else {
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#adb5bd">n/a</text>"##,
                    x + bar_w / 2.0,
                    top + plot_h - 4.0
                );
                continue;
            };
            let y = y_of(s.median);
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {} (min {}, max {})</title></rect>"#,
                x + 1.0,
                bar_w - 2.0,
                (top + plot_h - y).max(0.5),
                COLORS[i],
                who,
                fmt_num(s.median),
                esc(&f.unit),
                fmt_num(s.min),
                fmt_num(s.max)
            );
            // Spread whisker.
            let (ymin, ymax) = (y_of(s.min), y_of(s.max));
            let cx = x + bar_w / 2.0;
            let _ = writeln!(
                out,
                r##"<line x1="{cx:.1}" y1="{ymin:.1}" x2="{cx:.1}" y2="{ymax:.1}" stroke="#212529"/><line x1="{:.1}" y1="{ymax:.1}" x2="{:.1}" y2="{ymax:.1}" stroke="#212529"/><line x1="{:.1}" y1="{ymin:.1}" x2="{:.1}" y2="{ymin:.1}" stroke="#212529"/>"##,
                cx - 3.0,
                cx + 3.0,
                cx - 3.0,
                cx + 3.0
            );
            let _ = writeln!(
                out,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                ymax - 3.0,
                fmt_num(s.median)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            left + group_w * (g as f64 + 0.5),
            top + plot_h + 16.0,
            esc(&f.group)
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#495057"/></g>"##,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
}

/// The SVG chart: throughput, latency, connect time and restart panels, bars per
/// connector with min–max whiskers.
pub fn chart(figures: &[Figure], subtitle: &str) -> String {
    let pick = |p: Panel| -> Vec<&Figure> { figures.iter().filter(|f| f.panel == p).collect() };
    let width = PANEL_W * 2.0 + 30.0;
    let height = PANEL_H * 2.0 + 110.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#f8f9fa"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">vantiq-connector-sdk benchmark: median of rounds, whiskers min–max</text>"#,
        width / 2.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="42" text-anchor="middle" font-size="11" fill="#495057">{}</text>"##,
        width / 2.0,
        esc(subtitle)
    );
    // Legend.
    let mut lx = width / 2.0 - 330.0;
    for (i, who) in WHO.iter().enumerate() {
        let label = match *who {
            "echo" => "Rust SDK echo",
            "python" => "Python SDK echo",
            "python_rust" => "Python echo, this SDK",
            "floor" => "bare floor client",
            _ => "driver ceiling",
        };
        let _ = writeln!(
            out,
            r#"<rect x="{lx}" y="52" width="12" height="12" fill="{}"/><text x="{}" y="62">{label}</text>"#,
            COLORS[i],
            lx + 16.0
        );
        lx += 135.0;
    }
    let top = 76.0;
    panel(
        &mut out,
        10.0,
        top,
        "Throughput",
        "per second",
        &pick(Panel::Throughput),
    );
    panel(
        &mut out,
        PANEL_W + 20.0,
        top,
        "Query latency, sequential",
        "µs",
        &pick(Panel::Latency),
    );
    panel(
        &mut out,
        10.0,
        top + PANEL_H + 20.0,
        "Time until all sources connected",
        "ms",
        &pick(Panel::Connect),
    );
    let mut last: Vec<&Figure> = pick(Panel::Memory);
    last.extend(pick(Panel::Restart));
    panel(
        &mut out,
        PANEL_W + 20.0,
        top + PANEL_H + 20.0,
        "Idle memory per source; restart",
        "KiB; ms",
        &last,
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
    }

    #[test]
    fn chart_and_table_render() {
        let mut f = Figure::new("x", "X", "msg/s", true, Panel::Throughput);
        f.results.push((
            "echo".into(),
            Summary::of(&[1.0, 2.0, 3.0]).unwrap(),
            "w".into(),
        ));
        f.results
            .push(("python".into(), Summary::of(&[0.1]).unwrap(), "w".into()));
        let svg = chart(&[f.clone()], "test");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let t = table(&[f]);
        assert!(t.contains("20x"), "{t}");
    }
}
