//! `vantiq-sim serve`: its options, the `--config` file, and running the emulator until
//! SIGINT or SIGTERM.

use clap::Args;
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use vantiq_sim::{FrameMode, Sim, SimBuilder};

#[derive(Args)]
pub(super) struct ServeArgs {
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
    /// Require this bearer token for the control API and the console's data (needed to
    /// listen on an address other than loopback)
    #[arg(long, env = "VANTIQ_SIM_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
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

pub(super) async fn serve(args: ServeArgs) -> Result<(), String> {
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
    if let Some(token) = args.control_token {
        builder = builder.control_token(token);
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
    tracing::info!("console: {}/ (in a browser)", sim.http_url());
    let _ = std::io::stdout().flush();
    shutdown.wait().await;
    tracing::info!("shutting down");
    sim.stop().await;
    Ok(())
}

pub(super) fn read_json(path: &Path) -> Result<Value, String> {
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
