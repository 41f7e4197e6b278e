//! The benchmark's output: the printed table and the JSON document (`latest.json`); the
//! SVG chart is in [`crate::chart`].
//!
//! Nothing here knows which connectors exist: the table has one column per [`Column`]
//! the driver passes, in its order, and one ratio column (`echo ÷ X`) per column marked
//! [`Column::ratio`].

use crate::stats::Summary;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The column every ratio is taken from: the current build's echo.
pub const ECHO: &str = "echo";

/// The column of the driver's own ceiling.
pub const CEILING: &str = "ceiling";

/// A connector's figure within this factor of the driver's ceiling measures the driver,
/// not the connector (issue 17): it is printed as driver-bound.
pub const DRIVER_BOUND: f64 = 1.3;

/// One column of the table (one bar of each chart group): a connector, or the driver's
/// own ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The name results are recorded under (`echo`, `python`, `floor`, `ceiling`, a
    /// baseline's name).
    pub name: String,
    /// The table header (`echo (Rust SDK)`).
    pub header: String,
    /// The chart legend's label.
    pub legend: String,
    /// What it is, for `latest.json`.
    pub description: String,
    /// Whether the table has an `echo ÷ <name>` ratio column for it.
    pub ratio: bool,
}

impl Column {
    /// A column; `ratio` off.
    pub fn new(name: &str, header: &str, legend: &str, description: &str) -> Column {
        Column {
            name: name.into(),
            header: header.into(),
            legend: legend.into(),
            description: description.into(),
            ratio: false,
        }
    }

    /// With an `echo ÷ <name>` ratio column.
    pub fn with_ratio(mut self) -> Column {
        self.ratio = true;
        self
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

    /// Whether `who`'s median is within [`DRIVER_BOUND`] of the driver's ceiling in this
    /// figure (so it says more about the driver than about `who`).
    ///
    /// Only rates and latencies (the throughput and latency panels) can be: in the
    /// connect and restart figures the in-driver floor is a reconnect policy, not a limit.
    pub fn driver_bound(&self, who: &str) -> bool {
        if who == CEILING || !matches!(self.panel, Panel::Throughput | Panel::Latency) {
            return false;
        }
        match (self.get(who), self.get(CEILING)) {
            (Some(s), Some(c)) if self.higher_is_better => s.median * DRIVER_BOUND >= c.median,
            (Some(s), Some(c)) => s.median <= c.median * DRIVER_BOUND,
            _ => false,
        }
    }

    /// `echo`'s median divided by `other`'s median.
    pub fn ratio(&self, other: &str) -> Option<f64> {
        let e = self.get(ECHO)?.median;
        let o = self.get(other)?.median;
        (o != 0.0).then_some(e / o)
    }

    /// The figure as JSON, with `echo_over_<name>` for each ratio column.
    pub fn to_json(&self, columns: &[Column]) -> Value {
        let mut results = serde_json::Map::new();
        for (who, s, workload) in &self.results {
            let mut v = s.to_json();
            v["workload"] = json!(workload);
            v["driver_bound"] = json!(self.driver_bound(who));
            results.insert(who.clone(), v);
        }
        let mut doc = json!({
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "results": results,
            "notes": self.notes,
        });
        for c in columns.iter().filter(|c| c.ratio) {
            doc[format!("echo_over_{}", c.name)] = json!(self.ratio(&c.name));
        }
        doc
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

/// The table of figures, as Markdown (it reads well in a terminal too): a value column
/// per column, then an `echo ÷ X` column per ratio column. A value within
/// [`DRIVER_BOUND`] of the ceiling is marked `(driver-bound)`, and a ratio with such a
/// value on either side `(d-b)`: neither is a result.
pub fn table(figures: &[Figure], columns: &[Column]) -> String {
    let ratios: Vec<&Column> = columns.iter().filter(|c| c.ratio).collect();
    let mut header = vec!["figure".to_owned(), "unit".to_owned()];
    header.extend(columns.iter().map(|c| c.header.clone()));
    header.extend(ratios.iter().map(|c| format!("echo ÷ {}", c.name)));
    let mut rows: Vec<Vec<String>> = vec![header];
    for f in figures {
        let mut row = vec![f.title.clone(), f.unit.clone()];
        for c in columns {
            let mut text = cell(f.get(&c.name));
            if f.driver_bound(&c.name) {
                text.push_str(" (driver-bound)");
            }
            row.push(text);
        }
        for c in &ratios {
            let mut text = fmt_ratio(f.ratio(&c.name));
            if f.ratio(&c.name).is_some() && (f.driver_bound(ECHO) || f.driver_bound(&c.name)) {
                text.push_str(" (d-b)");
            }
            row.push(text);
        }
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
        let columns = [
            Column::new("echo", "echo", "echo", ""),
            Column::new("python", "python", "python", "").with_ratio(),
        ];
        let svg = crate::chart::chart(&[f.clone()], &columns, "test");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let t = table(&[f.clone()], &columns);
        assert!(t.contains("20x") && t.contains("echo ÷ python"), "{t}");
        assert!(!t.contains("driver-bound"), "{t}");
    }

    #[test]
    fn figures_near_the_ceiling_are_driver_bound() {
        let mut rate = Figure::new("r", "R", "msg/s", true, Panel::Throughput);
        for (who, v) in [("echo", 80.0), ("floor", 70.0), ("ceiling", 100.0)] {
            rate.results
                .push((who.into(), Summary::of(&[v]).unwrap(), String::new()));
        }
        // 80 × 1.3 ≥ 100: bound; 70 × 1.3 < 100: a result.
        assert!(rate.driver_bound("echo") && !rate.driver_bound("floor"));
        assert!(!rate.driver_bound("ceiling"));
        let mut time = Figure::new("t", "T", "µs", false, Panel::Latency);
        for (who, v) in [("echo", 12.0), ("floor", 14.0), ("ceiling", 10.0)] {
            time.results
                .push((who.into(), Summary::of(&[v]).unwrap(), String::new()));
        }
        assert!(time.driver_bound("echo") && !time.driver_bound("floor"));
        let mut restart = time.clone();
        restart.panel = Panel::Restart;
        assert!(!restart.driver_bound("echo"));
        let columns = [
            Column::new("echo", "echo", "echo", ""),
            Column::new("floor", "floor", "floor", "").with_ratio(),
            Column::new("ceiling", "ceiling", "ceiling", ""),
        ];
        let t = table(&[rate], &columns);
        assert!(
            t.contains("80.0 (driver-bound)") && t.contains("1.14x (d-b)"),
            "{t}"
        );
    }
}
