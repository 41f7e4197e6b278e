//! [`Secret`]: a string that never shows up in logs or debug output.

use std::fmt;

/// A secret string (access token, password, reconnect secret) that is never printed.
///
/// `Debug` and `Display` both print `***`, so a secret can sit in configuration structs
/// that are logged with `{:?}` without leaking. Read the value with [`Secret::expose`],
/// only where it is sent.
///
/// ```
/// use vantiq_connector_sdk::config::Secret;
///
/// let token = Secret::new("s3cr3t");
/// assert_eq!(token.expose(), "s3cr3t");
/// assert_eq!(format!("{token}"), "***");
/// assert_eq!(format!("{token:?}"), "***");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself; use it only where it has to be sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s:#?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert!(!format!("{:?}", vec![s]).contains("hunter2"));
    }

    #[test]
    fn value_and_conversions() {
        let a = Secret::from("x".to_string());
        let b = Secret::from("x");
        assert_eq!(a, b);
        assert_eq!(a.expose(), "x");
        assert_ne!(a, Secret::new("y"));
        assert!(Secret::new("").is_empty());
        assert!(!a.is_empty());
        let c = a.clone();
        assert_eq!(c.expose(), "x");
    }
}
