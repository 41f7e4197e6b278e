//! Command-line interface: argument parsing and the subcommands.

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vantiq_sim::client::{Client, ClientError};
use vantiq_sim::{FrameMode, Sim, SimBuilder};

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
    /// Query a source; prints the rows, one JSON per line
    Query {
        /// Source name
        name: String,
        /// The query parameters, as a JSON object (`-` reads them from stdin)
        json: String,
        /// How long to wait for the final answer
        #[arg(long)]
        timeout_ms: Option<u64>,
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
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8088]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Accepted access token (repeatable)
    #[arg(long = "token", value_name = "TOKEN")]
    tokens: Vec<String>,
    /// Accepted user, NAME:PASSWORD (repeatable)
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    users: Vec<String>,
    /// A source, NAME or NAME=FILE.json (its configuration; `{}` otherwise) (repeatable)
    #[arg(long = "source", value_name = "NAME[=FILE]")]
    sources: Vec<String>,
    /// A JSON file: {"tokens":[..],"users":[{"username":..,"password":..}],
    /// "sources":{"name":{..config..}},"acks":true,"listen":"ADDR","frames":"follow"}
    #[arg(long)]
    config: Option<PathBuf>,
    /// Frame type of the emulator's messages: follow (each connection in the type its
    /// connector sends), text or binary [default: follow]
    #[arg(long, value_name = "follow|text|binary")]
    frames: Option<FrameMode>,
    /// Do not acknowledge notifications
    #[arg(long)]
    no_acks: bool,
}

/// The `--config` file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    sources: serde_json::Map<String, Value>,
    acks: Option<bool>,
    listen: Option<SocketAddr>,
    frames: Option<FrameMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    username: String,
    password: String,
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
            server,
        } => {
            with_client(&server, |c| async move {
                query(&c, &name, &json, timeout_ms).await
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
    let client = Client::new(&server.server).map_err(fail)?;
    f(client).await
}

/// Parses a JSON argument; `-` reads it from stdin.
fn parse_json(arg: &str) -> Result<Value, String> {
    let text = if arg == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON ({e}): {text}"))
}

/// Prints each item as one line of JSON.
fn print_lines<T: serde::Serialize>(items: impl IntoIterator<Item = T>) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for item in items {
        let line = serde_json::to_string(&item).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

async fn query(c: &Client, name: &str, json: &str, timeout_ms: Option<u64>) -> Result<(), String> {
    let outcome = c
        .query(name, &parse_json(json)?, timeout_ms)
        .await
        .map_err(fail)?;
    if outcome.status >= 300 {
        let error = outcome.error.unwrap_or(Value::Null);
        return Err(format!(
            "query failed with status {}: {error}",
            outcome.status
        ));
    }
    print_lines(outcome.rows)
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

async fn serve(args: ServeArgs) -> Result<(), String> {
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8088)));
    let mut builder = SimBuilder::new()
        .listen(listen)
        .frames(args.frames.or(file.frames).unwrap_or_default())
        .acks(!args.no_acks && file.acks.unwrap_or(true));
    for token in file.tokens.into_iter().chain(args.tokens) {
        builder = builder.token(token);
    }
    for user in file.users {
        builder = builder.user(user.username, user.password);
    }
    for user in &args.users {
        let (name, password) = user
            .split_once(':')
            .ok_or_else(|| format!("--user {user:?}: expected NAME:PASSWORD"))?;
        builder = builder.user(name, password);
    }
    for (name, config) in file.sources {
        builder = builder.source(name, config);
    }
    for source in &args.sources {
        let (name, config) = match source.split_once('=') {
            Some((name, file)) => (name, read_json(Path::new(file))?),
            None => (source.as_str(), Value::Object(Default::default())),
        };
        if name.is_empty() {
            return Err(format!("--source {source:?}: the name is empty"));
        }
        builder = builder.source(name, config);
    }
    let shutdown = Shutdown::register()?;
    let sim: Sim = builder
        .start()
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!(
        "vantiq-sim listening on {} (websocket {})",
        sim.http_url(),
        sim.ws_url()
    );
    let _ = std::io::stdout().flush();
    shutdown.wait().await;
    tracing::info!("shutting down");
    sim.stop().await;
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
}

fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let value = read_json(path)?;
    serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))
}

/// SIGINT and SIGTERM, registered before the server announces itself, so a signal sent
/// as soon as the "listening" line appears is never missed (and never kills the process
/// by its default action).
struct Shutdown {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn register() -> Result<Self, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = [SignalKind::interrupt(), SignalKind::terminate()]
                .into_iter()
                .map(|kind| signal(kind).map_err(|e| format!("cannot handle signals: {e}")))
                .collect::<Result<_, _>>()?;
            Ok(Self { signals })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the first signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        {
            let waits = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
            futures_util::future::select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
