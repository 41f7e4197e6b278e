//! `wss://` through rustls: a private CA, certificate checks on by default,
//! and turned off only explicitly (with a warning on every connection).
//!
//! A TLS-terminating proxy in front of the emulator serves the certificate in
//! `tests/fixtures/tls/` (a test CA and a server certificate for 127.0.0.1 and
//! localhost, valid for a century; test material only).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use vantiq_connector_sdk::{ConnectorSet, Error, ServerConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// Terminates TLS with the fixture's certificate and forwards to `backend`.
async fn tls_proxy(backend: SocketAddr) -> SocketAddr {
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    common::network::tls_terminator(backend, certs, &key).await
}

async fn setup() -> (vantiq_sim::Sim, String) {
    let sim = sim(&["tls"]).await;
    let proxy = tls_proxy(sim.addr()).await;
    (sim, format!("https://127.0.0.1:{}", proxy.port()))
}

#[tokio::test]
async fn a_private_ca_file_is_trusted() {
    let (sim, url) = setup().await;
    let config = ServerConfig::builder(url)
        .token(TOKEN)
        .source("tls")
        .ca_file(fixture("ca.pem"))
        .build()
        .unwrap();
    assert!(config.websocket_url().starts_with("wss://127.0.0.1:"));
    let running = start(
        ConnectorSet::builder(config)
            .settings(fast_settings())
            .build()
            .unwrap(),
    );
    sim.wait_connected("tls", WAIT).await.unwrap();
    let out = sim.query("tls", json!({}), WAIT).await.unwrap();
    assert!(
        out.status >= 400,
        "no query handler: an error answer, through TLS"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_certificate_is_refused_by_default() {
    let (sim, url) = setup().await;
    let config = ServerConfig::builder(url)
        .token(TOKEN)
        .source("tls")
        .fail_on_connection_error(true)
        .build()
        .unwrap();
    let err = run_to_error(config).await;
    match err {
        Error::ConnectFailed { reason, .. } => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
    assert_eq!(sim.source_status("tls").unwrap().connections, 0);
}

#[tokio::test]
async fn turning_checks_off_works_and_warns_on_every_connection() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded: every task logs to this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (sim, url) = setup().await;
    let config = ServerConfig::from_properties_str(
        &format!(
            "targetServer={url}\nsources=tls\nconnectKWArgs={{\"disableSslVerification\": true}}\n"
        ),
        None,
        Some(TOKEN.into()),
    )
    .unwrap();
    assert!(config.tls().disable_verification);
    let running = start(
        ConnectorSet::builder(config)
            .settings(fast_settings())
            .build()
            .unwrap(),
    );
    sim.wait_connected("tls", WAIT).await.unwrap();
    sim.drop_connection("tls").await.unwrap();
    sim.wait_connections("tls", 2, WAIT).await.unwrap();
    running.stop().await.unwrap();
    let logs = capture.contents();
    let warnings = logs
        .matches("TLS certificate verification is turned off")
        .count();
    assert_eq!(warnings, 2, "one warning per connection: {logs}");
}
