//! The proxy from the environment, as curl and Python read it: `HTTP_PROXY`
//! for `ws`, `HTTPS_PROXY` for `wss`, `ALL_PROXY` as the fallback (each also
//! in lower case), `NO_PROXY` for the hosts reached directly; and what
//! overrides it (`proxy=none` in server.config, `Settings::proxy`).
//!
//! The environment belongs to the whole process: every test of this binary
//! holds [`ENV`] for its whole run, so no test reads a variable another one
//! is changing.

mod common;

use std::sync::{Mutex, MutexGuard};

use common::network::{free_port, tls_terminator, FakeProxy, PrivateCa, Reply};
use common::*;
use vantiq_connector_sdk::config::ProxySetting;
use vantiq_connector_sdk::{ConnectorSet, ServerConfig, Settings, SetupError};

static ENV: Mutex<()> = Mutex::new(());

const NAMES: [&str; 4] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"];

/// Holds the environment; sets exactly `vars` among the proxy variables (both
/// cases) and clears the others, until dropped.
struct Env(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Env {
    fn set(vars: &[(&str, &str)]) -> Env {
        let guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        clear();
        for (name, value) in vars {
            std::env::set_var(name, value);
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
    for name in NAMES {
        std::env::remove_var(name);
        std::env::remove_var(name.to_ascii_lowercase());
    }
}

fn build(config: ServerConfig, settings: Settings) -> ConnectorSet {
    ConnectorSet::builder(config)
        .settings(settings)
        .build()
        .unwrap()
}

#[tokio::test]
async fn http_proxy_carries_ws() {
    let sim = sim(&["s"]).await;
    let proxy = FakeProxy::start(|_| Reply::Tunnel).await;
    let unused = FakeProxy::start(|_| Reply::Tunnel).await;
    let _env = Env::set(&[("HTTP_PROXY", &proxy.url()), ("https_proxy", &unused.url())]);
    let running = start(build(config_for(&sim, &["s"]), fast_settings()));
    sim.wait_connected("s", WAIT).await.unwrap();
    running.stop().await.unwrap();
    let heads = proxy.heads();
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1", sim.addr().port())),
        "{heads:?}"
    );
    assert!(unused.heads().is_empty(), "HTTPS_PROXY is for wss only");
}

#[tokio::test]
async fn https_proxy_carries_wss_and_all_proxy_is_the_fallback() {
    let sim = sim(&["s"]).await;
    let ca = PrivateCa::new();
    let tls = tls_terminator(sim.addr(), ca.chain.clone(), &ca.key).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca(&ca_file);
    let config = ServerConfig::builder(format!("https://127.0.0.1:{}", tls.port()))
        .token(TOKEN)
        .source("s")
        .tcp_probe_port(0)
        .ca_file(&ca_file)
        .build()
        .unwrap();
    let target = format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port());

    let secure = FakeProxy::start(|_| Reply::Tunnel).await;
    let plain = FakeProxy::start(|_| Reply::Tunnel).await;
    {
        let _env = Env::set(&[("HTTPS_PROXY", &secure.url()), ("HTTP_PROXY", &plain.url())]);
        let running = start(build(config.clone(), fast_settings()));
        sim.wait_connections("s", 1, WAIT).await.unwrap();
        running.stop().await.unwrap();
    }
    assert!(
        secure.heads()[0].starts_with(&target),
        "{:?}",
        secure.heads()
    );
    assert!(plain.heads().is_empty());

    let fallback = FakeProxy::start(|_| Reply::Tunnel).await;
    {
        let _env = Env::set(&[("all_proxy", &fallback.url())]);
        let running = start(build(config, fast_settings()));
        sim.wait_connections("s", 2, WAIT).await.unwrap();
        running.stop().await.unwrap();
    }
    assert!(
        fallback.heads()[0].starts_with(&target),
        "{:?}",
        fallback.heads()
    );
}

#[tokio::test]
async fn no_proxy_reaches_listed_hosts_directly() {
    let sim = sim(&["s"]).await;
    let proxy = FakeProxy::start(|_| Reply::Status("403 Forbidden")).await;
    for no_proxy in [
        "example.com, 127.0.0.0/8",
        "127.0.0.1",
        "*",
        &format!("127.0.0.1:{}", sim.addr().port()),
    ] {
        let _env = Env::set(&[("HTTP_PROXY", &proxy.url()), ("no_proxy", no_proxy)]);
        let before = sim.source_status("s").map_or(0, |s| s.connections);
        let running = start(build(config_for(&sim, &["s"]), fast_settings()));
        sim.wait_connections("s", before + 1, WAIT).await.unwrap();
        running.stop().await.unwrap();
    }
    assert!(proxy.heads().is_empty(), "{:?}", proxy.heads());

    // An entry for another port does not match: the proxy is asked.
    let _env = Env::set(&[("HTTP_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1:1")]);
    let running = start(build(config_for(&sim, &["s"]), fast_settings()));
    proxy.wait_requests(1).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn the_configuration_and_settings_override_the_environment() {
    let sim = sim(&["s"]).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let _env = Env::set(&[("HTTP_PROXY", &dead), ("ALL_PROXY", &dead)]);

    // `proxy=none` in server.config.
    let text = format!(
        "targetServer={}\nsources=s\ntcpProbePort=0\nproxy=none\n",
        sim.http_url()
    );
    let config = ServerConfig::from_properties_str(&text, None, Some(TOKEN.into())).unwrap();
    let running = start(build(config, fast_settings()));
    sim.wait_connections("s", 1, WAIT).await.unwrap();
    running.stop().await.unwrap();

    // `Settings::proxy` over a configuration that reads the environment.
    let settings = fast_settings()
        .to_builder()
        .proxy(Some(ProxySetting::Direct))
        .build();
    let running = start(build(config_for(&sim, &["s"]), settings));
    sim.wait_connections("s", 2, WAIT).await.unwrap();
    running.stop().await.unwrap();

    // `Settings::proxy` naming a proxy wins over server.config's `proxy=none`.
    let proxy = FakeProxy::start(|_| Reply::Tunnel).await;
    let config = ServerConfig::from_properties_str(&text, None, Some(TOKEN.into())).unwrap();
    let settings = fast_settings()
        .to_builder()
        .proxy(Some(ProxySetting::parse(&proxy.url()).unwrap()))
        .build();
    let running = start(build(config, settings));
    sim.wait_connections("s", 3, WAIT).await.unwrap();
    running.stop().await.unwrap();
    assert_eq!(proxy.heads().len(), 1);
}

#[tokio::test]
async fn an_unusable_proxy_variable_stops_the_start() {
    let sim = sim(&["s"]).await;
    let _env = Env::set(&[("HTTP_PROXY", "socks5h://user:env-secret-3@proxy:1080")]);
    let err = ConnectorSet::builder(config_for(&sim, &["s"]))
        .build()
        .unwrap_err();
    assert!(matches!(err, SetupError::Proxy(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("environment variable HTTP_PROXY: unsupported proxy scheme `socks5h://`"),
        "{text}"
    );
    assert!(!format!("{text} {err:?}").contains("env-secret-3"));
}
