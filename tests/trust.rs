//! Whom a `wss` connection trusts: by default what the machine trusts, where
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` name the certificates when set, as with
//! Python and Java; `caFile` adds to that; `trustStore=builtin` keeps to the
//! web roots built into the SDK. A private CA made for each test signs the
//! server's certificate, served by a TLS terminator in front of the emulator.
//!
//! The environment belongs to the whole process: every test of this binary
//! holds [`ENV`] for its whole run.

mod common;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use common::network::{connect_failure, tls_terminator, PrivateCa};
use common::*;
use vantiq_connector_sdk::config::TrustStore;
use vantiq_connector_sdk::{
    ConnectErrorKind, ConnectorSet, Error, ServerConfig, ServerConfigBuilder, SetupError,
};

static ENV: Mutex<()> = Mutex::new(());

/// Holds the environment with `SSL_CERT_FILE` and `SSL_CERT_DIR` set as
/// given (unset otherwise), until dropped.
struct Env(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Env {
    fn set(file: Option<&Path>, dir: Option<&str>) -> Env {
        let guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        clear();
        if let Some(file) = file {
            std::env::set_var("SSL_CERT_FILE", file);
        }
        if let Some(dir) = dir {
            std::env::set_var("SSL_CERT_DIR", dir);
        }
        Env(guard)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        clear();
    }
}

fn clear() {
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
}

/// The emulator behind TLS with a certificate of `ca`, and a configuration
/// builder for it.
struct Server {
    sim: vantiq_sim::Sim,
    url: String,
}

impl Server {
    async fn start(ca: &PrivateCa) -> Server {
        let sim = sim(&["s"]).await;
        let tls = tls_terminator(sim.addr(), ca.chain.clone(), &ca.key).await;
        Server {
            sim,
            url: format!("https://127.0.0.1:{}", tls.port()),
        }
    }

    fn config(&self) -> ServerConfigBuilder {
        ServerConfig::builder(&self.url)
            .token(TOKEN)
            .source("s")
            .tcp_probe_port(0)
            .proxy(vantiq_connector_sdk::config::ProxySetting::Direct)
    }

    /// Connects with `config` and closes again.
    async fn connects(&self, config: ServerConfig) {
        let before = self.sim.source_status("s").map_or(0, |s| s.connections);
        let set = ConnectorSet::builder(config)
            .settings(fast_settings())
            .build()
            .unwrap();
        let running = start(set);
        self.sim
            .wait_connections("s", before + 1, WAIT)
            .await
            .unwrap();
        running.stop().await.unwrap();
    }

    /// Runs `config` to its connection error (with failOnConnectionError).
    async fn refused(&self, config: ServerConfigBuilder) -> (ConnectErrorKind, String) {
        connect_failure(config.fail_on_connection_error(true).build().unwrap()).await
    }
}

#[tokio::test]
async fn a_private_ca_is_refused_until_trusted_and_the_error_says_what_to_do() {
    let _env = Env::set(None, None);
    let ca = PrivateCa::new();
    let server = Server::start(&ca).await;
    let (kind, reason) = server.refused(server.config()).await;
    assert_eq!(kind, ConnectErrorKind::Tls, "{reason}");
    let host = server.url.trim_start_matches("https://");
    assert!(reason.contains(host), "names the server: {reason}");
    assert!(reason.contains("unknown issuer"), "says why: {reason}");
    for remedy in ["caFile", "SSL_CERT_FILE", "SSL_CERT_DIR"] {
        assert!(reason.contains(remedy), "says what to do: {reason}");
    }
    // Without failOnConnectionError it is retried like any failure.
    let settings = fast_settings()
        .to_builder()
        .max_reconnect_attempts(Some(3))
        .build();
    let set = ConnectorSet::builder(server.config().build().unwrap())
        .settings(settings)
        .build()
        .unwrap();
    match tokio::time::timeout(WAIT, set.run()).await.unwrap() {
        Err(Error::ConnectFailed { kind, reason, .. }) => {
            assert_eq!(kind, ConnectErrorKind::Tls);
            assert!(reason.ends_with("(gave up after 3 attempts)"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.sim.source_status("s").map_or(0, |s| s.connections),
        0
    );
}

#[tokio::test]
async fn ssl_cert_file_is_trusted() {
    let ca = PrivateCa::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("company-ca.pem");
    ca.write_ca(&file);
    let _env = Env::set(Some(&file), None);
    let server = Server::start(&ca).await;
    server.connects(server.config().build().unwrap()).await;
}

#[tokio::test]
async fn ssl_cert_dir_is_trusted() {
    let ca = PrivateCa::new();
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ca.write_ca(&dir.path().join("company-ca.pem"));
    // A list of directories, as OpenSSL takes it.
    let dirs = format!("{}:{}", empty.path().display(), dir.path().display());
    let _env = Env::set(None, Some(&dirs));
    let server = Server::start(&ca).await;
    server.connects(server.config().build().unwrap()).await;
}

#[tokio::test]
async fn ca_file_adds_to_the_trust_store() {
    let ca = PrivateCa::new();
    let other = PrivateCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, other_file) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    ca.write_ca(&ca_file);
    other.write_ca(&other_file);
    // SSL_CERT_FILE names another CA: caFile still adds this one.
    let _env = Env::set(Some(&other_file), None);
    let server = Server::start(&ca).await;
    let (kind, _) = server.refused(server.config()).await;
    assert_eq!(kind, ConnectErrorKind::Tls);
    server
        .connects(server.config().ca_file(&ca_file).build().unwrap())
        .await;
    // And with the built-in roots.
    server
        .connects(
            server
                .config()
                .trust_store(TrustStore::BuiltIn)
                .ca_file(&ca_file)
                .build()
                .unwrap(),
        )
        .await;
}

#[tokio::test]
async fn builtin_roots_ignore_the_environment() {
    let ca = PrivateCa::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    ca.write_ca(&file);
    let _env = Env::set(Some(&file), None);
    let server = Server::start(&ca).await;
    let text = format!(
        "targetServer={}\nsources=s\ntcpProbePort=0\nproxy=none\ntrustStore=builtin\nfailOnConnectionError=true\n",
        server.url
    );
    let config = ServerConfig::from_properties_str(&text, None, Some(TOKEN.into())).unwrap();
    let (kind, reason) = connect_failure(config).await;
    assert_eq!(kind, ConnectErrorKind::Tls, "{reason}");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_as_such() {
    let _env = Env::set(None, None);
    let ca = PrivateCa::for_names(&["other.example"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    ca.write_ca(&file);
    let server = Server::start(&ca).await;
    let (kind, reason) = server.refused(server.config().ca_file(&file)).await;
    assert_eq!(kind, ConnectErrorKind::Tls, "{reason}");
    assert!(reason.contains("not valid for that name"), "{reason}");
}

#[tokio::test]
async fn an_unusable_ssl_cert_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let _env = Env::set(Some(&missing), None);
    let config = ServerConfig::builder("https://127.0.0.1:1")
        .token(TOKEN)
        .source("s")
        .build()
        .unwrap();
    let err = ConnectorSet::builder(config).build().unwrap_err();
    assert!(matches!(err, SetupError::Tls(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("SSL_CERT_FILE={}: ", missing.display())),
        "{err}"
    );
}
