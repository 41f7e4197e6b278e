//! Scraping the metrics endpoint in tests, and reading what was scraped with the
//! Prometheus project's own tools: the strict parsers of its Python client
//! (`tests/prom_parse.py`, in the venv of `scripts/setup-python.sh` or `VANTIQ_PY`)
//! and `promtool check metrics` (`scripts/setup-promtool.sh` or `PROMTOOL`). Without
//! them the tests fail, saying so.
#![allow(dead_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound for one HTTP exchange.
const WAIT: Duration = Duration::from_secs(20);

pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// What Prometheus 2.x sends when it scrapes.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The repository's root: the crate's own directory, or the one above it that holds
/// this file (the SQLite connector's crate uses these helpers too).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("tests/prom_parse.py").exists())
        .expect("the repository root above the crate")
        .to_path_buf()
}

fn tool(env: &str, default: &str, setup: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default));
    assert!(
        path.exists(),
        "{} not found: run {setup} first, or set {env}",
        path.display()
    );
    path
}

pub fn python() -> PathBuf {
    tool("VANTIQ_PY", ".venv/bin/python", "scripts/setup-python.sh")
}

pub fn promtool() -> PathBuf {
    tool(
        "PROMTOOL",
        ".tools/prometheus/promtool",
        "scripts/setup-promtool.sh",
    )
}

/// Runs `program args` with `input` on stdin; returns (success, stdout, stderr).
fn run_with_input(program: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The families of an exposition, as the Python client's parser reads them.
pub fn parse(text: &str, format: &str) -> Vec<Value> {
    let script = repo_root().join("tests/prom_parse.py");
    let (ok, out, err) = run_with_input(&python(), &[script.to_str().unwrap(), format], text);
    assert!(
        ok,
        "the {format} parser rejected the exposition: {err}\n{text}"
    );
    serde_json::from_str(&out).unwrap()
}

/// `promtool check metrics` finds nothing to say about the exposition.
pub fn promtool_check(text: &str) {
    let (ok, out, err) = run_with_input(&promtool(), &["check", "metrics"], text);
    assert!(
        ok && out.trim().is_empty() && err.trim().is_empty(),
        "promtool check metrics: {out}{err}\n{text}"
    );
}

/// The value of the sample `name` whose labels include `labels`.
pub fn sample(families: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| same_label(&s["labels"][*k], v)))
        .map(|s| s["value"].as_f64().expect("a finite value"))
        .collect();
    assert_eq!(found.len(), 1, "one sample {name} {labels:?}: {found:?}");
    found[0]
}

/// Label values compare as text, except numbers (`le`), which the text format writes
/// as Go does (`1`) and OpenMetrics canonically (`1.0`).
fn same_label(value: &Value, expected: &str) -> bool {
    let Some(value) = value.as_str() else {
        return false;
    };
    value == expected
        || matches!((value.parse::<f64>(), expected.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

pub struct HttpResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    accept: Option<&str>,
) -> HttpResponse {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let raw = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, None).await
}

/// Scrapes in both formats, checks both with the parsers and promtool, and returns the
/// families of the OpenMetrics scrape (the stricter parser). The two formats must carry
/// the same samples; since the connector may change a counter between the two scrapes
/// (a reconnection in progress), a pair that differs is taken again, a few times, and
/// the last difference fails the test.
pub async fn scrape(addr: SocketAddr) -> Vec<Value> {
    let mut last_difference = String::new();
    for _ in 0..5 {
        let (from_text, families) = scrape_both(addr).await;
        match first_difference(&from_text, &families) {
            None => return families,
            Some(d) => last_difference = d,
        }
    }
    panic!("the two formats disagree: {last_difference}");
}

async fn scrape_both(addr: SocketAddr) -> (Vec<Value>, Vec<Value>) {
    let text = get(addr, "/metrics").await;
    assert_eq!(text.status, 200);
    assert!(
        text.head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        text.head
    );
    promtool_check(&text.body);
    let from_text = parse(&text.body, "prometheus");
    let om = request(addr, "GET", "/metrics", Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(om.status, 200);
    assert!(
        om.head
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        om.head
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    let families = parse(&om.body, "openmetrics");
    (from_text, families)
}

/// A sample of the text format that the OpenMetrics scrape has with another value.
fn first_difference(from_text: &[Value], families: &[Value]) -> Option<String> {
    for family in from_text {
        for s in family["samples"].as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            let labels: Vec<(&str, &str)> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect();
            if s["value"].is_f64() || s["value"].is_u64() {
                let text_value = s["value"].as_f64().unwrap();
                let om_value = sample(families, name, &labels);
                if om_value != text_value {
                    return Some(format!("{name} {labels:?}: {text_value} vs {om_value}"));
                }
            }
        }
    }
    None
}
