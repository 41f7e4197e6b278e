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
//! Keys are case-sensitive, spelled as Vantiq writes them. Keys this SDK does not know
//! are the connector's own: read them with [`ServerConfig::get`] and
//! [`ServerConfig::properties`].
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
//! | `connectKWArgs` | a JSON object of the Python SDK's WebSocket keywords; `"disableSslVerification": true` turns TLS certificate checks off, and the others are mapped as [`ConnectOptions`] says |
//! | `caFile` | (extension) a PEM file of extra certificate authorities to trust, besides the trust store |
//! | `trustStore` | (extension) `platform` (default: the machine's trust store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) or `builtin` (the web roots built into the SDK, for minimal images) |
//! | `proxy` | (extension) an HTTP proxy URL `http://[user:password@]host:port`, or `none` to ignore the proxy environment variables (see [`ProxySetting`]) |
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
mod connect_kwargs;
mod error;
pub(crate) mod file;
mod keys;
mod load;
mod metrics;
mod no_proxy;
pub mod properties;
mod proxy;
mod secret;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use self::builder::ServerConfigBuilder;
pub use self::connect_kwargs::ConnectOptions;
pub use self::error::ConfigError;
pub use self::no_proxy::NoProxy;
pub use self::properties::PropertiesError;
pub use self::proxy::{ProxyCredentials, ProxyError, ProxySetting, ProxyUrl};
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
/// The default verifies server certificates against the machine's trust store, with no
/// extra certificate authority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// Turn certificate verification off (`connectKWArgs={"disableSslVerification": true}`).
    /// Only for tests against servers with self-signed certificates.
    pub disable_verification: bool,
    /// A PEM file of extra certificate authorities to trust (key `caFile`), in addition
    /// to the trust store.
    pub ca_file: Option<PathBuf>,
    /// Which roots of trust to start from (key `trustStore`).
    pub trust_store: TrustStore,
}

/// The certificate authorities a `wss://` connection trusts, before `caFile` adds its
/// own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustStore {
    /// What the machine trusts (`trustStore=platform`, the default), as Python and Java
    /// do: the files named by the environment variables `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when either is set, else the system's store (on Linux the
    /// distribution's CA bundle). A machine with an empty store falls back to
    /// [`TrustStore::BuiltIn`], with a warning.
    #[default]
    Platform,
    /// The Mozilla web roots built into the SDK (`trustStore=builtin`): for minimal
    /// images without a CA bundle. `SSL_CERT_FILE` and `SSL_CERT_DIR` are not read.
    BuiltIn,
}

impl TrustStore {
    /// Parses a `trustStore` value: `platform` or `builtin`, in any case.
    pub fn parse(value: &str) -> Option<TrustStore> {
        if value.eq_ignore_ascii_case("platform") {
            Some(TrustStore::Platform)
        } else if value.eq_ignore_ascii_case("builtin") {
            Some(TrustStore::BuiltIn)
        } else {
            None
        }
    }
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
    proxy: ProxySetting,
    connect_kwargs: Option<Map<String, Value>>,
    connect_options: ConnectOptions,
    /// Every key of the file (or set in code) but the secret ones, as written.
    properties: BTreeMap<String, String>,
    origin: Option<PathBuf>,
    metrics: metrics::MetricsKeys,
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
            .field("proxy", &self.proxy)
            .field("metrics", &self.metrics)
            .field(
                "connect_kwargs_keys",
                &self
                    .connect_kwargs
                    .as_ref()
                    .map(|m| m.keys().collect::<Vec<_>>()),
            )
            .field("connect_options", &self.connect_options)
            .field("property_keys", &self.properties.keys().collect::<Vec<_>>())
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

    /// Where the HTTP proxy comes from (key `proxy`, else `connectKWArgs`' `proxy`,
    /// else [`ProxySetting::FromEnvironment`]). `Settings::proxy`, when set, wins over it.
    pub fn proxy(&self) -> &ProxySetting {
        &self.proxy
    }

    /// The `connectKWArgs` JSON object as written, if given. What this SDK applies of it
    /// is in [`tls`](Self::tls), [`proxy`](Self::proxy) and
    /// [`connect_options`](Self::connect_options).
    pub fn connect_kwargs(&self) -> Option<&Map<String, Value>> {
        self.connect_kwargs.as_ref()
    }

    /// The WebSocket keywords of `connectKWArgs`, typed (see [`ConnectOptions`]).
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.connect_options
    }

    /// The value of a key as written (not trimmed), for a connector's own keys: Python's
    /// `get_server_config()[key]`. Known keys are returned too, except the secret ones
    /// (`authToken`, `password`, `reconnectSecret`: see [`credentials`](Self::credentials)
    /// and [`reconnect_secret`](Self::reconnect_secret)), which give `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::ServerConfig;
    ///
    /// let text = "targetServer=http://h\nsources=s\nauthToken=t\npollSeconds = 5\n";
    /// let config = ServerConfig::from_properties_str(text, None, None)?;
    /// assert_eq!(config.get("pollSeconds"), Some("5"));
    /// assert_eq!(config.get("sources"), Some("s"));
    /// assert_eq!(config.get("authToken"), None);
    /// let keys: Vec<&str> = config.properties().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["pollSeconds", "sources", "targetServer"]);
    /// # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Every key and value (as written), sorted by key, without the secret keys (see
    /// [`get`](Self::get)).
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The file the configuration was loaded from; `None` when built in code or from text.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }
}

#[cfg(test)]
mod tests;
