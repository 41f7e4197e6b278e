//! The hand-written SVG chart (`chart.svg`, no plotting dependency): four panels of bar
//! groups, one bar per [`Column`] with min–max whiskers, log-scale value axes.

use crate::report::{fmt_num, Column, Figure, Panel};
use std::fmt::Write as _;

/// Bar colours by column, in order (repeated when there are more columns).
const COLORS: [&str; 8] = [
    "#d9480f", "#f59f00", "#ae3ec9", "#1971c2", "#2f9e44", "#868e96", "#0ca678", "#e64980",
];
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
fn panel(
    out: &mut String,
    at: (f64, f64),
    title: (&str, &str),
    figures: &[&Figure],
    columns: &[Column],
) {
    let (x0, y0) = at;
    let (title, unit) = title;
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
    let bar_w = (group_w * 0.8 / columns.len().max(1) as f64).min(36.0);
    for (g, f) in figures.iter().enumerate() {
        let gx = left + group_w * g as f64 + (group_w - bar_w * columns.len() as f64) / 2.0;
        for (i, column) in columns.iter().enumerate() {
            let who = &column.name;
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
                COLORS[i % COLORS.len()],
                esc(who),
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
pub fn chart(figures: &[Figure], columns: &[Column], subtitle: &str) -> String {
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
    let step = (width - 40.0) / columns.len().max(1) as f64;
    let mut lx = 20.0 + (step - 135.0).max(0.0) / 2.0;
    for (i, column) in columns.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="52" width="12" height="12" fill="{}"/><text x="{:.1}" y="62">{}</text>"#,
            COLORS[i % COLORS.len()],
            lx + 16.0,
            esc(&column.legend)
        );
        lx += step;
    }
    let top = 76.0;
    panel(
        &mut out,
        (10.0, top),
        ("Throughput", "per second"),
        &pick(Panel::Throughput),
        columns,
    );
    panel(
        &mut out,
        (PANEL_W + 20.0, top),
        ("Query latency, sequential", "µs"),
        &pick(Panel::Latency),
        columns,
    );
    panel(
        &mut out,
        (10.0, top + PANEL_H + 20.0),
        ("Time until all sources connected", "ms"),
        &pick(Panel::Connect),
        columns,
    );
    let mut last: Vec<&Figure> = pick(Panel::Memory);
    last.extend(pick(Panel::Restart));
    panel(
        &mut out,
        (PANEL_W + 20.0, top + PANEL_H + 20.0),
        ("Idle memory per source; restart", "KiB; ms"),
        &last,
        columns,
    );
    out.push_str("</svg>\n");
    out
}
