//! The connector's server configuration: where the Vantiq server is, how to
//! authenticate, which sources to serve.
//!
//! Vantiq connectors read it from a Java properties file named `server.config`, looked for
//! at `serverConfig/server.config`, then `server.config` (see
//! [`ServerConfig::SEARCH_PATHS`]). It can also be built in code with
//! [`ServerConfig::builder`].
//!
//! # Keys
//!
//! Keys are case-sensitive, spelled as Vantiq writes them. Unknown keys are ignored.
//! Except for `username`, `password`, `reconnectSecret` and `connectKWArgs`, values are
//! trimmed of surrounding whitespace, and an empty value counts as absent.
//!
//! | key | meaning |
//! |---|---|
//! | `targetServer` | required; the server URL, e.g. `https://dev.vantiq.com`, rewritten to a WebSocket URL by [`websocket_url()`] |
//! | `authToken` | access token; when absent or empty, the environment variable `CONNECTOR_AUTH_TOKEN` is used |
//! | `username`, `password` | (extension of this SDK) log in with a user name and password instead of a token; a token, from the file or the environment, wins when both are given |
//! | `sources` | required; comma-separated source names, whitespace around names ignored; an empty entry (`a,,b`, or a trailing comma), a name containing whitespace or a name given twice is an error |
//! | `sendPings` | `true` to send WebSocket pings (default `false`) |
//! | `failOnConnectionError` | `true` to stop instead of retrying when a connection cannot be made (default `false`) |
//! | `tcpProbePort` | port of the TCP health probe (default 8000) |
//! | `tcpProbeHost` | (extension) IP address the health probe listens on (default `0.0.0.0`, so Kubernetes probes can reach it) |
//! | `reconnectSecret` | a fixed part of the reconnect secret |
//! | `connectKWArgs` | a JSON object; its `"disableSslVerification": true` turns TLS certificate checks off. The other entries are kept (see [`ServerConfig::connect_kwargs`]) |
//! | `caFile` | (extension) a PEM file of extra certificate authorities to trust |
//!
//! Booleans must be `true` or `false` (any case). The Python SDK takes anything other
//! than `true` as false; this SDK reports any other value as an error
//! ([`ConfigError::InvalidBool`]) so that a typo does not silently change behavior.
//!
//! # Example
//!
//! ```
//! use vantiq_connector_sdk::config::{Credentials, ServerConfig};
//!
//! let text = "targetServer=https://dev.vantiq.com\nsources=pumps, valves\nsendPings=true\n";
//! let config = ServerConfig::from_properties_str(text, None, Some("tok".into()))?;
//! assert_eq!(config.websocket_url(), "wss://dev.vantiq.com/api/v1/wsock/websocket");
//! assert_eq!(config.sources(), ["pumps", "valves"]);
//! assert!(config.send_pings());
//! assert!(matches!(config.credentials(), Credentials::Token(t) if t.expose() == "tok"));
//! # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
//! ```

mod builder;
mod error;
pub(crate) mod file;
mod keys;
mod load;
pub mod properties;
mod secret;
mod url;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use self::builder::ServerConfigBuilder;
pub use self::error::ConfigError;
pub use self::properties::PropertiesError;
pub use self::secret::Secret;
pub use self::url::websocket_url;

/// How the connector authenticates to the Vantiq server.
///
/// `Debug` shows the user name but never a token or password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An access token (sent with the `validate` operation).
    Token(Secret),
    /// A user name and password (sent with the `authenticate` operation).
    UserPassword {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
}

/// TLS settings for `wss://` connections.
///
/// The default verifies server certificates against the built-in web roots, with no extra
/// certificate authority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Turn certificate verification off (`connectKWArgs={"disableSslVerification": true}`).
    /// Only for tests against servers with self-signed certificates.
    pub disable_verification: bool,
    /// A PEM file of extra certificate authorities to trust (key `caFile`).
    pub ca_file: Option<PathBuf>,
}

