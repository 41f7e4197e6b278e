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
//! | `metricsPort` | (extension) port of the HTTP endpoint serving `/metrics`, `/healthz` and `/readyz` (default: none) |
//! | `metricsAddress` | (extension) IP address that endpoint listens on (default `0.0.0.0`) |
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

mod metrics;
pub mod properties;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use self::properties::PropertiesError;
pub use self::secret::Secret;

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
            .field(
                "connect_kwargs_keys",
                &self
                    .connect_kwargs
                    .as_ref()
                    .map(|m| m.keys().collect::<Vec<_>>()),
            )
            .field("origin", &self.origin)
            .field("metrics", &self.metrics)
            .finish()
    }
}

/// Property keys, as Vantiq spells them.
mod keys {
    pub(super) const TARGET_SERVER: &str = "targetServer";
    pub(super) const AUTH_TOKEN: &str = "authToken";
    pub(super) const USERNAME: &str = "username";
    pub(super) const PASSWORD: &str = "password";
    pub(super) const SOURCES: &str = "sources";
    pub(super) const SEND_PINGS: &str = "sendPings";
    pub(super) const FAIL_ON_CONNECTION_ERROR: &str = "failOnConnectionError";
    pub(super) const TCP_PROBE_PORT: &str = "tcpProbePort";
    pub(super) const TCP_PROBE_HOST: &str = "tcpProbeHost";
    pub(super) const RECONNECT_SECRET: &str = "reconnectSecret";
    pub(super) const CONNECT_KW_ARGS: &str = "connectKWArgs";
    pub(super) const CA_FILE: &str = "caFile";
    pub(super) const DISABLE_SSL_VERIFICATION: &str = "disableSslVerification";

    pub(super) const ALL: [&str; 14] = [
        super::metrics::METRICS_PORT,
        super::metrics::METRICS_ADDRESS,
        TARGET_SERVER,
        AUTH_TOKEN,
        USERNAME,
        PASSWORD,
        SOURCES,
        SEND_PINGS,
        FAIL_ON_CONNECTION_ERROR,
        TCP_PROBE_PORT,
        TCP_PROBE_HOST,
        RECONNECT_SECRET,
        CONNECT_KW_ARGS,
        CA_FILE,
    ];
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

    /// Loads `server.config` from the working directory (see
    /// [`SEARCH_PATHS`](Self::SEARCH_PATHS)), taking the token from the environment
    /// variable `CONNECTOR_AUTH_TOKEN` when the file has no `authToken`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotFound`] when no file exists, [`ConfigError::Io`] when one cannot
    /// be read, and any validation error of [`ServerConfig::from_properties_str`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use vantiq_connector_sdk::config::ServerConfig;
    ///
    /// let config = ServerConfig::load()?;
    /// println!("serving {:?} at {}", config.sources(), config.websocket_url());
    /// # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
    /// ```
    pub fn load() -> Result<ServerConfig, ConfigError> {
        Self::load_from_dir(Path::new(""))
    }

