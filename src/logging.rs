//! Logging setup for connectors: a [`tracing`] subscriber writing to standard error.
//!
//! Connectors usually call [`setup_logging`] once at the start of `main`. It installs a
//! `tracing-subscriber` formatter on stderr, with:
//!
//! * the filter from the `RUST_LOG` environment variable when it is set (and not empty),
//! * else the `level` of the file `serverConfig/logging.properties` when that file exists,
//! * else `info`.
//!
//! # `serverConfig/logging.properties`
//!
//! A Java properties file (the same syntax as `server.config`), next to it. Every key is
//! optional; an empty value counts as absent; an unknown key or a bad value is an error
//! (so that a typo is noticed):
//!
//! | key | values | default |
//! |---|---|---|
//! | `level` | a filter in `RUST_LOG` syntax: `debug`, or `vantiq_connector_sdk=debug,info`, ... (`RUST_LOG` wins over it) | `info` |
//! | `format` | `full` (one line per event, with target and span context) or `compact` | `full` |
//! | `ansi` | `true` to color the output with ANSI escape codes | `false` |
//! | `timestamps` | `false` to leave out the time at the start of each line (for example when the container runtime adds its own) | `true` |
//!
//! Booleans are `true` or `false` in any case. For example:
//!
//! ```properties
//! # serverConfig/logging.properties
//! level = vantiq_connector_sdk=debug,info
//! format = compact
//! timestamps = false
//! ```
//!
//! This replaces the Python SDK's `serverConfig/logger.ini`, which is Python-specific.
//!
//! # Secrets
//!
//! The SDK's own events never carry a token or a password. The WebSocket library under it
//! (tungstenite) logs every frame, hex-encoded, at TRACE through the `log` crate, and the
//! first frame of a connection carries the token; the subscriber installed here does not
//! forward `log` records, so those never appear. If you bridge `log` into your own logging
//! (`tracing-log`, `env_logger`, ...), keep the `tungstenite` target at DEBUG or above.

use std::io;
use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;

use crate::config::file::{self, origin_display, parse_bool};
use crate::config::properties::{self, PropertiesError};

/// Where the logging settings file is looked for, relative to the working directory (or
/// to the directory given to [`setup_logging_from`]).
pub const LOGGING_PROPERTIES_PATH: &str = "serverConfig/logging.properties";

/// The filter used when neither `RUST_LOG` nor the file gives one.
pub const DEFAULT_LEVEL: &str = "info";

/// How each log line is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// `tracing-subscriber`'s default format: level, span context, target, fields.
    #[default]
    Full,
    /// A shorter line: span names and fields at the end.
    Compact,
}

/// Logging settings, as read from `serverConfig/logging.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSettings {
    /// The filter directive (`RUST_LOG` syntax); overridden by `RUST_LOG` when set.
    pub level: String,
    /// The line format.
    pub format: LogFormat,
    /// Whether to color the output with ANSI escape codes.
    pub ansi: bool,
    /// Whether to start each line with a timestamp.
    pub timestamps: bool,
}

impl Default for LoggingSettings {
    /// `info`, full format, no colors, with timestamps.
    fn default() -> Self {
        LoggingSettings {
            level: DEFAULT_LEVEL.to_owned(),
            format: LogFormat::Full,
            ansi: false,
            timestamps: true,
        }
    }
}

