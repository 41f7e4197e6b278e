//! The cost of the SDK's metrics endpoint (issue 14): the single-source figures of `echo`
//! measured again with `metricsPort` set and `/metrics` scraped every second (Prometheus
//! scrapes every 15 to 60 s: this is many times its load), shown as their own rows
//! (`<figure>_metrics_on`) with the on ÷ off ratio in a note.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::report::{fmt_num, Figure, Panel, CEILING, ECHO};

/// The pseudo-connector: the echo example with its metrics endpoint on.
pub const WHO: &str = "echo_metrics";
/// How often the scraper scrapes.
pub const SCRAPE_EVERY: Duration = Duration::from_secs(1);

/// Adds `metricsPort` (a free loopback port) to `dir/serverConfig/server.config`;
/// returns the port.
pub fn enable(dir: &Path) -> io::Result<u16> {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port();
    let path = dir.join("serverConfig/server.config");
    let mut text = std::fs::read_to_string(&path)?;
    text.push_str(&format!("metricsPort={port}\nmetricsAddress=127.0.0.1\n"));
    std::fs::write(path, text)?;
    Ok(port)
}

/// Scrapes `127.0.0.1:port/metrics` every [`SCRAPE_EVERY`] until dropped.
pub struct Scraper {
    task: tokio::task::JoinHandle<()>,
    /// Scrapes answered with 200.
    pub ok: Arc<AtomicU64>,
}

impl Scraper {
    /// Starts scraping (on the current tokio runtime).
    pub fn start(port: u16) -> Scraper {
        let ok = Arc::new(AtomicU64::new(0));
        let counted = ok.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(SCRAPE_EVERY);
            loop {
                every.tick().await;
                if scrape(port).await.unwrap_or(false) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Scraper { task, ok }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn scrape(port: u16) -> io::Result<bool> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

/// Moves the results of [`WHO`] out of each figure into a figure of their own, just
/// after it (`<id>_metrics_on`, not charted), under [`ECHO`], with the on ÷ off ratio of
/// the medians in a note. The driver's ceiling is copied along, so that the table marks
/// a driver-bound value there as it does in the figure with metrics off.
pub fn split(figures: &mut Vec<Figure>) {
    let mut i = 0;
    while i < figures.len() {
        let Some(at) = figures[i].results.iter().position(|(w, _, _)| w == WHO) else {
            i += 1;
            continue;
        };
        let (_, summary, workload) = figures[i].results.remove(at);
        let off = &figures[i];
        let mut on = Figure::new(
            &format!("{}_metrics_on", off.id),
            &format!("{}, metrics on (scraped every 1 s)", off.title),
            &off.unit,
            off.higher_is_better,
            Panel::None,
        );
        if let Some(off) = off.get(ECHO).filter(|off| off.median != 0.0) {
            on.notes.push(format!(
                "metrics on ÷ off: {:.3} (medians {} and {})",
                summary.median / off.median,
                fmt_num(summary.median),
                fmt_num(off.median)
            ));
        }
        on.results.push((ECHO.into(), summary, workload));
        on.results
            .extend(off.results.iter().filter(|(w, _, _)| w == CEILING).cloned());
        figures.insert(i + 1, on);
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    fn result(who: &str, v: f64) -> (String, Summary, String) {
        (who.into(), Summary::of(&[v]).unwrap(), "w".into())
    }

    #[test]
    fn split_moves_the_metrics_results_into_a_figure_of_their_own() {
        let mut rate = Figure::new("rate", "Rate", "msg/s", true, Panel::Throughput);
        rate.results.extend([
            result(ECHO, 200.0),
            result(WHO, 180.0),
            result(CEILING, 1000.0),
        ]);
        let mut other = Figure::new("other", "Other", "ms", false, Panel::Connect);
        other.results.push(result(ECHO, 5.0));
        let mut figures = vec![rate, other];
        split(&mut figures);
        let ids: Vec<&str> = figures.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["rate", "rate_metrics_on", "other"]);
        assert!(figures[0].get(WHO).is_none());
        let on = &figures[1];
        assert_eq!(on.get(ECHO).unwrap().median, 180.0);
        assert_eq!(on.get(CEILING).unwrap().median, 1000.0);
        assert_eq!(on.notes, ["metrics on ÷ off: 0.900 (medians 180 and 200)"]);
        assert_eq!((on.unit.as_str(), on.panel), ("msg/s", Panel::None));
    }
}