/// The connector's server configuration, read from `server.config` or built in code.
///
/// `Debug` output never shows the token, password or reconnect secret, and shows only the
/// keys of `connectKWArgs`.
#[derive(Clone)]
pub struct ServerConfig {
    target_server: String,
    websocket_url: String,
    credentials: Credentials,
    sources: Vec<String>,
    send_pings: bool,
    fail_on_connection_error: bool,
    tcp_probe_port: u16,
    tcp_probe_host: IpAddr,
    reconnect_secret: Option<Secret>,
    tls: TlsSettings,
    connect_kwargs: Option<Map<String, Value>>,
    origin: Option<PathBuf>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("target_server", &self.target_server)
            .field("websocket_url", &self.websocket_url)
            .field("credentials", &self.credentials)
            .field("sources", &self.sources)
            .field("send_pings", &self.send_pings)
            .field("fail_on_connection_error", &self.fail_on_connection_error)
            .field("tcp_probe_port", &self.tcp_probe_port)
            .field("tcp_probe_host", &self.tcp_probe_host)
            .field("reconnect_secret", &self.reconnect_secret)
            .field("tls", &self.tls)
            .field(
                "connect_kwargs_keys",
                &self
                    .connect_kwargs
                    .as_ref()
                    .map(|m| m.keys().collect::<Vec<_>>()),
            )
            .field("origin", &self.origin)
            .finish()
    }
}

impl ServerConfig {
    /// The health probe port when `tcpProbePort` is not set.
    pub const DEFAULT_TCP_PROBE_PORT: u16 = 8000;

    /// The health probe address when `tcpProbeHost` is not set: all IPv4 interfaces.
    pub const DEFAULT_TCP_PROBE_HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    /// Where `server.config` is looked for, relative to the working directory (or the
    /// directory given to [`ServerConfig::load_from_dir`]), in order. The first one that
    /// exists is used.
    pub const SEARCH_PATHS: [&'static str; 2] = ["serverConfig/server.config", "server.config"];

    /// The environment variable holding the access token when `authToken` is not in the
    /// file.
    pub const AUTH_TOKEN_ENV: &'static str = "CONNECTOR_AUTH_TOKEN";

    /// The WebSocket path used when `targetServer` does not already name one.
    pub const DEFAULT_WEBSOCKET_PATH: &'static str = "/api/v1/wsock/websocket";

    /// The server URL as written in the configuration (`targetServer`).
    pub fn target_server(&self) -> &str {
        &self.target_server
    }

    /// The WebSocket URL to connect to, rewritten from `targetServer` by
    /// [`websocket_url()`].
    pub fn websocket_url(&self) -> &str {
        &self.websocket_url
    }

    /// How to authenticate.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The names of the sources to serve, in the order given; never empty.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Whether to send WebSocket pings (`sendPings`).
    pub fn send_pings(&self) -> bool {
        self.send_pings
    }

    /// Whether to stop instead of retrying when a connection cannot be made
    /// (`failOnConnectionError`).
    pub fn fail_on_connection_error(&self) -> bool {
        self.fail_on_connection_error
    }

    /// The port of the TCP health probe (`tcpProbePort`, default
    /// [`DEFAULT_TCP_PROBE_PORT`](Self::DEFAULT_TCP_PROBE_PORT)).
    pub fn tcp_probe_port(&self) -> u16 {
        self.tcp_probe_port
    }

    /// The address the TCP health probe listens on (`tcpProbeHost`, an extension of this
    /// SDK; default `0.0.0.0` so that Kubernetes probes reach it).
    pub fn tcp_probe_host(&self) -> IpAddr {
        self.tcp_probe_host
    }

    /// The socket address of the TCP health probe: [`tcp_probe_host`](Self::tcp_probe_host)
    /// and [`tcp_probe_port`](Self::tcp_probe_port) together.
    pub fn tcp_probe_addr(&self) -> SocketAddr {
        SocketAddr::new(self.tcp_probe_host, self.tcp_probe_port)
    }

    /// The fixed part of the reconnect secret (`reconnectSecret`), if any.
    pub fn reconnect_secret(&self) -> Option<&Secret> {
        self.reconnect_secret.as_ref()
    }

    /// TLS settings for `wss://` connections.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// The `connectKWArgs` JSON object, if given (including `disableSslVerification`,
    /// already applied to [`tls`](Self::tls)). Its other entries are Python-specific
    /// arguments that this SDK keeps but does not interpret.
    pub fn connect_kwargs(&self) -> Option<&Map<String, Value>> {
        self.connect_kwargs.as_ref()
    }

    /// The file the configuration was loaded from; `None` when built in code or from text.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }
}

#[cfg(test)]
mod tests;
