//! [`ConfigError`]: why a server configuration could not be loaded or built.

use std::io;
use std::path::{Path, PathBuf};

use super::file::origin_display;
use super::{PropertiesError, ProxyError};

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
    /// A key has a value outside its set (`trustStore`).
    #[error("{}: `{key}` must be {expected}, not `{value}`", origin_display(.path))]
    InvalidValue {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// `proxy` is not `none` or a usable proxy URL (the message shows the URL with its
    /// credentials redacted).
    #[error("{}: `proxy`: {source}", origin_display(.path))]
    InvalidProxy {
        /// The file, if any.
        path: Option<PathBuf>,
        /// What is wrong with it.
        source: ProxyError,
    },
    /// `connectKWArgs` is not a JSON object, or one of the keywords this SDK applies has
    /// a value of the wrong kind.
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
            | ConfigError::InvalidValue { path, .. }
            | ConfigError::InvalidProxy { path, .. }
            | ConfigError::InvalidConnectKwArgs { path, .. } => path.as_deref(),
        }
    }
}
