//! `vantiq-bench`: the benchmark driver (run it with `bash scripts/bench.sh`; compare
//! builds with `bash scripts/bench-compare.sh`). What it measures and how is described in
//! [`vantiq_bench::driver`]; this binary parses the options, runs the parts and writes
//! the results: a table on stdout, `bench/results/latest.json` and
//! `bench/results/chart.svg`.
//!
//! ```text
//! vantiq-bench [--quick] [--rounds N] [--skip-python] [--only LIST] [--sizes LIST]
//!              [--baseline NAME=PATH]... [--out DIR]
//! ```
//!
//! `--only` takes a comma-separated list of `single` (throughput and latency), `connect`
//! (connect time and memory), `restart` and `stalled` (memory while streaming to a server
//! that stopped reading); `--sizes` the source counts of `connect`;
//! `--baseline` (or `BENCH_BASELINE=NAME=PATH,...`) adds another build's echo as a column.

use std::time::Instant;

use serde_json::{json, Value};
use vantiq_bench::driver::opts::Opts;
use vantiq_bench::driver::{log, Bench};
use vantiq_bench::report::{self, Target};
use vantiq_bench::{chart, metrics_on, sys};

fn main() {
    let rt = if std::env::var("BENCH_RT").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    rt.expect("runtime").block_on(run());
}

/// Exits with status 2 when a program the run needs is missing.
fn check_programs(bench: &Bench) {
    if !bench.opts.floor_bin().exists() {
        eprintln!(
            "vantiq-bench: floor binary {} missing: run bash scripts/bench.sh (it builds it)",
            bench.opts.floor_bin().display()
        );
        std::process::exit(2);
    }
    for c in &bench.connectors {
        let Some(program) = c.program() else { continue };
        if program.exists() {
            continue;
        }
        if c.name() == "python" {
            eprintln!(
                "vantiq-bench: {} missing (bash scripts/setup-python.sh makes it); or pass --skip-python",
                program.display()
            );
        } else {
            eprintln!(
                "vantiq-bench: {} binary {} missing: run bash scripts/bench.sh (it builds it)",
                c.name(),
                program.display()
            );
        }
        std::process::exit(2);
    }
}

async fn run() {
    let opts = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vantiq-bench: {e}");
            std::process::exit(2);
        }
    };
    let mut bench = Bench::new(opts.clone());
    check_programs(&bench);
    let began = Instant::now();
    let machine = sys::machine();
    log(&format!("machine: {machine}"));

    if opts.part("single") {
        if let Err(e) = bench.kernel_round_trip().await {
            bench.notes.push(format!("kernel round trip failed: {e}"));
        }
        if let Err(e) = bench.sim_alone().await {
            bench
                .notes
                .push(format!("emulator-alone figures failed: {e}"));
        }
        bench.single().await;
    }
    if opts.part("connect") {
        bench.connect().await;
    }
    if opts.part("restart") {
        bench.restart().await;
    }
    if opts.part("stalled") {
        bench.stalled().await;
    }
    metrics_on::split(&mut bench.figures);
    bench
        .figures
        .retain(|f| !f.results.is_empty() || !f.notes.is_empty());
    write_results(&bench, &machine, began.elapsed().as_secs_f64());
}

/// Prints the tables and notes and writes `latest.json` and `chart.svg`.
fn write_results(bench: &Bench, machine: &Value, elapsed: f64) {
    let opts = &bench.opts;
    let columns = bench.columns();
    let targets = bench.targets();
    let table = report::table(&bench.figures, &columns);
    println!();
    println!("{table}");
    println!("{}", report::targets_table(&targets));
    for f in &bench.figures {
        for n in &f.notes {
            println!("note ({}): {n}", f.id);
        }
    }
    for n in &bench.notes {
        println!("note: {n}");
    }
    println!("total time: {elapsed:.0} s");

    let subtitle = format!(
        "{} × {}, {} GiB; {} rounds{}; {}",
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or("?"),
        machine["memory_gib"],
        opts.rounds,
        if opts.quick { " (--quick)" } else { "" },
        "bash scripts/bench.sh"
    );
    let doc = json!({
        "command": "bash scripts/bench.sh",
        "args": std::env::args().skip(1).collect::<Vec<_>>(),
        "quick": opts.quick,
        "rounds": opts.rounds,
        "machine": machine,
        "seconds": elapsed,
        "connectors": columns.iter().map(|c| (c.name.clone(), Value::from(c.description.clone()))).collect::<serde_json::Map<_, _>>(),
        "figures": bench.figures.iter().map(|f| f.to_json(&columns)).collect::<Vec<Value>>(),
        "targets": targets.iter().map(Target::to_json).collect::<Vec<_>>(),
        "notes": bench.notes,
        "table_markdown": table,
    });
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("vantiq-bench: {}: {e}", opts.out.display());
        std::process::exit(1);
    }
    let json_path = opts.out.join("latest.json");
    let svg_path = opts.out.join("chart.svg");
    let written = std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .and_then(|_| std::fs::write(&svg_path, chart::chart(&bench.figures, &columns, &subtitle)));
    match written {
        Ok(()) => println!("wrote {} and {}", json_path.display(), svg_path.display()),
        Err(e) => {
            eprintln!("vantiq-bench: writing results: {e}");
            std::process::exit(1);
        }
    }
}
