//! Writing the connectors' `server.config`: the driver writes one per run (in a fresh
//! directory, as `serverConfig/server.config`), and every connector reads it the way its
//! SDK does; the floor reads it with this SDK's loader
//! ([`vantiq_connector_sdk::ServerConfig::load_from_dir`]). The SDK has no writer, and the
//! bench needs only three keys, none of which needs escaping.

use std::io;
use std::path::Path;

use vantiq_connector_sdk::config::{Credentials, ServerConfig};

/// The access token every benchmark emulator accepts.
pub const TOKEN: &str = "bench-token";

/// The configuration of a benchmark run: the emulator at `target_server`, [`TOKEN`], and
/// `sources` in order.
pub fn server_config(target_server: &str, sources: &[String]) -> Result<ServerConfig, String> {
    ServerConfig::builder(target_server)
        .token(TOKEN)
        .sources(sources.iter().cloned())
        .build()
        .map_err(|e| format!("benchmark configuration: {e}"))
}

/// The access token of `config` (the bench's connectors authenticate with one).
pub fn token(config: &ServerConfig) -> Result<&str, String> {
    match config.credentials() {
        Credentials::Token(t) => Ok(t.expose()),
        _ => Err("the bench needs authToken (user and password are not supported)".into()),
    }
}

/// The file's text (Java properties syntax, as both SDKs read it).
pub fn to_properties(config: &ServerConfig) -> Result<String, String> {
    Ok(format!(
        "targetServer={}\nauthToken={}\nsources={}\n",
        config.target_server(),
        token(config)?,
        config.sources().join(",")
    ))
}

/// Writes `dir/serverConfig/server.config`.
pub fn write_to(config: &ServerConfig, dir: &Path) -> io::Result<()> {
    let text = to_properties(config).map_err(io::Error::other)?;
    let sub = dir.join("serverConfig");
    std::fs::create_dir_all(&sub)?;
    std::fs::write(sub.join("server.config"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_reads_what_the_bench_writes() {
        let c = server_config("http://127.0.0.1:1234", &["a".into(), "b".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("vantiq-bench-config-{}", std::process::id()));
        write_to(&c, &dir).unwrap();
        let read = ServerConfig::load_from_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read.sources(), ["a", "b"]);
        assert_eq!(token(&read).unwrap(), TOKEN);
        assert_eq!(
            read.websocket_url(),
            "ws://127.0.0.1:1234/api/v1/wsock/websocket"
        );
    }
}
