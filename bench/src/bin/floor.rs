//! `floor`: the bare WebSocket client of the benchmark (see `vantiq_bench::floor`). It
//! reads `serverConfig/server.config` (or `server.config`) in its working directory, like
//! the connectors, serves every source listed there on its own socket, and runs until
//! killed. A lost connection is retried every 10 ms.
//!
//! `floor --parse` echoes publishes through a JSON tree: the parsing floor.
//!
//! `floor --check` checks each published object to be a JSON object before slicing it (a
//! diagnostic: the splicing floor plus the one check the SDK's raw path makes).
//!
//! `floor --handoff` checks each published object, hands it to a second task and keeps
//! each notification until acknowledged (a diagnostic: the shape the SDK's guarantees
//! give a connector, without the SDK).
//!
//! `floor --window N` keeps at most `N` notifications of a `notify` burst unacknowledged
//! (a diagnostic: the SDK's flow-control window on the bare client).
//!
//! `floor --trivial` is the driver's ceiling client instead (see `vantiq_bench::trivial`):
//! framing only, made frames.
//!
//! `floor --tcp-echo ADDR` is the other end of the kernel round-trip figure instead (see
//! `vantiq_bench::pingpong`).

use std::process::ExitCode;
use std::time::Duration;

use vantiq_bench::{floor, pingpong, trivial};
use vantiq_connector_sdk::config::ServerConfig;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, addr] = args.as_slice() {
        if flag == "--tcp-echo" {
            return match pingpong::echo(addr) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("floor: tcp echo: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let floor = |parse, check, window| {
        Mode::Floor(floor::Opts {
            parse,
            check,
            window,
            handoff: false,
        })
    };
    let mode = match args.as_slice() {
        [] => floor(false, false, None),
        [flag] if flag == "--parse" => floor(true, false, None),
        [flag] if flag == "--check" => floor(false, true, None),
        [flag] if flag == "--handoff" => Mode::Floor(floor::Opts {
            handoff: true,
            ..Default::default()
        }),
        [flag, n] if flag == "--window" && n.parse::<usize>().is_ok_and(|n| n > 0) => {
            floor(false, false, n.parse().ok())
        }
        [flag] if flag == "--trivial" => Mode::Trivial,
        _ => {
            eprintln!(
                "usage: floor [--parse | --check | --handoff | --window N | --trivial] | floor --tcp-echo ADDR"
            );
            return ExitCode::from(2);
        }
    };
    // The same runtime as the echo example, so the two differ only by the SDK.
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(serve(mode)),
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the process serves.
#[derive(Clone, Copy)]
enum Mode {
    /// The floor (the parsing floor, a window: see the options).
    Floor(floor::Opts),
    /// The trivial client of the ceiling.
    Trivial,
}

async fn serve(mode: Mode) -> ExitCode {
    let config = match ServerConfig::load_from_dir(std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let retry = Duration::from_millis(10);
    let opts = match mode {
        Mode::Trivial => {
            return match trivial::serve(&config, retry).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("floor: configuration error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Mode::Floor(opts) => opts,
    };
    let tasks = match floor::spawn_all(&config, retry, opts) {
        Ok(tasks) => tasks,
        Err(e) => {
            eprintln!("floor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    for t in tasks {
        let _ = t.await;
    }
    ExitCode::SUCCESS
}
