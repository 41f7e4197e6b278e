//! [`LoggingSettings`]: the keys of `serverConfig/logging.properties`.

use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;

use super::{LoggingError, DEFAULT_LEVEL, LOGGING_PROPERTIES_PATH};
use crate::config::file::{self, origin_display, parse_bool};
use crate::config::properties;

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

/// When the log file starts a new file (key `rotation`); each file's name has the
/// date (and hour, minute) of its period: `VantiqConnector.2026-12-01.log`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogRotation {
    /// Every minute (for tests, mostly).
    Minutely,
    /// Every hour.
    Hourly,
    /// Every day, at midnight UTC. The default.
    #[default]
    Daily,
    /// Every week.
    Weekly,
    /// Never: one file, named exactly as `file` says.
    Never,
}

impl LogRotation {
    fn parse(value: &str) -> Option<LogRotation> {
        Some(match value.to_ascii_lowercase().as_str() {
            "minutely" => LogRotation::Minutely,
            "hourly" => LogRotation::Hourly,
            "daily" => LogRotation::Daily,
            "weekly" => LogRotation::Weekly,
            "never" => LogRotation::Never,
            _ => return None,
        })
    }
}

/// Logging settings, as read from `serverConfig/logging.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSettings {
    /// The filter directive (`RUST_LOG` syntax); overridden by `RUST_LOG` when set.
    pub level: String,
    /// The line format.
    pub format: LogFormat,
    /// Whether to color the standard error output with ANSI escape codes (never the
    /// file). Default: only when standard error is a terminal and `NO_COLOR` is not
    /// set.
    pub ansi: bool,
    /// Whether to start each line with a timestamp.
    pub timestamps: bool,
    /// A file to log to as well, as Python's `setup_logging` writes
    /// `VantiqConnector.log` (key `file`). Its directory is created when missing.
    pub file: Option<PathBuf>,
    /// When the file starts anew (key `rotation`).
    pub rotation: LogRotation,
    /// How many files to keep, the current one included; the oldest are deleted when
    /// a new one starts (key `maxFiles`; `0` keeps them all).
    pub max_files: usize,
    /// Whether to log to standard error too (key `console`).
    pub console: bool,
}

/// The default of [`LoggingSettings::max_files`]: a week of daily files.
pub const DEFAULT_MAX_FILES: usize = 7;

/// Colors when standard error is a terminal, unless `NO_COLOR` is set
/// (<https://no-color.org>).
fn colors_by_default() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none()
}

impl Default for LoggingSettings {
    /// `info`, full format, colors only on a terminal, with timestamps, to standard
    /// error only.
    fn default() -> Self {
        LoggingSettings {
            level: DEFAULT_LEVEL.to_owned(),
            format: LogFormat::Full,
            ansi: colors_by_default(),
            timestamps: true,
            file: None,
            rotation: LogRotation::Daily,
            max_files: DEFAULT_MAX_FILES,
            console: true,
        }
    }
}

/// The keys of the file, for the error that names an unknown one.
const KEYS: &str =
    "`level`, `format`, `ansi`, `timestamps`, `file`, `rotation`, `maxFiles` or `console`";