    /// Like [`ServerConfig::load`], looking for the [`SEARCH_PATHS`](Self::SEARCH_PATHS)
    /// under `dir` instead of the working directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NotFound`] (listing the paths tried) when no file exists,
    /// [`ConfigError::Io`] when one exists but cannot be read, and any validation error
    /// of [`ServerConfig::from_properties_str`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::{ConfigError, ServerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(matches!(ServerConfig::load_from_dir(dir.path()), Err(ConfigError::NotFound { .. })));
    ///
    /// std::fs::write(
    ///     dir.path().join("server.config"),
    ///     "targetServer=http://localhost:8080\nsources=s\nauthToken=t\n",
    /// )
    /// .unwrap();
    /// let config = ServerConfig::load_from_dir(dir.path())?;
    /// assert_eq!(config.websocket_url(), "ws://localhost:8080/api/v1/wsock/websocket");
    /// assert_eq!(config.origin(), Some(dir.path().join("server.config").as_path()));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn load_from_dir(dir: &Path) -> Result<ServerConfig, ConfigError> {
        let env_token = std::env::var(Self::AUTH_TOKEN_ENV).ok();
        let mut tried = Vec::new();
        for candidate in Self::SEARCH_PATHS {
            let path = dir.join(candidate);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let text = decode(bytes);
                    return Self::from_properties_str(&text, Some(&path), env_token);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => tried.push(path),
                Err(source) => return Err(ConfigError::Io { path, source }),
            }
        }
        Err(ConfigError::NotFound { tried })
    }

    /// Loads the configuration from the given file, with the same environment fallback
    /// for the token as [`ServerConfig::load`].
    ///
    /// The file is read as UTF-8 (a leading byte-order mark is skipped); a file that is
    /// not valid UTF-8 is read as ISO-8859-1, the encoding Java uses for properties files.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] when the file cannot be read (including when it does not
    /// exist), and any validation error of [`ServerConfig::from_properties_str`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::{ConfigError, ServerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("my.config");
    /// std::fs::write(&path, "targetServer=https://x.example\nsources=a,b\nauthToken=t").unwrap();
    /// assert_eq!(ServerConfig::from_file(&path)?.sources(), ["a", "b"]);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let env_token = std::env::var(Self::AUTH_TOKEN_ENV).ok();
        Self::from_properties_str(&decode(bytes), Some(path), env_token)
    }

    /// Builds the configuration from properties text: the pure core of the loaders.
    ///
    /// `origin` is the file the text came from, named in errors (`None` gives "in code")
    /// and returned by [`ServerConfig::origin`]. `env_token` is the value of
    /// `CONNECTOR_AUTH_TOKEN`, used when the text has no (or an empty) `authToken`.
    ///
    /// # Errors
    ///
    /// Every [`ConfigError`] except `NotFound` and `Io`: malformed properties text, a
    /// missing `targetServer` or `sources`, an invalid URL, port, host, boolean or
    /// `connectKWArgs`, bad source names, or no credentials at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use vantiq_connector_sdk::config::{ConfigError, ServerConfig};
    ///
    /// let err = ServerConfig::from_properties_str(
    ///     "sources=a",
    ///     Some(Path::new("serverConfig/server.config")),
    ///     None,
    /// )
    /// .unwrap_err();
    /// assert_eq!(err.to_string(), "serverConfig/server.config: `targetServer` is missing");
    /// ```
    pub fn from_properties_str(
        text: &str,
        origin: Option<&Path>,
        env_token: Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let path = origin.map(Path::to_path_buf);
        let props: HashMap<String, String> =
            properties::parse_map(text).map_err(|source| ConfigError::Properties {
                path: path.clone(),
                source,
            })?;
        warn_about_miscased_keys(&props, &path);

        // Trimmed, non-empty value of a key.
        let get = |key: &str| -> Option<&str> {
            props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
        };
        // As written, non-empty value of a key.
        let get_raw = |key: &str| -> Option<&str> {
            props.get(key).map(String::as_str).filter(|v| !v.is_empty())
        };

        let target_server = get(keys::TARGET_SERVER)
            .ok_or_else(|| ConfigError::MissingTargetServer { path: path.clone() })?
            .to_owned();

        let sources_text =
            get(keys::SOURCES).ok_or_else(|| ConfigError::MissingSources { path: path.clone() })?;
        let sources: Vec<String> = sources_text
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();

        let token = get(keys::AUTH_TOKEN).map(str::to_owned).or_else(|| {
            env_token
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        let username = get_raw(keys::USERNAME).map(str::to_owned);
        let password = get_raw(keys::PASSWORD).map(str::to_owned);

        let send_pings = parse_bool(keys::SEND_PINGS, get(keys::SEND_PINGS), &path)?;
        let fail_on_connection_error = parse_bool(
            keys::FAIL_ON_CONNECTION_ERROR,
            get(keys::FAIL_ON_CONNECTION_ERROR),
            &path,
        )?;
        let tcp_probe_port = match get(keys::TCP_PROBE_PORT) {
            None => None,
            Some(v) => Some(v.parse::<u16>().map_err(|_| ConfigError::InvalidPort {
                path: path.clone(),
                key: keys::TCP_PROBE_PORT.to_owned(),
                value: v.to_owned(),
            })?),
        };
        let tcp_probe_host = match get(keys::TCP_PROBE_HOST) {
            None => None,
            Some(v) => Some(parse_ip(v).ok_or_else(|| ConfigError::InvalidHost {
                path: path.clone(),
                key: keys::TCP_PROBE_HOST.to_owned(),
                value: v.to_owned(),
            })?),
        };
        let reconnect_secret = get_raw(keys::RECONNECT_SECRET).map(str::to_owned);
        let metrics = metrics::MetricsKeys::parse(
            get(metrics::METRICS_PORT),
            get(metrics::METRICS_ADDRESS),
            &path,
        )?;

        let (connect_kwargs, disable_verification) = match get(keys::CONNECT_KW_ARGS) {
            None => (None, false),
            Some(json) => {
                let (map, disable) = parse_connect_kwargs(json).map_err(|reason| {
                    ConfigError::InvalidConnectKwArgs {
                        path: path.clone(),
                        reason,
                    }
                })?;
                (Some(map), disable)
            }
        };
        let ca_file = get(keys::CA_FILE).map(PathBuf::from);

        Raw {
            target_server,
            token,
            username,
            password,
            sources,
            send_pings,
            fail_on_connection_error,
            tcp_probe_port,
            tcp_probe_host,
            reconnect_secret,
            tls: TlsSettings {
                disable_verification,
                ca_file,
            },
            connect_kwargs,
            metrics,
        }
        .validate(path)
    }

    /// Starts building a configuration in code, for the server at `target_server`
    /// (rewritten as in a file). The builder does not read the environment.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::ServerConfig;
    ///
    /// let config = ServerConfig::builder("https://dev.vantiq.com")
    ///     .token("secret-token")
    ///     .source("pumps")
    ///     .source("valves")
    ///     .send_pings(true)
    ///     .build()?;
    /// assert_eq!(config.sources(), ["pumps", "valves"]);
    /// assert!(!format!("{config:?}").contains("secret-token"));
    /// # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
    /// ```
    #[must_use]
    pub fn builder(target_server: impl Into<String>) -> ServerConfigBuilder {
        ServerConfigBuilder {
            target_server: target_server.into(),
            token: None,
            user_password: None,
            sources: Vec::new(),
            send_pings: false,
            fail_on_connection_error: false,
            tcp_probe_port: None,
            tcp_probe_host: None,
            reconnect_secret: None,
            tls: TlsSettings::default(),
            metrics: Default::default(),
        }
    }

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

/// Builds a [`ServerConfig`] in code; see [`ServerConfig::builder`].
///
/// [`build`](Self::build) applies the same validation as a `server.config` file; errors
/// say "in code" where a file error names the file.
#[derive(Clone)]
pub struct ServerConfigBuilder {
    target_server: String,
    token: Option<String>,
    user_password: Option<(String, String)>,
    sources: Vec<String>,
    send_pings: bool,
    fail_on_connection_error: bool,
    tcp_probe_port: Option<u16>,
    tcp_probe_host: Option<IpAddr>,
    reconnect_secret: Option<String>,
    tls: TlsSettings,
    metrics: metrics::MetricsKeys,
}

impl fmt::Debug for ServerConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfigBuilder")
            .field("target_server", &self.target_server)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field(
                "user_password",
                &self.user_password.as_ref().map(|(u, _)| (u, "***")),
            )
            .field("sources", &self.sources)
            .field("send_pings", &self.send_pings)
            .field("fail_on_connection_error", &self.fail_on_connection_error)
            .field("tcp_probe_port", &self.tcp_probe_port)
            .field("tcp_probe_host", &self.tcp_probe_host)
            .field(
                "reconnect_secret",
                &self.reconnect_secret.as_ref().map(|_| "***"),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

impl ServerConfigBuilder {
    /// Authenticates with an access token (wins over [`user_password`](Self::user_password);
    /// an empty token counts as none).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Authenticates with a user name and password.
    #[must_use]
    pub fn user_password(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user_password = Some((username.into(), password.into()));
        self
    }

    /// Adds a source to serve; call once per source.
    #[must_use]
    pub fn source(mut self, name: impl Into<String>) -> Self {
        self.sources.push(name.into());
        self
    }

    /// Adds several sources to serve.
    #[must_use]
    pub fn sources<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sources.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether to send WebSocket pings (default `false`).
    #[must_use]
    pub fn send_pings(mut self, send_pings: bool) -> Self {
        self.send_pings = send_pings;
        self
    }

    /// Whether to stop instead of retrying when a connection cannot be made (default
    /// `false`).
    #[must_use]
    pub fn fail_on_connection_error(mut self, fail: bool) -> Self {
        self.fail_on_connection_error = fail;
        self
    }

    /// The port of the TCP health probe (default 8000).
    #[must_use]
    pub fn tcp_probe_port(mut self, port: u16) -> Self {
        self.tcp_probe_port = Some(port);
        self
    }

    /// The address the TCP health probe listens on (default `0.0.0.0`).
    #[must_use]
    pub fn tcp_probe_host(mut self, host: IpAddr) -> Self {
        self.tcp_probe_host = Some(host);
        self
    }

    /// A fixed part of the reconnect secret (an empty one counts as none).
    #[must_use]
    pub fn reconnect_secret(mut self, secret: impl Into<String>) -> Self {
        self.reconnect_secret = Some(secret.into());
        self
    }

    /// Turns TLS certificate verification off (only for test servers).
    #[must_use]
    pub fn disable_tls_verification(mut self, disable: bool) -> Self {
        self.tls.disable_verification = disable;
        self
    }

    /// A PEM file of extra certificate authorities to trust.
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Validates and builds the configuration.
    ///
    /// # Errors
    ///
    /// The same validation errors as a file, naming "in code": an invalid or empty
    /// target server, no sources, an empty, blank-containing or duplicate source name,
    /// no credentials, or a user name without a password (or the reverse).
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::config::{ConfigError, ServerConfig};
    ///
    /// let err = ServerConfig::builder("https://dev.vantiq.com").token("t").build().unwrap_err();
    /// assert!(matches!(err, ConfigError::MissingSources { path: None }));
    /// assert_eq!(err.to_string(), "in code: `sources` is missing or empty (expected comma-separated source names)");
    /// ```
    pub fn build(self) -> Result<ServerConfig, ConfigError> {
        let (username, password) = match self.user_password {
            Some((u, p)) => (Some(u), Some(p)),
            None => (None, None),
        };
        Raw {
            target_server: self.target_server.trim().to_owned(),
            token: self.token,
            username,
            password,
            sources: self.sources,
            send_pings: self.send_pings,
            fail_on_connection_error: self.fail_on_connection_error,
            tcp_probe_port: self.tcp_probe_port,
            tcp_probe_host: self.tcp_probe_host,
            reconnect_secret: self.reconnect_secret,
            tls: self.tls,
            connect_kwargs: None,
            metrics: self.metrics,
        }
        .validate(None)
    }
}

/// Values gathered from a file or a builder, before the validation they share.
struct Raw {
    target_server: String,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    sources: Vec<String>,
    send_pings: bool,
    fail_on_connection_error: bool,
    tcp_probe_port: Option<u16>,
    tcp_probe_host: Option<IpAddr>,
    reconnect_secret: Option<String>,
    tls: TlsSettings,
    connect_kwargs: Option<Map<String, Value>>,
    metrics: metrics::MetricsKeys,
}

impl Raw {
    fn validate(self, path: Option<PathBuf>) -> Result<ServerConfig, ConfigError> {
        if self.target_server.is_empty() {
            return Err(ConfigError::MissingTargetServer { path });
        }
        let websocket_url =
            rewrite_url(&self.target_server).map_err(|reason| ConfigError::InvalidUrl {
                path: path.clone(),
                url: self.target_server.clone(),
                reason,
            })?;

        validate_sources(&self.sources, &path)?;

        let token = self.token.filter(|t| !t.is_empty());
        let username = self.username.filter(|u| !u.is_empty());
        let password = self.password.filter(|p| !p.is_empty());
        let credentials = match (token, username, password) {
            (Some(token), _, _) => Credentials::Token(Secret::new(token)),
            (None, Some(username), Some(password)) => Credentials::UserPassword {
                username,
                password: Secret::new(password),
            },
            (None, Some(_), None) => {
                return Err(ConfigError::IncompleteUserPassword {
                    path,
                    missing: keys::PASSWORD,
                })
            }
            (None, None, Some(_)) => {
                return Err(ConfigError::IncompleteUserPassword {
                    path,
                    missing: keys::USERNAME,
                })
            }
            (None, None, None) => return Err(ConfigError::MissingCredentials { path }),
        };

        Ok(ServerConfig {
            target_server: self.target_server,
            websocket_url,
            credentials,
            sources: self.sources,
            send_pings: self.send_pings,
            fail_on_connection_error: self.fail_on_connection_error,
            tcp_probe_port: self
                .tcp_probe_port
                .unwrap_or(ServerConfig::DEFAULT_TCP_PROBE_PORT),
            tcp_probe_host: self
                .tcp_probe_host
                .unwrap_or(ServerConfig::DEFAULT_TCP_PROBE_HOST),
            reconnect_secret: self
                .reconnect_secret
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            tls: self.tls,
            connect_kwargs: self.connect_kwargs,
            origin: path,
            metrics: self.metrics,
        })
    }
}

fn validate_sources(sources: &[String], path: &Option<PathBuf>) -> Result<(), ConfigError> {
    if sources.is_empty() || (sources.len() == 1 && sources[0].trim().is_empty()) {
        return Err(ConfigError::MissingSources { path: path.clone() });
    }
    for (i, name) in sources.iter().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::EmptySource {
                path: path.clone(),
                position: i + 1,
                value: sources.join(","),
            });
        }
        if name.chars().any(char::is_whitespace) {
            return Err(ConfigError::InvalidSource {
                path: path.clone(),
                name: name.clone(),
                reason: "a source name cannot contain whitespace".to_owned(),
            });
        }
        if sources[..i].contains(name) {
            return Err(ConfigError::DuplicateSource {
                path: path.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

fn parse_bool(key: &str, value: Option<&str>, path: &Option<PathBuf>) -> Result<bool, ConfigError> {
    match value {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ConfigError::InvalidBool {
            path: path.clone(),
            key: key.to_owned(),
            value: v.to_owned(),
        }),
    }
}

fn parse_ip(value: &str) -> Option<IpAddr> {
    // Accept IPv6 addresses in brackets too, as they are written in URLs.
    let v = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    v.parse().ok()
}

fn parse_connect_kwargs(json: &str) -> Result<(Map<String, Value>, bool), String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object, found {}",
            json_kind(&value)
        ));
    };
    let disable = match map.get(keys::DISABLE_SSL_VERIFICATION) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "`{}` must be true or false, found {}",
                keys::DISABLE_SSL_VERIFICATION,
                json_kind(other)
            ))
        }
    };
    Ok((map, disable))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Warns about keys that differ from a known key only by case: they are ignored.
