//! TLS for the transport: the rustls client configuration of a connector
//! set (roots, the optional private CA file, verification turned off only
//! when asked for), and the words for a certificate that fails verification.
//!
//! The roots are what the machine trusts, as with Python and Java: the files
//! of `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set, else the system's
//! store (read by `rustls-native-certs`); `trustStore=builtin` takes the
//! Mozilla roots compiled in instead, for images without a CA bundle. `caFile`
//! adds to either.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{ServerConfig, TrustStore};

/// The variable naming a PEM file of trusted certificates.
const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// The variable naming directories of trusted certificates.
const SSL_CERT_DIR: &str = "SSL_CERT_DIR";

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `SSL_CERT_FILE` or `SSL_CERT_DIR` is set but names nothing usable.
    #[error("{variable}={value}: {reason}")]
    TrustStore {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for `config`.
pub(crate) fn client_config(config: &ServerConfig) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if config.tls().disable_verification {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = roots(config.tls().trust_store, |name| std::env::var_os(name))?;
    if let Some(path) = &config.tls().ca_file {
        let ca_error = |reason: String| TlsError::CaFile {
            path: path.clone(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn builtin_roots() -> RootCertStore {
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

/// The roots of trust before `caFile`; `env` reads a variable.
fn roots(
    store: TrustStore,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<RootCertStore, TlsError> {
    if store == TrustStore::BuiltIn {
        tracing::debug!("trusting the built-in web roots (trustStore=builtin)");
        return Ok(builtin_roots());
    }
    let file = env(SSL_CERT_FILE)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let dirs: Vec<PathBuf> = env(SSL_CERT_DIR)
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if file.is_none() && dirs.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "skipped part of the system trust store");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "the system trust store has no certificate (no CA bundle in this image?): \
                 trusting the built-in web roots instead; set trustStore=builtin to say so, \
                 or install ca-certificates"
            );
            return Ok(builtin_roots());
        }
        tracing::debug!(added, ignored, "trusting the system trust store");
        return Ok(roots);
    }
    let mut roots = RootCertStore::empty();
    let named = |variable: &'static str, path: &PathBuf, reason: String| TlsError::TrustStore {
        variable,
        value: path.display().to_string(),
        reason,
    };
    if let Some(path) = &file {
        let found = rustls_native_certs::load_certs_from_paths(Some(path), None);
        if let Some(e) = found.errors.first() {
            return Err(named(SSL_CERT_FILE, path, e.to_string()));
        }
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(named(
                SSL_CERT_FILE,
                path,
                "no PEM certificate in it".into(),
            ));
        }
        tracing::debug!(file = %path.display(), added, "trusting SSL_CERT_FILE");
    }
    for dir in &dirs {
        let found = rustls_native_certs::load_certs_from_paths(None, Some(dir));
        if let Some(e) = found.errors.first() {
            return Err(named(SSL_CERT_DIR, dir, e.to_string()));
        }
        let (added, _) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(dir = %dir.display(), added, "trusting SSL_CERT_DIR");
    }
    if roots.is_empty() {
        let value = std::env::join_paths(&dirs)
            .map_or_else(|_| String::new(), |v| v.to_string_lossy().into_owned());
        return Err(TlsError::TrustStore {
            variable: SSL_CERT_DIR,
            value,
            reason: "no PEM certificate in these directories".into(),
        });
    }
    Ok(roots)
}

/// Says why a server's certificate was refused, and what to do, when `error`
/// is a certificate verification failure.
pub(crate) fn explain(error: &rustls::Error, server: &str) -> Option<String> {
    use rustls::CertificateError as E;
    let rustls::Error::InvalidCertificate(cert) = error else {
        return None;
    };
    let trust_hint = "if the server uses a private or company CA, name its certificate in \
        `caFile` (server.config), or point SSL_CERT_FILE or SSL_CERT_DIR at it";
    Some(match cert {
        E::UnknownIssuer => format!(
            "the certificate of {server} is not signed by an authority this connector trusts \
             (unknown issuer): {trust_hint}"
        ),
        E::Expired | E::ExpiredContext { .. } => format!(
            "the certificate of {server} has expired ({cert}): the server must renew it \
             (or check this machine's clock)"
        ),
        E::NotValidYet | E::NotValidYetContext { .. } => format!(
            "the certificate of {server} is not valid yet ({cert}): check this machine's clock"
        ),
        E::NotValidForName | E::NotValidForNameContext { .. } => format!(
            "the certificate of {server} is not valid for that name ({cert}): \
             check `targetServer`"
        ),
        E::Revoked => format!("the certificate of {server} has been revoked"),
        other => format!("the certificate of {server} was refused ({other}): {trust_hint}"),
    })
}

/// Accepts any server certificate (signatures are still checked). Used only
/// when `connectKWArgs` says `disableSslVerification: true`.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roots_are_not_empty() {
        let roots = roots(TrustStore::BuiltIn, |_| Some("/nonexistent".into())).unwrap();
        assert!(roots.len() > 100);
    }

    #[test]
    fn variables_that_name_nothing_are_errors_that_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let env_file =
            |name: &str| (name == SSL_CERT_FILE).then(|| missing.clone().into_os_string());
        let e = roots(TrustStore::Platform, env_file).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("SSL_CERT_FILE={}: ", missing.display())),
            "{e}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots(TrustStore::Platform, |name| {
            (name == SSL_CERT_FILE).then(|| empty.clone().into_os_string())
        })
        .unwrap_err();
        assert!(e.to_string().ends_with("no PEM certificate in it"), "{e}");

        let e = roots(TrustStore::Platform, |name| {
            (name == SSL_CERT_DIR).then(|| dir.path().join("nodir").into_os_string())
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("SSL_CERT_DIR="), "{e}");
    }

    #[test]
    fn explanations_name_the_server_and_the_remedy() {
        use rustls::CertificateError as E;
        let why =
            |e: E| explain(&rustls::Error::InvalidCertificate(e), "dev.vantiq.com:443").unwrap();
        let unknown = why(E::UnknownIssuer);
        assert!(
            unknown.contains("dev.vantiq.com:443") && unknown.contains("unknown issuer"),
            "{unknown}"
        );
        assert!(
            unknown.contains("caFile") && unknown.contains("SSL_CERT_FILE"),
            "{unknown}"
        );
        assert!(why(E::Expired).contains("has expired"));
        assert!(why(E::NotValidForName).contains("not valid for that name"));
        assert!(explain(&rustls::Error::DecryptError, "h").is_none());
    }
}