impl LoggingSettings {
    /// Parses the text of a `logging.properties` file. `origin` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`LoggingError::Properties`] for malformed properties text,
    /// [`LoggingError::UnknownKey`] for a key this SDK does not know,
    /// [`LoggingError::InvalidValue`] for a bad `format`, `rotation`, number or
    /// boolean, and [`LoggingError::InvalidFilter`] for a `level` that is not a valid
    /// filter.
    ///
    /// # Examples
    ///
    /// ```
    /// use vantiq_connector_sdk::logging::{LogFormat, LogRotation, LoggingSettings};
    ///
    /// let s = LoggingSettings::from_properties_str(
    ///     "level=debug\nformat=compact\nansi=TRUE\nfile=logs/VantiqConnector.log\nrotation=hourly",
    ///     None,
    /// )?;
    /// assert_eq!(s.level, "debug");
    /// assert_eq!(s.format, LogFormat::Compact);
    /// assert!(s.ansi && s.timestamps && s.console);
    /// assert_eq!(s.file.as_deref(), Some(std::path::Path::new("logs/VantiqConnector.log")));
    /// assert_eq!(s.rotation, LogRotation::Hourly);
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
            let boolean = || parse_bool(value).ok_or_else(|| invalid("`true` or `false`"));
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
                "ansi" => settings.ansi = boolean()?,
                "timestamps" => settings.timestamps = boolean()?,
                "console" => settings.console = boolean()?,
                "file" => settings.file = Some(PathBuf::from(value)),
                "rotation" => {
                    settings.rotation = LogRotation::parse(value).ok_or_else(|| {
                        invalid("`minutely`, `hourly`, `daily`, `weekly` or `never`")
                    })?
                }
                "maxFiles" => {
                    settings.max_files = value
                        .parse()
                        .map_err(|_| invalid("a number of files (0 keeps them all)"))?
                }
                _ => {
                    return Err(LoggingError::UnknownKey {
                        path: path.clone(),
                        key,
                        expected: KEYS,
                    })
                }
            }
        }
        if !settings.console && settings.file.is_none() {
            return Err(LoggingError::InvalidValue {
                path,
                key: "console".into(),
                value: "false".into(),
                expected: "`true` unless `file` is set (the logs must go somewhere)",
            });
        }
        Ok(settings)
    }

    /// Reads `serverConfig/logging.properties` under `dir`; the defaults when the file does
    /// not exist. A relative `file` is taken relative to `dir`.
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
            Ok(text) => {
                let mut settings = Self::from_properties_str(&text, Some(&path))?;
                settings.file = settings.file.map(|f| dir.join(f));
                Ok(settings)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(LoggingError::Io { path, source }),
        }
    }
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
        // Tests run with standard error captured: not a terminal.
        assert_eq!(
            d.ansi,
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none()
        );
        assert!(d.timestamps && d.console);
        assert_eq!(
            (d.file.as_deref(), d.rotation, d.max_files),
            (None, LogRotation::Daily, 7)
        );
        assert_eq!(parse("").unwrap(), d);
        assert_eq!(parse("# only a comment\n\n").unwrap(), d);
        // Empty values count as absent.
        assert_eq!(
            parse("level=\nformat=\nansi=\ntimestamps=\nfile=\nrotation=").unwrap(),
            d
        );
    }

    #[test]
    fn all_keys() {
        let s = parse(
            "level = vantiq_connector_sdk=debug,info\nformat: COMPACT\nansi=true\ntimestamps=False\n\
             file = logs/VantiqConnector.log\nrotation=Never\nmaxFiles=3\nconsole=false\n",
        )
        .unwrap();
        assert_eq!(
            s,
            LoggingSettings {
                level: "vantiq_connector_sdk=debug,info".into(),
                format: LogFormat::Compact,
                ansi: true,
                timestamps: false,
                file: Some("logs/VantiqConnector.log".into()),
                rotation: LogRotation::Never,
                max_files: 3,
                console: false,
            }
        );
        assert_eq!(parse("format=full").unwrap().format, LogFormat::Full);
        assert_eq!(parse("level=  warn  ").unwrap().level, "warn");
        assert_eq!(parse("level=off").unwrap().level, "off");
        for (v, r) in [
            ("minutely", LogRotation::Minutely),
            ("HOURLY", LogRotation::Hourly),
            ("weekly", LogRotation::Weekly),
        ] {
            assert_eq!(parse(&format!("rotation={v}")).unwrap().rotation, r);
        }
    }

    #[test]
    fn invalid_values() {
        let e = parse("format=json").unwrap_err();
        assert!(matches!(&e, LoggingError::InvalidValue { key, .. } if key == "format"));
        assert_eq!(
            e.to_string(),
            "serverConfig/logging.properties: `format` must be `full` or `compact`, not `json`"
        );
        for (text, key) in [
            ("ansi=yes", "ansi"),
            ("timestamps=0", "timestamps"),
            ("console=no", "console"),
            ("rotation=size", "rotation"),
            ("maxFiles=-1", "maxFiles"),
            ("console=false", "console"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                matches!(&e, LoggingError::InvalidValue { key: k, .. } if k == key),
                "{text}: {e}"
            );
        }
        assert!(parse("console=false\nfile=x.log").is_ok());
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
        assert!(e.to_string().contains("`maxFiles`"));
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
        std::fs::write(
            &file,
            "\u{feff}level=debug\r\nansi=true\r\nfile=logs/c.log\r\n",
        )
        .unwrap();
        let s = LoggingSettings::from_dir(dir.path()).unwrap();
        assert_eq!(s.level, "debug");
        assert!(s.ansi);
        assert_eq!(s.file, Some(dir.path().join("logs/c.log")));

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