fn warn_about_miscased_keys(props: &HashMap<String, String>, path: &Option<PathBuf>) {
    for key in props.keys() {
        if let Some(known) = keys::ALL
            .iter()
            .find(|k| **k != key && k.eq_ignore_ascii_case(key))
        {
            tracing::warn!(
                "{}: ignoring key `{key}`; did you mean `{known}`? (keys are case-sensitive)",
                origin_display(path)
            );
        }
    }
}

/// Decodes a configuration file: UTF-8 without BOM, else ISO-8859-1.
fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            s
        }
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// Rewrites a Vantiq server URL into the WebSocket URL a connector connects to.
///
/// * The scheme `http` becomes `ws` and `https` becomes `wss`; `ws` and `wss` are kept
///   (schemes are case-insensitive and written in lower case).
/// * The host and port are kept as written.
/// * Unless the path already ends with `/api/v<N>/wsock/websocket` (`<N>` digits, any
///   prefix allowed, as with the Python SDK), the path becomes `/api/v1/wsock/websocket`.
/// * A query string is kept; a fragment is dropped (WebSocket URLs cannot have one).
///
/// # Errors
///
/// [`ConfigError::InvalidUrl`] (with `path: None`) when the URL is not absolute, its
/// scheme is not one of `http`, `https`, `ws`, `wss`, it has no host, an invalid port,
/// user information (`user:pass@`), or whitespace.
///
/// # Examples
///
/// ```
/// use vantiq_connector_sdk::config::websocket_url;
///
/// assert_eq!(websocket_url("https://dev.vantiq.com/")?, "wss://dev.vantiq.com/api/v1/wsock/websocket");
/// assert_eq!(websocket_url("http://localhost:8080")?, "ws://localhost:8080/api/v1/wsock/websocket");
/// assert_eq!(
///     websocket_url("wss://h/proxy/api/v2/wsock/websocket")?,
///     "wss://h/proxy/api/v2/wsock/websocket"
/// );
/// assert!(websocket_url("ftp://dev.vantiq.com").is_err());
/// # Ok::<(), vantiq_connector_sdk::config::ConfigError>(())
/// ```
pub fn websocket_url(target_server: &str) -> Result<String, ConfigError> {
    rewrite_url(target_server).map_err(|reason| ConfigError::InvalidUrl {
        path: None,
        url: target_server.to_owned(),
        reason,
    })
}

