//! Command-line interface: argument parsing and the client subcommands (`serve` is in
//! `serve.rs`, the output of `query` in `query.rs`).

mod query;
mod serve;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use serve::{serve, ServeArgs};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use vantiq_sim::client::{Client, ClientError};

#[derive(Parser)]
#[command(
    name = "vantiq-sim",
    version,
    about = "A local Vantiq server emulator for developing, testing and benchmarking connectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the emulator (WebSocket endpoint and control API on one listener)
    Serve(ServeArgs),
    /// Publish a JSON object to a source
    Publish {
        /// Source name
        name: String,
        /// The object, as JSON (`-` reads it from stdin)
        json: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Query a source; prints the rows as they arrive, one JSON per line, keeping none
    /// ("no data (204)" on stderr for a 204); an error answer exits 1 with its code and
    /// text
    Query {
        /// Source name
        name: String,
        /// The query parameters, as a JSON object (`-` reads them from stdin)
        json: String,
        /// How long to wait for the final answer
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Print every answer frame as received (its status, headers and body), one per
        /// line, instead of the rows
        #[arg(long)]
        frames: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Measure a connector: send many queries, some in flight at once; prints the rate and
    /// latency percentiles as JSON
    QueryLoad {
        /// Source name
        name: String,
        /// The query parameters, as a JSON object (`-` reads them from stdin)
        #[arg(default_value = "{}")]
        json: String,
        /// How many queries to send
        #[arg(long, default_value_t = 10_000)]
        queries: u64,
        /// How many may await their answer at once (1: sequential latency)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        in_flight: u64,
        /// The time allowed for the whole run
        #[arg(long)]
        timeout_ms: Option<u64>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Print a source's notifications, one JSON object per line
    Notifications {
        /// Source name
        name: String,
        /// First sequence number to print
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep printing notifications as they arrive
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Print every source's status, one JSON object per line
    Sources {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Send reconnectRequired to a source's connector
    Reconnect {
        /// Source name
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Cut a source's connection abruptly (no close frame)
    Drop {
        /// Source name
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Stop reading a source's connection, keeping it open (the connector's writes back up)
    StopReading {
        /// Source name
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Read a source's connection again (after stop-reading)
    ResumeReading {
        /// Source name
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Print the protocol violations recorded so far, one JSON object per line
    Violations {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Set a source's configuration (a connected source gets reconnectRequired)
    SetConfig {
        /// Source name
        name: String,
        /// The configuration, as JSON (`-` reads it from stdin)
        json: String,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct ServerArg {
    /// The emulator's address
    #[arg(long, default_value = "http://127.0.0.1:8088")]
    server: String,
    /// The emulator's control token, if it was started with one
    #[arg(long, env = "VANTIQ_SIM_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
}

/// Parses the command line and runs the subcommand.
pub(crate) async fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Publish { name, json, server } => {
            with_client(&server, |c| async move {
                c.publish(&name, &parse_json(&json)?).await.map_err(fail)
            })
            .await
        }
        Command::Query {
            name,
            json,
            timeout_ms,
            frames,
            server,
        } => {
            with_client(&server, |c| async move {
                let mut printer = query::Printer::new(frames);
                c.query_stream(&name, &parse_json(&json)?, timeout_ms, |f| printer.frame(f))
                    .await
                    .map_err(fail)?;
                printer.finish()
            })
            .await
        }
        Command::QueryLoad {
            name,
            json,
            queries,
            in_flight,
            timeout_ms,
            server,
        } => {
            with_client(&server, |c| async move {
                let summary = c
                    .query_load(&name, &parse_json(&json)?, queries, in_flight, timeout_ms)
                    .await
                    .map_err(fail)?;
                print_lines([summary])
            })
            .await
        }
        Command::Notifications {
            name,
            since,
            follow,
            server,
        } => {
            with_client(&server, |c| async move {
                notifications(&c, &name, since, follow).await
            })
            .await
        }
        Command::Sources { server } => {
            with_client(&server, |c| async move {
                print_lines(c.sources().await.map_err(fail)?)
            })
            .await
        }
        Command::Reconnect { name, server } => {
            with_client(&server, |c| async move {
                c.reconnect(&name).await.map_err(fail)
            })
            .await
        }
        Command::Drop { name, server } => {
            with_client(&server, |c| async move {
                c.drop_connection(&name).await.map_err(fail)
            })
            .await
        }
        Command::StopReading { name, server } => {
            with_client(&server, |c| async move {
                c.stop_reading(&name).await.map_err(fail)
            })
            .await
        }
        Command::ResumeReading { name, server } => {
            with_client(&server, |c| async move {
                c.resume_reading(&name).await.map_err(fail)
            })
            .await
        }
        Command::Violations { server } => {
            with_client(&server, |c| async move {
                print_lines(c.violations().await.map_err(fail)?)
            })
            .await
        }
        Command::SetConfig { name, json, server } => {
            with_client(&server, |c| async move {
                let status = c
                    .set_config(&name, &parse_json(&json)?)
                    .await
                    .map_err(fail)?;
                print_lines([status])
            })
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vantiq-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` decides, `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn fail(e: ClientError) -> String {
    e.to_string()
}

async fn with_client<F, Fut>(server: &ServerArg, f: F) -> Result<(), String>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut client = Client::new(&server.server).map_err(fail)?;
    if let Some(token) = &server.control_token {
        client = client.with_token(token);
    }
    f(client).await
}

/// Parses a JSON argument; `-` reads it from stdin.
pub(super) fn parse_json(arg: &str) -> Result<Value, String> {
    let text = if arg == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON ({e}): {text}"))
}

/// Prints each item as one line of JSON.
pub(super) fn print_lines<T: serde::Serialize>(
    items: impl IntoIterator<Item = T>,
) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for item in items {
        let line = serde_json::to_string(&item).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

async fn notifications(c: &Client, name: &str, since: u64, follow: bool) -> Result<(), String> {
    let mut next = since;
    loop {
        let wait = follow.then_some(10_000);
        let batch = c.notifications(name, next, wait).await.map_err(fail)?;
        if let Some(last) = batch.last() {
            next = last.seq + 1;
        }
        print_lines(batch)?;
        if !follow {
            return Ok(());
        }
    }
}
