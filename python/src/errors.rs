//! Python exceptions and results made on the asyncio thread, for completions.

use pyo3::prelude::*;

use crate::bridge::Build;

/// The exception class `name` of `vantiq_connector_sdk._errors`, made with `message`.
pub(crate) fn exception(py: Python<'_>, name: &str, message: String) -> PyErr {
    match py
        .import("vantiq_connector_sdk._errors")
        .and_then(|m| m.getattr(name))
    {
        Ok(class) => PyErr::from_type(class.cast_into().expect("an exception class"), message),
        Err(e) => e,
    }
}

pub(crate) fn error_build(name: &'static str, message: String) -> Build {
    Box::new(move |py| {
        Ok(exception(py, name, message)
            .into_value(py)
            .into_bound(py)
            .into_any())
    })
}

/// A `ConnectError` as the official SDK's `OSError`s: `args` is `(errno, message)`, the
/// errno of `kind` (`"dns"`, `"refused"`, `"timeout"`, or another word for none); a
/// DNS failure is also a `socket.gaierror`. Made by `_errors.connect_error`.
pub(crate) fn connect_error_build(kind: &'static str, message: String) -> Build {
    Box::new(move |py| {
        py.import("vantiq_connector_sdk._errors")?
            .getattr("connect_error")?
            .call1((kind, message))
    })
}

pub(crate) fn none_build() -> Build {
    Box::new(|py| Ok(py.None().into_bound(py)))
}