impl LoggingSettings {
    /// Parses the text of a `logging.properties` file. `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`LoggingError::Properties`] for malformed properties text,
    /// [`LoggingError::UnknownKey`] for a key other than `level`, `format`, `ansi`,
    /// `timestamps`, [`LoggingError::InvalidValue`] for a bad `format` or boolean, and
    /// [`LoggingError::InvalidFilter`] for a `level` that is not a valid filter.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::logging::{LogFormat, LoggingSettings};
    ///
    /// let s = LoggingSettings::from_properties_str("level=debug\nformat=compact\nansi=TRUE", None)?;
    /// assert_eq!(s.level, "debug");
    /// assert_eq!(s.format, LogFormat::Compact);
    /// assert!(s.ansi);
    /// assert!(s.timestamps);
    /// # Ok::<(), vantiq_connector_sdk::logging::LoggingError>(())
    /// ```
    pub fn from_properties_str(text: &str, origin: Option<&Path>) -> Result<Self, LoggingError> {
        let path = origin.map(Path::to_path_buf);
        let props = properties::parse(text).map_err(|source| LoggingError::Properties {
            path: path.clone(),
            source,
        })?;
        let mut settings = LoggingSettings::default();
        for (key, value) in props {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let invalid = |expected: &'static str| LoggingError::InvalidValue {
                path: path.clone(),
                key: key.clone(),
                value: value.to_owned(),
                expected,
            };
            match key.as_str() {
                "level" => {
                    EnvFilter::try_new(value).map_err(|e| LoggingError::InvalidFilter {
                        origin: origin_display(&path),
                        filter: value.to_owned(),
                        reason: e.to_string(),
                    })?;
                    settings.level = value.to_owned();
                }
                "format" => {
                    settings.format = if value.eq_ignore_ascii_case("full") {
                        LogFormat::Full
                    } else if value.eq_ignore_ascii_case("compact") {
                        LogFormat::Compact
                    } else {
                        return Err(invalid("`full` or `compact`"));
                    }
                }
                "ansi" => {
                    settings.ansi = parse_bool(value).ok_or_else(|| invalid("`true` or `false`"))?
                }
                "timestamps" => {
                    settings.timestamps =
                        parse_bool(value).ok_or_else(|| invalid("`true` or `false`"))?
                }
                _ => {
                    return Err(LoggingError::UnknownKey {
                        path: path.clone(),
                        key,
                    })
                }
            }
        }
        Ok(settings)
    }

    /// Reads `serverConfig/logging.properties` under `dir`; the defaults when the file does
    /// not exist.
    ///
    /// # Errors
    ///
    /// [`LoggingError::Io`] when the file exists but cannot be read, and the errors of
    /// [`LoggingSettings::from_properties_str`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::logging::LoggingSettings;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// assert_eq!(LoggingSettings::from_dir(dir.path())?, LoggingSettings::default());
    /// # Ok::<(), vantiq_connector_sdk::logging::LoggingError>(())
    /// ```
    pub fn from_dir(dir: &Path) -> Result<Self, LoggingError> {
        let path = dir.join(LOGGING_PROPERTIES_PATH);
        match file::read_text(&path) {
            Ok(text) => Self::from_properties_str(&text, Some(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(LoggingError::Io { path, source }),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// The settings file exists but could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The settings file is not valid properties text.
    #[error("{}: {source}", origin_display(.path))]
    Properties {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The parse error, with its line number.
        source: PropertiesError,
    },
    /// The settings file has a key this SDK does not know.
    #[error("{}: unknown key `{key}` (expected `level`, `format`, `ansi` or `timestamps`)", origin_display(.path))]
    UnknownKey {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
    },
    /// A value of the settings file is not acceptable.
    #[error("{}: `{key}` must be {expected}, not `{value}`", origin_display(.path))]
    InvalidValue {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A filter (from `RUST_LOG` or the `level` key) is not valid.
    #[error("{origin}: invalid log filter `{filter}`: {reason}")]
    InvalidFilter {
        /// Where the filter came from: `RUST_LOG`, or the file.
        origin: String,
        /// The filter as written.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A global `tracing` subscriber is already installed (by an earlier call, or by the
    /// application).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Installs the logging subscriber, reading `serverConfig/logging.properties` from the
/// working directory (see the [module documentation](self)).
///
/// # Errors
///
/// [`LoggingError::AlreadyInstalled`] when a global subscriber is already set (calling it
/// twice is an error, not a panic), and the errors of [`setup_logging_from`].
///
/// # Examples
///
/// ```no_run
/// vantiq_connector_sdk::logging::setup_logging()?;
/// tracing::info!("connector starting");
/// # Ok::<(), vantiq_connector_sdk::logging::LoggingError>(())
/// ```
pub fn setup_logging() -> Result<(), LoggingError> {
    setup_logging_from(Path::new(""))
}

/// Installs the logging subscriber, reading `serverConfig/logging.properties` under `dir`.
///
/// # Errors
///
/// [`LoggingError::Io`], [`LoggingError::Properties`], [`LoggingError::UnknownKey`] or
/// [`LoggingError::InvalidValue`] for a bad settings file, [`LoggingError::InvalidFilter`]
/// for a bad `RUST_LOG` or `level`, and [`LoggingError::AlreadyInstalled`] when a global
/// subscriber is already set.
///
/// # Examples
///
/// ```
/// use vantiq_connector_sdk::logging::{setup_logging_from, LoggingError};
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("serverConfig")).unwrap();
/// std::fs::write(dir.path().join("serverConfig/logging.properties"), "format=compact\n").unwrap();
/// setup_logging_from(dir.path())?;
/// assert!(matches!(setup_logging_from(dir.path()), Err(LoggingError::AlreadyInstalled)));
/// # Ok::<(), LoggingError>(())
/// ```
pub fn setup_logging_from(dir: &Path) -> Result<(), LoggingError> {
    let settings = LoggingSettings::from_dir(dir)?;
    setup_logging_with(&settings)
}

/// Installs the logging subscriber with the given settings; `RUST_LOG`, when set and not
/// empty, still replaces `settings.level`.
///
/// # Errors
///
/// [`LoggingError::InvalidFilter`] for a bad `RUST_LOG` or `level`, and
/// [`LoggingError::AlreadyInstalled`] when a global subscriber is already set.
///
/// # Examples
///
/// ```no_run
/// use vantiq_connector_sdk::logging::{setup_logging_with, LoggingSettings};
///
/// setup_logging_with(&LoggingSettings { level: "debug".into(), ..LoggingSettings::default() })?;
/// # Ok::<(), vantiq_connector_sdk::logging::LoggingError>(())
/// ```
pub fn setup_logging_with(settings: &LoggingSettings) -> Result<(), LoggingError> {
    let env = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter_text, origin) = match env {
        Some(v) => (v, EnvFilter::DEFAULT_ENV.to_owned()),
        None => (settings.level.clone(), LOGGING_PROPERTIES_PATH.to_owned()),
    };
    let filter = EnvFilter::try_new(&filter_text).map_err(|e| LoggingError::InvalidFilter {
        origin,
        filter: filter_text.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(settings.ansi)
        .with_env_filter(filter);
    let result = match (settings.format, settings.timestamps) {
        (LogFormat::Full, true) => builder.try_init(),
        (LogFormat::Full, false) => builder.without_time().try_init(),
        (LogFormat::Compact, true) => builder.compact().try_init(),
        (LogFormat::Compact, false) => builder.compact().without_time().try_init(),
    };
    result.map_err(|_| LoggingError::AlreadyInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoggingSettings, LoggingError> {
        LoggingSettings::from_properties_str(text, Some(Path::new(LOGGING_PROPERTIES_PATH)))
    }

    #[test]
    fn defaults() {
        let d = LoggingSettings::default();
        assert_eq!(d.level, "info");
        assert_eq!(d.format, LogFormat::Full);
        assert!(!d.ansi);
        assert!(d.timestamps);
        assert_eq!(parse("").unwrap(), d);
        assert_eq!(parse("# only a comment\n\n").unwrap(), d);
        // Empty values count as absent.
        assert_eq!(parse("level=\nformat=\nansi=\ntimestamps=").unwrap(), d);
    }

    #[test]
    fn all_keys() {
        let s = parse(
            "level = vantiq_connector_sdk=debug,info\nformat: COMPACT\nansi=true\ntimestamps=False\n",
        )
        .unwrap();
        assert_eq!(
            s,
            LoggingSettings {
                level: "vantiq_connector_sdk=debug,info".into(),
                format: LogFormat::Compact,
                ansi: true,
                timestamps: false,
            }
        );
        assert_eq!(parse("format=full").unwrap().format, LogFormat::Full);
        assert_eq!(parse("level=  warn  ").unwrap().level, "warn");
        assert_eq!(parse("level=off").unwrap().level, "off");
    }

    #[test]
    fn invalid_values() {
        let e = parse("format=json").unwrap_err();
        assert!(matches!(&e, LoggingError::InvalidValue { key, .. } if key == "format"));
        assert_eq!(
            e.to_string(),
            "serverConfig/logging.properties: `format` must be `full` or `compact`, not `json`"
        );
        let e = parse("ansi=yes").unwrap_err();
        assert!(matches!(&e, LoggingError::InvalidValue { key, .. } if key == "ansi"));
        let e = parse("timestamps=0").unwrap_err();
        assert!(matches!(&e, LoggingError::InvalidValue { key, .. } if key == "timestamps"));
    }

    #[test]
    fn invalid_level() {
        let e = parse("level=foo=bar=baz").unwrap_err();
        assert!(matches!(&e, LoggingError::InvalidFilter { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("serverConfig/logging.properties: invalid log filter `foo=bar=baz`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key() {
        let e = parse("levle=debug").unwrap_err();
        assert!(matches!(&e, LoggingError::UnknownKey { key, .. } if key == "levle"));
        assert!(e.to_string().contains("unknown key `levle`"));
    }

    #[test]
    fn malformed_properties() {
        let e = parse("\nlevel=\\u12").unwrap_err();
        assert!(matches!(&e, LoggingError::Properties { .. }));
        assert!(e
            .to_string()
            .starts_with("serverConfig/logging.properties: line 2:"));
        let e = LoggingSettings::from_properties_str("level=\\u12", None).unwrap_err();
        assert!(e.to_string().starts_with("in code: line 1:"), "{e}");
    }

    #[test]
    fn from_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            LoggingSettings::from_dir(dir.path()).unwrap(),
            LoggingSettings::default()
        );
        std::fs::create_dir(dir.path().join("serverConfig")).unwrap();
        let file = dir.path().join(LOGGING_PROPERTIES_PATH);
        std::fs::write(&file, "\u{feff}level=debug\r\nansi=true\r\n").unwrap();
        let s = LoggingSettings::from_dir(dir.path()).unwrap();
        assert_eq!(s.level, "debug");
        assert!(s.ansi);

        std::fs::write(&file, "format=xml").unwrap();
        let e = LoggingSettings::from_dir(dir.path()).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("{}:", file.display())),
            "{e}"
        );

        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let e = LoggingSettings::from_dir(dir.path()).unwrap_err();
        assert!(matches!(e, LoggingError::Io { .. }), "{e:?}");
    }
}
