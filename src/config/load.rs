//! Loading `server.config`: finding the file, decoding it, and reading its keys.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::builder::Raw;
use super::file::{self, origin_display};
use super::{
    connect_kwargs, keys, properties, ConfigError, ConnectOptions, ProxySetting, ServerConfig,
    TlsSettings, TrustStore,
};

impl ServerConfig {
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
            match file::read_text(&path) {
                Ok(text) => return Self::from_properties_str(&text, Some(&path), env_token),
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
        let text = file::read_text(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let env_token = std::env::var(Self::AUTH_TOKEN_ENV).ok();
        Self::from_properties_str(&text, Some(path), env_token)
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
        let metrics = super::metrics::MetricsKeys::parse(
            get(super::metrics::METRICS_PORT),
            get(super::metrics::METRICS_ADDRESS),
            &path,
        )?;

        let (connect_kwargs, connect_options, disable_verification) =
            match get(keys::CONNECT_KW_ARGS) {
                None => (None, ConnectOptions::default(), false),
                Some(json) => {
                    let parsed = connect_kwargs::parse(json).map_err(|reason| {
                        ConfigError::InvalidConnectKwArgs {
                            path: path.clone(),
                            reason,
                        }
                    })?;
                    if !parsed.unknown.is_empty() {
                        tracing::warn!(
                            "{}: `connectKWArgs` keywords not applied by this SDK: {}",
                            origin_display(&path),
                            parsed.unknown.join(", ")
                        );
                    }
                    (
                        Some(parsed.map),
                        parsed.options,
                        parsed.disable_verification,
                    )
                }
            };
        // connectKWArgs' `ping_interval: null` turns pings off.
        let send_pings = send_pings && connect_options.ping_interval != Some(None);
        let ca_file = get(keys::CA_FILE).map(PathBuf::from);
        let trust_store = match get(keys::TRUST_STORE) {
            None => TrustStore::default(),
            Some(v) => TrustStore::parse(v).ok_or_else(|| ConfigError::InvalidValue {
                path: path.clone(),
                key: keys::TRUST_STORE,
                value: v.to_owned(),
                expected: "`platform` or `builtin`",
            })?,
        };
        // The `proxy` key wins over connectKWArgs' `proxy`.
        let proxy = match get(keys::PROXY) {
            Some(v) => ProxySetting::parse(v).map_err(|source| ConfigError::InvalidProxy {
                path: path.clone(),
                source,
            })?,
            None => connect_options.proxy.clone().unwrap_or_default(),
        };
        let properties = props.clone().into_iter().collect();

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
                trust_store,
            },
            proxy,
            connect_kwargs,
            connect_options,
            properties,
            metrics,
        }
        .validate(path)
    }
}

/// An optional boolean key: `false` when absent, an error naming the key when neither
/// `true` nor `false`.
fn parse_bool(key: &str, value: Option<&str>, path: &Option<PathBuf>) -> Result<bool, ConfigError> {
    match value {
        None => Ok(false),
        Some(v) => file::parse_bool(v).ok_or_else(|| ConfigError::InvalidBool {
            path: path.clone(),
            key: key.to_owned(),
            value: v.to_owned(),
        }),
    }
}

pub(super) fn parse_ip(value: &str) -> Option<IpAddr> {
    // Accept IPv6 addresses in brackets too, as they are written in URLs.
    let v = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    v.parse().ok()
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
