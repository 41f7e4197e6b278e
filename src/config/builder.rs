//! [`ServerConfigBuilder`], and the validation a file and a builder share.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::url::rewrite_url;
use super::{
    keys, ConfigError, ConnectOptions, Credentials, ProxySetting, Secret, ServerConfig,
    TlsSettings, TrustStore,
};

impl ServerConfig {
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
            metrics: Default::default(),
            reconnect_secret: None,
            tls: TlsSettings::default(),
            proxy: ProxySetting::default(),
            properties: BTreeMap::new(),
        }
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
    pub(super) metrics: super::metrics::MetricsKeys,
    reconnect_secret: Option<String>,
    tls: TlsSettings,
    proxy: ProxySetting,
    properties: BTreeMap<String, String>,
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
            .field("proxy", &self.proxy)
            .field("property_keys", &self.properties.keys().collect::<Vec<_>>())
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

    /// Which roots of trust `wss://` connections start from (default
    /// [`TrustStore::Platform`]).
    #[must_use]
    pub fn trust_store(mut self, trust_store: TrustStore) -> Self {
        self.tls.trust_store = trust_store;
        self
    }

    /// Where the HTTP proxy comes from (default [`ProxySetting::FromEnvironment`]).
    #[must_use]
    pub fn proxy(mut self, proxy: ProxySetting) -> Self {
        self.proxy = proxy;
        self
    }

    /// Sets one of the connector's own keys, returned by [`ServerConfig::get`]. The SDK
    /// does not interpret it (use the other methods for the SDK's keys), and the secret
    /// keys (`authToken`, `password`, `reconnectSecret`) are not kept.
    #[must_use]
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
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
            proxy: self.proxy,
            connect_kwargs: None,
            connect_options: ConnectOptions::default(),
            properties: self.properties,
            metrics: self.metrics,
        }
        .validate(None)
    }
}

/// Values gathered from a file or a builder, before the validation they share.
pub(super) struct Raw {
    pub(super) target_server: String,
    pub(super) token: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) sources: Vec<String>,
    pub(super) send_pings: bool,
    pub(super) fail_on_connection_error: bool,
    pub(super) tcp_probe_port: Option<u16>,
    pub(super) tcp_probe_host: Option<IpAddr>,
    pub(super) reconnect_secret: Option<String>,
    pub(super) tls: TlsSettings,
    pub(super) proxy: ProxySetting,
    pub(super) connect_kwargs: Option<Map<String, Value>>,
    pub(super) connect_options: ConnectOptions,
    pub(super) properties: BTreeMap<String, String>,
    pub(super) metrics: super::metrics::MetricsKeys,
}

impl Raw {
    pub(super) fn validate(self, path: Option<PathBuf>) -> Result<ServerConfig, ConfigError> {
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
            proxy: self.proxy,
            connect_kwargs: self.connect_kwargs,
            connect_options: self.connect_options,
            properties: self
                .properties
                .into_iter()
                .filter(|(k, _)| !keys::SECRET.contains(&k.as_str()))
                .collect(),
            origin: path,
            metrics: self.metrics,
        })
    }
}

pub(super) fn validate_sources(
    sources: &[String],
    path: &Option<PathBuf>,
) -> Result<(), ConfigError> {
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
