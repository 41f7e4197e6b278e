//! Logging setup for connectors: a [`tracing`] subscriber writing to standard error and,
//! when asked, to a rotating file, with the records of the `log` crate forwarded.
//!
//! Connectors usually call [`setup_logging`] once at the start of `main`. It installs a
//! `tracing-subscriber` formatter, with:
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
//! | `ansi` | `true` to color the standard error output with ANSI escape codes | on a terminal, unless `NO_COLOR` is set |
//! | `timestamps` | `false` to leave out the time at the start of each line (for example when the container runtime adds its own) | `true` |
//! | `file` | a file to log to as well, e.g. `logs/VantiqConnector.log` (relative to the working directory); its directory is created | none |
//! | `rotation` | when the file starts anew: `minutely`, `hourly`, `daily`, `weekly` or `never`; each file is named for its period (`VantiqConnector.2026-12-01.log`), and `file` itself is a link to the current one | `daily` |
//! | `maxFiles` | how many files to keep (the oldest are deleted when a new one starts); `0` keeps them all | `7` |
//! | `console` | `false` to log to the file only | `true` |
//!
//! Booleans are `true` or `false` in any case. For example:
//!
//! ```properties
//! # serverConfig/logging.properties
//! level = vantiq_connector_sdk=debug,info
//! format = compact
//! file = logs/VantiqConnector.log
//! rotation = daily
//! maxFiles = 14
//! ```
//!
//! This replaces the Python SDK's `serverConfig/logger.ini`, which is Python-specific.
//!
//! # The `log` crate, and secrets
//!
//! The libraries under the SDK (tungstenite, rustls) log through the `log` crate; the
//! subscriber installed here forwards their records into `tracing` (see
//! [`forward_log_records`]), filtered by the same `level`. The WebSocket library logs
//! every frame at TRACE, and the first frame of a connection carries the token: those
//! records, and only those, are dropped, whatever the level. The SDK's own events never
//! carry a token or a password.

mod bridge;
mod settings;

use std::io;
use std::path::{Path, PathBuf};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use self::bridge::forward_log_records;
pub use self::settings::{LogFormat, LogRotation, LoggingSettings, DEFAULT_MAX_FILES};
use crate::config::file::origin_display;
use crate::config::properties::PropertiesError;

/// Where the logging settings file is looked for, relative to the working directory (or
/// to the directory given to [`setup_logging_from`]).
pub const LOGGING_PROPERTIES_PATH: &str = "serverConfig/logging.properties";

/// The filter used when neither `RUST_LOG` nor the file gives one.
pub const DEFAULT_LEVEL: &str = "info";

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
    #[error("{}: unknown key `{key}` (expected {expected})", origin_display(.path))]
    UnknownKey {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: String,
        /// The keys there are.
        expected: &'static str,
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
    /// The log file (or its directory) cannot be created.
    #[error("log file {}: {reason}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
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
/// for a bad `RUST_LOG` or `level`, [`LoggingError::File`] when the log file cannot be
/// made, and [`LoggingError::AlreadyInstalled`] when a global subscriber is already set.
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
/// empty, still replaces `settings.level`. The records of the `log` crate are forwarded
/// too, unless the application has set a `log` logger of its own.
///
/// # Errors
///
/// [`LoggingError::InvalidFilter`] for a bad `RUST_LOG` or `level`,
/// [`LoggingError::File`] when the log file cannot be made, and
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
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    if settings.console {
        layers.push(fmt_layer(settings, io::stderr, settings.ansi));
    }
    if let Some(path) = &settings.file {
        layers.push(fmt_layer(settings, file_appender(path, settings)?, false));
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    // An application with a `log` logger of its own keeps it.
    let _ = forward_log_records();
    report_handler_panics();
    Ok(())
}

/// Makes a panicking handler one line in the logs: the SDK's own report
/// (source, handler, message, where), instead of the standard panic hook's
/// `thread '...' panicked at` and, with `RUST_BACKTRACE`, a backtrace among
/// the logs (then printed after it). Other panics are reported as before.
/// [`setup_logging`] calls it; call it yourself with a subscriber of your
/// own. Calling it again does nothing.
pub fn report_handler_panics() {
    crate::panics::install_hook();
}

/// One formatting layer of the subscriber, writing to `writer`.
fn fmt_layer<W>(
    settings: &LoggingSettings,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match (settings.format, settings.timestamps) {
        (LogFormat::Full, true) => layer.boxed(),
        (LogFormat::Full, false) => layer.without_time().boxed(),
        (LogFormat::Compact, true) => layer.compact().boxed(),
        (LogFormat::Compact, false) => layer.compact().without_time().boxed(),
    }
}

/// The rotating writer of the log file `path`: files named for their period
/// beside it, `path` itself a link to the current one.
fn file_appender(
    path: &Path,
    settings: &LoggingSettings,
) -> Result<tracing_appender::rolling::RollingFileAppender, LoggingError> {
    use tracing_appender::rolling::{Builder, Rotation};
    let fail = |reason: String| LoggingError::File {
        path: path.to_path_buf(),
        reason,
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| fail("not a file name".into()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create its directory: {e}")))?;
    let (prefix, suffix) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    let rotation = match settings.rotation {
        LogRotation::Minutely => Rotation::MINUTELY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Weekly => Rotation::WEEKLY,
        LogRotation::Never => Rotation::NEVER,
    };
    let mut builder = Builder::new()
        .rotation(rotation.clone())
        .filename_prefix(prefix)
        .max_log_files(settings.max_files);
    if let Some(suffix) = suffix {
        builder = builder.filename_suffix(suffix);
    }
    // `path` itself links to the current file, unless a file of that name is
    // there already (from `rotation=never`): it is kept, not replaced.
    let is_plain_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    if rotation != Rotation::NEVER && !is_plain_file {
        builder = builder.latest_symlink(name);
    }
    builder.build(&dir).map_err(|e| fail(e.to_string()))
}
