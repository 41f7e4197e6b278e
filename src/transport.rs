//! The transport: a WebSocket over TCP, or over TLS with rustls.
//!
//! Everything that knows about the WebSocket library lives here and in the
//! connection task's frame handling, so the library can be swapped. TLS uses
//! the Mozilla root certificates (`webpki-roots`, so a connector image needs
//! no system certificate store), plus an optional private CA file; checks can
//! be turned off only explicitly, and a warning is then logged on every
//! connection.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::ServerConfig;
use crate::settings::Settings;

/// The initial read buffer of each WebSocket.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// A connected WebSocket.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// How to open a source's WebSocket; built once per connector set.
pub(crate) struct Transport {
    url: String,
    tls: Option<Arc<ClientConfig>>,
    insecure: bool,
    ws_config: WebSocketConfig,
    /// Bounds the handshakes in progress across the set.
    handshakes: tokio::sync::Semaphore,
}

impl Transport {
    /// Prepares connections to `config`'s server.
    pub(crate) fn new(config: &ServerConfig, settings: &Settings) -> Result<Self, TlsError> {
        let url = config.websocket_url().to_owned();
        let insecure = config.tls().disable_verification;
        let tls = if url.starts_with("wss:") {
            Some(Arc::new(client_config(config)?))
        } else {
            None
        };
        // Messages between the limit and twice the limit are read and then
        // skipped by the connection task; beyond that the WebSocket library
        // refuses them and the connection is re-made.
        let hard_limit = settings.max_message_size.saturating_mul(2);
        // A small read buffer keeps idle sources cheap (tungstenite's default
        // is 128 KiB each); it grows for large messages as needed.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .max_message_size(Some(hard_limit))
            .max_frame_size(Some(hard_limit));
        Ok(Transport {
            url,
            tls,
            insecure,
            ws_config,
            handshakes: tokio::sync::Semaphore::new(settings.max_concurrent_handshakes.max(1)),
        })
    }

    /// Waits for a turn to hand-shake (see
    /// [`Settings::max_concurrent_handshakes`]); the turn ends when the
    /// permit is dropped.
    pub(crate) async fn handshake_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.handshakes
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The WebSocket URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Opens one WebSocket (no timeout here: the caller bounds the whole
    /// handshake).
    pub(crate) async fn connect(&self) -> Result<WsStream, tokio_tungstenite::tungstenite::Error> {
        if self.insecure && self.tls.is_some() {
            tracing::warn!(url = %self.url, "TLS certificate verification is turned off for this connection");
        }
        let connector = match &self.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
            self.url.as_str(),
            Some(self.ws_config),
            true,
            Some(connector),
        )
        .await?;
        Ok(ws)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for `config`.
fn client_config(config: &ServerConfig) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if config.tls().disable_verification {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
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
