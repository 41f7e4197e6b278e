//! The Rust SDK's settings from Python, and its errors as the package's exceptions
//! (with `core.rs`, the only place that uses the SDK's API).

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use vantiq_connector_sdk::{
    ConnectErrorKind, Error, NotifyError, OverflowPolicy, QueryAnswerError, Settings,
};

use crate::bridge::Build;
use crate::errors::{connect_error_build, error_build, exception};

/// The Python exception for an error that ended a run, as the official SDK raises it:
/// a rejected token with its message text, a failed connection an `OSError` whose
/// `args` are `(errno, message)`.
pub(crate) fn run_error(e: &Error) -> Build {
    match e {
        Error::AuthenticationFailed {
            status, message, ..
        } => error_build(
            "AuthenticationError",
            format!("Connect call failed: {status} :: {message}"),
        ),
        Error::ConnectFailed { kind, .. } => {
            let kind = match kind {
                ConnectErrorKind::Dns => "dns",
                ConnectErrorKind::Refused => "refused",
                ConnectErrorKind::Timeout => "timeout",
                _ => "other",
            };
            connect_error_build(kind, e.to_string())
        }
        _ => error_build("VantiqConnectorException", e.to_string()),
    }
}

pub(crate) fn notify_error(py: Python<'_>, e: NotifyError) -> PyErr {
    let name = match e {
        NotifyError::BufferFull => "BufferFullError",
        NotifyError::Closed => "ConnectionClosedError",
        NotifyError::Serialize(_) => {
            return pyo3::exceptions::PyTypeError::new_err(e.to_string());
        }
        _ => "NotificationError",
    };
    exception(py, name, e.to_string())
}

pub(crate) fn notify_error_build(e: NotifyError) -> Build {
    Box::new(move |py| Ok(notify_error(py, e).into_value(py).into_bound(py).into_any()))
}

pub(crate) fn answer_error(py: Python<'_>, e: QueryAnswerError) -> PyErr {
    if let QueryAnswerError::Serialize(_) = e {
        return pyo3::exceptions::PyTypeError::new_err(e.to_string());
    }
    exception(py, "QueryAnswerError", e.to_string())
}

pub(crate) fn answer_error_build(e: QueryAnswerError) -> Build {
    Box::new(move |py| Ok(answer_error(py, e).into_value(py).into_bound(py).into_any()))
}

fn seconds(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<Duration>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => {
            let s: f64 = v.extract()?;
            Duration::try_from_secs_f64(s).map(Some).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "{key}: {s} is not a duration in seconds"
                ))
            })
        }
        _ => Ok(None),
    }
}

fn number<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

/// The SDK's settings from the dict made by the Python `Settings` (durations in seconds).
pub(crate) fn settings_from(d: Option<&Bound<'_, PyDict>>) -> PyResult<Settings> {
    let mut s = Settings::builder();
    let Some(d) = d else { return Ok(s.build()) };
    if let Some(v) = seconds(d, "initial_backoff")? {
        s = s.initial_backoff(v);
    }
    if let Some(v) = seconds(d, "max_backoff")? {
        s = s.max_backoff(v);
    }
    if let Some(v) = seconds(d, "connect_timeout")? {
        s = s.connect_timeout(v);
    }
    if let Some(v) = seconds(d, "ping_interval")? {
        s = s.ping_interval(v);
    }
    if let Some(v) = seconds(d, "ack_timeout")? {
        s = s.ack_timeout(v);
    }
    if let Some(v) = seconds(d, "close_timeout")? {
        s = s.close_timeout(v);
    }
    s = s.query_deadline(seconds(d, "query_deadline")?);
    s = s.max_reconnect_attempts(number(d, "max_reconnect_attempts")?);
    if let Some(v) = number(d, "buffer_capacity")? {
        s = s.buffer_capacity(v);
    }
    if let Some(v) = number(d, "window")? {
        s = s.window(v);
    }
    if let Some(v) = number(d, "max_message_size")? {
        s = s.max_message_size(v);
    }
    if let Some(v) = number::<String>(d, "overflow")? {
        s = s.overflow(match v.as_str() {
            "wait" => OverflowPolicy::Wait,
            "drop_oldest" => OverflowPolicy::DropOldest,
            "fail" => OverflowPolicy::Fail,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "overflow must be \"wait\", \"drop_oldest\" or \"fail\", not {other:?}"
                )))
            }
        });
    }
    Ok(s.build())
}
