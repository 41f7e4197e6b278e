//! The numbers of the README (a benchmark, not a test): rows per second and peak RSS
//! streaming a 1,000,000-row SELECT from PostgreSQL through the connector, against a
//! bare sqlx program that only reads the same rows (the floor), in the same run.
//!
//! ```text
//! cargo build --release -p vantiq-sql-connector --bin vantiq-sql-connector --example bench
//! target/release/examples/bench [rows] [bundleFactor]
//! ```
//!
//! It starts its own PostgreSQL (as the tests do), fills a table, then runs
//! - the floor: this program again (`bench floor PORT`), a process that reads every
//!   row with sqlx (each value decoded into its Rust type, nothing kept) and reports its
//!   time and peak RSS;
//! - the connector: its release binary as a process of its own, connected to
//!   vantiq-sim in this process, answering one `SELECT * FROM big` query; the emulator
//!   counts the rows and keeps none (`Sim::query_load`). The connector's peak RSS is
//!   its `VmHWM` read from /proc before it is stopped.

#[path = "../tests/common/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use serde_json::json;
use sqlx::{ConnectOptions, Executor, Row};
use vantiq_sim::{QueryLoad, Sim};

const TOKEN: &str = "bench-token";

fn options(port: u16) -> sqlx::postgres::PgConnectOptions {
    sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host("127.0.0.1")
        .port(port)
        .username(servers::USER)
        .password(servers::PASSWORD)
        .database("postgres")
        .log_statements(log::LevelFilter::Off)
}

/// The kernel's figure for a process: `VmHWM` (peak RSS) or `VmRSS`, in KiB.
fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("the field")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The floor: read every row, decode every value, keep nothing.
async fn floor(port: u16) {
    let mut conn = options(port).connect().await.expect("connects");
    let started = Instant::now();
    let mut rows = 0u64;
    let mut values = 0usize;
    {
        let mut stream = conn.fetch("SELECT * FROM big");
        while let Some(row) = stream.try_next().await.expect("a row") {
            // Each value decoded into its Rust type (the numeric as its raw bytes).
            let id: i32 = row.get(0);
            let name: &str = row.get(1);
            let amount = row
                .try_get_raw(2)
                .map_or(0, |v| v.as_bytes().map_or(0, <[u8]>::len));
            let flag: bool = row.get(3);
            let ts: chrono::NaiveDateTime = row.get(4);
            values += usize::from(id > 0)
                + name.len().min(1)
                + amount.min(1)
                + usize::from(flag)
                + usize::from(ts.and_utc().timestamp() > 0);
            rows += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(values > 0);
    println!("{rows} {secs} {}", status_kib("self", "VmHWM:"));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        floor(args[2].parse().expect("port")).await;
        return;
    }
    let rows: u64 = args.get(1).map_or(1_000_000, |a| a.parse().expect("rows"));
    let bundle: u64 = args
        .get(2)
        .map_or(500, |a| a.parse().expect("bundleFactor"));
    let exe = std::env::current_exe().expect("this program");
    let connector = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("vantiq-sql-connector"))
        .filter(|p| p.is_file())
        .expect("build the connector's binary first (see the doc comment)");

    let pg = servers::Postgres::start();
    let mut conn = options(pg.port).connect().await.expect("connects");
    let fill = format!(
        "CREATE TABLE big AS SELECT g AS id, 'name ' || g AS name, \
         (g * 1.25)::numeric(14,2) AS amount, g % 2 = 0 AS flag, \
         TIMESTAMP '2024-01-01' + g * INTERVAL '1 second' AS ts \
         FROM generate_series(1, {rows}) g"
    );
    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(fill)))
        .await
        .expect("the table");
    println!(
        "PostgreSQL on port {}, table big: {rows} rows (id, name, amount numeric, flag, ts)",
        pg.port
    );

    // The floor, a process of its own.
    let out = Command::new(&exe)
        .args(["floor", &pg.port.to_string()])
        .output()
        .expect("the floor runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    println!(
        "floor (bare sqlx, reads and decodes): {} rows in {:.2} s = {:.0} rows/s, peak RSS {:.1} MiB",
        f[0],
        f[1],
        f[0] / f[1],
        mib(f[2] as u64)
    );

    // The connector, behind the emulator.
    let config = json!({
        "vantiq": {"packageRows": "true"},
        "jdbcConfig": {"general": {
            "dbURL": format!("jdbc:postgresql://127.0.0.1:{}/postgres", pg.port),
            "username": servers::USER, "password": servers::PASSWORD,
        }}
    });
    let sim = Sim::builder()
        .token(TOKEN)
        .source("db", config)
        .start()
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("dir");
    let server_config = dir.path().join("server.config");
    std::fs::write(
        &server_config,
        format!(
            "targetServer={}\nauthToken={TOKEN}\nsources=db\n",
            sim.http_url()
        ),
    )
    .expect("server.config");
    let mut child = Command::new(&connector)
        .arg(&server_config)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the connector starts");
    let pid = child.id().to_string();
    sim.wait_connected("db", Duration::from_secs(60))
        .await
        .expect("the connector connects");
    let idle = status_kib(&pid, "VmRSS:");
    let report = sim
        .query_load(
            "db",
            json!({"query": "SELECT * FROM big", "bundleFactor": bundle}),
            QueryLoad::new(1, 1).timeout(Duration::from_secs(600)),
        )
        .await
        .expect("the query is answered");
    let peak = status_kib(&pid, "VmHWM:");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.rows, rows, "{report:?}");
    let secs = report.elapsed.as_secs_f64();
    println!(
        "connector (bundleFactor {bundle}): {} rows in {secs:.2} s = {:.0} rows/s, peak RSS {:.1} MiB (idle {:.1} MiB)",
        report.rows,
        report.rows as f64 / secs,
        mib(peak),
        mib(idle)
    );
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
}
