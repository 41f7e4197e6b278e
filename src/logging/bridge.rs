//! Records of the `log` crate (tungstenite's, rustls') forwarded into
//! `tracing`, so that nothing the libraries under the SDK say is lost, except
//! what could carry a secret.
//!
//! The WebSocket library logs every frame at TRACE, hex-encoded, and the
//! first frame of a connection carries the token; at TRACE it also logs the
//! upgrade request, whose headers may carry credentials. So every TRACE record
//! of `tungstenite` and `tokio_tungstenite` is dropped here, at any level the
//! subscriber asks for; their DEBUG and higher records (handshake done, close
//! frames) pass.

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::LoggingError;

/// The targets whose TRACE records may show frame contents.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// Whether a record may carry a frame's bytes.
fn may_show_frames(metadata: &Metadata<'_>) -> bool {
    metadata.level() == Level::Trace
        && FRAME_LOGGERS.iter().any(|t| {
            metadata
                .target()
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

/// The `log` logger that forwards into the current `tracing` subscriber.
struct Bridge;

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !may_show_frames(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // Only fails for a record the subscriber does not want.
            let _ = tracing_log::format_trace(record);
        }
    }

    fn flush(&self) {}
}

/// Forwards the records of the `log` crate into `tracing`, as
/// [`setup_logging`](super::setup_logging) does, for applications that install
/// their own `tracing` subscriber. Records that could show a WebSocket frame
/// (tungstenite's TRACE records) are dropped, so the token of the first frame
/// never reaches a log.
///
/// Call it after the subscriber is installed: the `log` crate's level is set
/// to the subscriber's, so records nobody reads are never made.
///
/// # Errors
///
/// [`LoggingError::AlreadyInstalled`] when a `log` logger is already set.
///
/// # Examples
///
/// ```no_run
/// tracing_subscriber::fmt().init();
/// vantiq_connector_sdk::logging::forward_log_records()?;
/// # Ok::<(), vantiq_connector_sdk::logging::LoggingError>(())
/// ```
pub fn forward_log_records() -> Result<(), LoggingError> {
    log::set_logger(&Bridge).map_err(|_| LoggingError::AlreadyInstalled)?;
    log::set_max_level(level_of_subscriber());
    Ok(())
}

/// The most verbose level the global `tracing` subscriber wants, as a `log`
/// level.
fn level_of_subscriber() -> LevelFilter {
    use tracing::level_filters::LevelFilter as T;
    match T::current() {
        T::OFF => LevelFilter::Off,
        T::ERROR => LevelFilter::Error,
        T::WARN => LevelFilter::Warn,
        T::INFO => LevelFilter::Info,
        T::DEBUG => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(target: &str, level: Level) -> Metadata<'_> {
        Metadata::builder().target(target).level(level).build()
    }

    #[test]
    fn frame_records_are_dropped_and_the_rest_pass() {
        let bridge = Bridge;
        for target in [
            "tungstenite",
            "tungstenite::protocol::frame",
            "tokio_tungstenite::compat",
        ] {
            assert!(!bridge.enabled(&meta(target, Level::Trace)), "{target}");
            assert!(bridge.enabled(&meta(target, Level::Debug)), "{target}");
        }
        assert!(bridge.enabled(&meta("rustls::client", Level::Trace)));
        assert!(bridge.enabled(&meta("tungstenite_other", Level::Trace)));
        assert!(bridge.enabled(&meta("my_app", Level::Trace)));
    }
}
