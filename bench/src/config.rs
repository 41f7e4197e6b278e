//! The connectors' `server.config`: the driver writes one per run (in a fresh directory,
//! as `serverConfig/server.config`), every connector reads it the way its SDK does.

use std::io;
use std::path::{Path, PathBuf};

/// The access token every benchmark emulator accepts.
pub const TOKEN: &str = "bench-token";

/// What the floor client needs from a server.config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `targetServer`, e.g. `http://127.0.0.1:40000`.
    pub target_server: String,
    /// `authToken`.
    pub auth_token: String,
    /// `sources`, in order.
    pub sources: Vec<String>,
}

impl ServerConfig {
    /// The WebSocket URL of the target server: `ws://HOST:PORT/api/v1/wsock/websocket`.
    pub fn ws_url(&self) -> String {
        let base = self.target_server.trim_end_matches('/');
        let base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_owned()
        };
        format!("{base}/api/v1/wsock/websocket")
    }

    /// The file's text (Java properties syntax, as both SDKs read it).
    pub fn to_properties(&self) -> String {
        format!(
            "targetServer={}\nauthToken={}\nsources={}\n",
            self.target_server,
            self.auth_token,
            self.sources.join(",")
        )
    }

    /// Parses the few keys the floor needs from properties text (`key=value` lines, `#`
    /// comments).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut target = None;
        let mut token = None;
        let mut sources = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once(['=', ':']) else {
                continue;
            };
            let value = value.trim().to_owned();
            match key.trim() {
                "targetServer" => target = Some(value),
                "authToken" => token = Some(value),
                "sources" => sources = Some(value),
                _ => {}
            }
        }
        let target_server = target.ok_or("server.config lacks targetServer")?;
        let sources: Vec<String> = sources
            .ok_or("server.config lacks sources")?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let auth_token = token
            .or_else(|| std::env::var("CONNECTOR_AUTH_TOKEN").ok())
            .unwrap_or_default();
        Ok(ServerConfig {
            target_server,
            auth_token,
            sources,
        })
    }

    /// Loads `serverConfig/server.config`, then `server.config`, from `dir`.
    pub fn load_from(dir: &Path) -> Result<Self, String> {
        for candidate in ["serverConfig/server.config", "server.config"] {
            match std::fs::read_to_string(dir.join(candidate)) {
                Ok(text) => return Self::parse(&text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{candidate}: {e}")),
            }
        }
        Err("no serverConfig/server.config or server.config".into())
    }

    /// Writes `dir/serverConfig/server.config`; returns `dir`.
    pub fn write_to(&self, dir: &Path) -> io::Result<PathBuf> {
        let sub = dir.join("serverConfig");
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join("server.config"), self.to_properties())?;
        Ok(dir.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = ServerConfig {
            target_server: "http://127.0.0.1:1234".into(),
            auth_token: "t".into(),
            sources: vec!["a".into(), "b".into()],
        };
        assert_eq!(ServerConfig::parse(&c.to_properties()).unwrap(), c);
        assert_eq!(c.ws_url(), "ws://127.0.0.1:1234/api/v1/wsock/websocket");
    }
}