fn rewrite_url(input: &str) -> Result<String, String> {
    if input.is_empty() {
        return Err("the URL is empty".to_owned());
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains whitespace or control characters".to_owned());
    }
    let (scheme, rest) = input.split_once("://").ok_or_else(|| {
        "not an absolute URL (expected for example `https://dev.vantiq.com`)".to_owned()
    })?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => {
            return Err(format!(
                "the scheme `{scheme}` is not http, https, ws or wss"
            ))
        }
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    check_authority(authority)?;
    let tail = tail.split('#').next().unwrap_or("");
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query).filter(|q| !q.is_empty())),
        None => (tail, None),
    };
    let path = if is_websocket_path(path) {
        path
    } else {
        ServerConfig::DEFAULT_WEBSOCKET_PATH
    };
    let mut url = format!("{ws_scheme}://{authority}{path}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

fn check_authority(authority: &str) -> Result<(), String> {
    if authority.contains('@') {
        return Err(
            "user information (`user@`) in the URL is not supported; use `authToken`, or `username` and `password`"
                .to_owned(),
        );
    }
    let port = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the host".to_owned())?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("`{host}` is not a valid IPv6 address"))?;
        if after.is_empty() {
            None
        } else {
            Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{after}` after the host"))?,
            )
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '%')))
        {
            return Err(format!("invalid character `{c}` in the host `{host}`"));
        }
        port
    };
    if let Some(port) = port {
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err(format!("invalid port `{port}`"));
        }
    }
    Ok(())
}

fn is_websocket_path(path: &str) -> bool {
    path.strip_suffix("/wsock/websocket")
        .and_then(|prefix| prefix.rsplit_once("/api/v"))
        .is_some_and(|(_, version)| {
            !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Names where a configuration came from in messages: the file, or "in code".
fn origin_display(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "in code".to_owned(),
    }
}

fn paths_display(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a server configuration could not be loaded or built.
///
/// Every message starts with the file concerned (or "in code" for the builder and for
/// text without origin) and names the key at fault. Messages never contain a token or
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// None of the files searched exists.
    #[error("no server.config found (tried {})", paths_display(.tried))]
    NotFound {
        /// The paths looked at, in order.
        tried: Vec<PathBuf>,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The text is not valid properties text (a malformed `\uXXXX` escape).
    #[error("{}: {source}", origin_display(.path))]
    Properties {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The parse error, with its line number.
        source: PropertiesError,
    },
    /// `targetServer` is absent or empty.
    #[error("{}: `targetServer` is missing", origin_display(.path))]
    MissingTargetServer {
        /// The file, if any.
        path: Option<PathBuf>,
    },
    /// `sources` is absent or empty.
    #[error(
        "{}: `sources` is missing or empty (expected comma-separated source names)",
        origin_display(.path)
    )]
    MissingSources {
        /// The file, if any.
        path: Option<PathBuf>,
    },
    /// `sources` has an empty entry, e.g. `a,,b` or a trailing comma.
    #[error(
        "{}: `sources` entry {position} is empty in `{value}` (stray comma?)",
        origin_display(.path)
    )]
    EmptySource {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The 1-based position of the empty entry.
        position: usize,
        /// The whole `sources` value.
        value: String,
    },
    /// A source name is not acceptable (it contains whitespace).
    #[error("{}: invalid source name `{name}` in `sources`: {reason}", origin_display(.path))]
    InvalidSource {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A source is listed twice.
    #[error("{}: source `{name}` is listed twice in `sources`", origin_display(.path))]
    DuplicateSource {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The name.
        name: String,
    },
    /// `targetServer` is not a usable server URL.
    #[error("{}: `targetServer` value `{url}` is not a valid server URL: {reason}", origin_display(.path))]
    InvalidUrl {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The URL as written.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A port is not a number from 0 to 65535.
    #[error("{}: `{key}` must be a port number from 0 to 65535, not `{value}`", origin_display(.path))]
    InvalidPort {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A host is not an IP address.
    #[error("{}: `{key}` must be an IP address such as 0.0.0.0 or ::, not `{value}`", origin_display(.path))]
    InvalidHost {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// A boolean is neither `true` nor `false`.
    #[error("{}: `{key}` must be `true` or `false`, not `{value}`", origin_display(.path))]
    InvalidBool {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },
    /// No token and no user name and password.
    #[error(
        "{}: no credentials: set `authToken` (or the environment variable CONNECTOR_AUTH_TOKEN), or `username` and `password`",
        origin_display(.path)
    )]
    MissingCredentials {
        /// The file, if any.
        path: Option<PathBuf>,
    },
    /// Only one of `username` and `password` is set (and no token).
    #[error("{}: `{missing}` is missing (`username` and `password` go together)", origin_display(.path))]
    IncompleteUserPassword {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The missing key: `username` or `password`.
        missing: &'static str,
    },
    /// `connectKWArgs` is not a JSON object, or its `disableSslVerification` is not a
    /// boolean.
    #[error("{}: invalid `connectKWArgs`: {reason}", origin_display(.path))]
    InvalidConnectKwArgs {
        /// The file, if any.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// The file the error is about, if any (`None` for the builder, text without origin,
    /// and [`ConfigError::NotFound`]).
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigError::NotFound { .. } => None,
            ConfigError::Io { path, .. } => Some(path),
            ConfigError::Properties { path, .. }
            | ConfigError::MissingTargetServer { path }
            | ConfigError::MissingSources { path }
            | ConfigError::EmptySource { path, .. }
            | ConfigError::InvalidSource { path, .. }
            | ConfigError::DuplicateSource { path, .. }
            | ConfigError::InvalidUrl { path, .. }
            | ConfigError::InvalidPort { path, .. }
            | ConfigError::InvalidHost { path, .. }
            | ConfigError::InvalidBool { path, .. }
            | ConfigError::MissingCredentials { path }
            | ConfigError::IncompleteUserPassword { path, .. }
            | ConfigError::InvalidConnectKwArgs { path, .. } => path.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests;
