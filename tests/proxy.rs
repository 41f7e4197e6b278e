//! The way out through an HTTP proxy: `CONNECT` tunnels for `ws` and `wss`
//! through a real proxy (Debian's tinyproxy), plain and with Basic
//! authentication; the certificate of a `wss` server is still verified
//! through the tunnel; and the faults a proxy shows (unreachable, 407, 403,
//! 502) come back as typed errors that say what happened, and are retried.
//!
//! The proxy is given in the configuration here; the environment's proxy
//! variables are tested in `proxy_env.rs` (a binary of their own, since the
//! environment is the process's).

mod common;

use common::network::{connect_failure, free_port, FakeProxy, PrivateCa, Reply, Tinyproxy};
use common::*;
use serde_json::json;
use vantiq_connector_sdk::config::ProxySetting;
use vantiq_connector_sdk::{ConnectErrorKind, ConnectorSet, ServerConfig};

fn via(url: &str, proxy: &str) -> vantiq_connector_sdk::ServerConfigBuilder {
    ServerConfig::builder(url)
        .token(TOKEN)
        .source("s")
        .tcp_probe_port(0)
        .proxy(ProxySetting::parse(proxy).unwrap())
}

fn set(config: ServerConfig) -> ConnectorSet {
    ConnectorSet::builder(config)
        .settings(fast_settings())
        .build()
        .unwrap()
}

#[tokio::test]
async fn ws_goes_through_tinyproxy() {
    let sim = sim(&["s"]).await;
    let proxy = Tinyproxy::start(None).await;
    let config = via(&sim.http_url(), &proxy.url()).build().unwrap();
    let running = start(set(config));
    sim.wait_connected("s", WAIT).await.unwrap();
    proxy
        .wait_log(&format!("CONNECT 127.0.0.1:{} HTTP/1.1", sim.addr().port()))
        .await;
    // The whole protocol runs through the tunnel.
    let out = sim.query("s", json!({}), WAIT).await.unwrap();
    assert!(out.status >= 400, "no query handler: an error answer");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn basic_authentication_with_tinyproxy() {
    let sim = sim(&["s"]).await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cr3t-pa.ss"))).await;
    let port = proxy.port;

    // Without credentials: the proxy says 407, and the error says what to do.
    let config = via(&sim.http_url(), &proxy.url())
        .fail_on_connection_error(true)
        .build()
        .unwrap();
    let (kind, reason) = connect_failure(config).await;
    assert_eq!(kind, ConnectErrorKind::ProxyAuth, "{reason}");
    assert!(reason.contains("wants credentials"), "{reason}");

    // Wrong ones: rejected, and the password is nowhere in the error.
    let config = via(
        &sim.http_url(),
        &format!("http://alice:wrong-pw-1@127.0.0.1:{port}"),
    )
    .fail_on_connection_error(true)
    .build()
    .unwrap();
    let (kind, reason) = connect_failure(config).await;
    assert_eq!(kind, ConnectErrorKind::ProxyAuth, "{reason}");
    assert!(reason.contains("rejected the credentials"), "{reason}");
    assert!(!reason.contains("wrong-pw-1"), "{reason}");
    assert_eq!(sim.source_status("s").unwrap().connections, 0);

    // The right ones, percent-encoded in the URL (`%2D` is `-`).
    let config = via(
        &sim.http_url(),
        &format!("http://alice:s3cr3t%2Dpa.ss@127.0.0.1:{port}"),
    )
    .build()
    .unwrap();
    let running = start(set(config));
    sim.wait_connected("s", WAIT).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn wss_through_tinyproxy_verifies_the_server_certificate() {
    let sim = sim(&["s"]).await;
    let ca = PrivateCa::new();
    let tls = common::network::tls_terminator(sim.addr(), ca.chain.clone(), &ca.key).await;
    let url = format!("https://127.0.0.1:{}", tls.port());
    let proxy = Tinyproxy::start(None).await;

    // TLS runs end to end through the tunnel: a certificate the connector
    // does not trust is refused, and the error says why and what to do.
    let config = via(&url, &proxy.url())
        .trust_store(vantiq_connector_sdk::config::TrustStore::BuiltIn)
        .fail_on_connection_error(true)
        .build()
        .unwrap();
    let (kind, reason) = connect_failure(config).await;
    assert_eq!(kind, ConnectErrorKind::Tls, "{reason}");
    assert!(reason.contains("unknown issuer"), "{reason}");
    assert!(
        reason.contains(&format!("127.0.0.1:{}", tls.port())),
        "{reason}"
    );
    assert!(reason.contains("caFile"), "{reason}");
    proxy
        .wait_log(&format!("CONNECT 127.0.0.1:{} HTTP/1.1", tls.port()))
        .await;
    assert_eq!(sim.source_status("s").unwrap().connections, 0);

    // Trusting the CA, the same way through the same proxy works.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_ca(&ca_file);
    let config = via(&url, &proxy.url()).ca_file(&ca_file).build().unwrap();
    let running = start(set(config));
    sim.wait_connected("s", WAIT).await.unwrap();
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_proxy_is_named() {
    let port = free_port();
    let config = via(
        "http://127.0.0.1:9",
        &format!("http://user:unreach-pw@127.0.0.1:{port}"),
    )
    .fail_on_connection_error(true)
    .build()
    .unwrap();
    let (kind, reason) = connect_failure(config).await;
    assert_eq!(kind, ConnectErrorKind::ProxyUnreachable, "{reason}");
    assert!(
        reason.starts_with(&format!(
            "cannot reach the proxy http://***@127.0.0.1:{port}"
        )),
        "{reason}"
    );
    assert!(!reason.contains("unreach-pw"), "{reason}");
}

#[tokio::test]
async fn proxy_refusals_say_what_the_proxy_said() {
    for (status, kind, words) in [
        (
            "407 Proxy Authentication Required",
            ConnectErrorKind::ProxyAuth,
            "wants credentials",
        ),
        (
            "403 Forbidden",
            ConnectErrorKind::ProxyRefused(403),
            "refused to open a tunnel to dev.example:443 (403 Forbidden)",
        ),
        (
            "502 Bad Gateway",
            ConnectErrorKind::ProxyRefused(502),
            "refused to open a tunnel to dev.example:443 (502 Bad Gateway)",
        ),
    ] {
        let proxy = FakeProxy::start(move |_| Reply::Status(status)).await;
        let config = via("https://dev.example", &proxy.url())
            .fail_on_connection_error(true)
            .build()
            .unwrap();
        let (got, reason) = connect_failure(config).await;
        assert_eq!(got, kind, "{reason}");
        assert!(reason.contains(words), "{status}: {reason}");
        // The proxy was asked for a tunnel to the server, and nothing else.
        let heads = proxy.heads();
        assert_eq!(heads.len(), 1);
        assert!(
            heads[0].starts_with("CONNECT dev.example:443 HTTP/1.1\r\nHost: dev.example:443\r\n"),
            "{heads:?}"
        );
    }
}

#[tokio::test]
async fn a_refusing_proxy_is_retried_with_backoff() {
    let sim = sim(&["s"]).await;
    // Two refusals, then a tunnel.
    let proxy = FakeProxy::start(|n| {
        if n < 2 {
            Reply::Status("502 Bad Gateway")
        } else {
            Reply::Tunnel
        }
    })
    .await;
    let config = via(&sim.http_url(), "http://ignored:1").build().unwrap();
    let settings = fast_settings()
        .to_builder()
        .proxy(Some(ProxySetting::parse(&proxy.url()).unwrap()))
        .build();
    let set = ConnectorSet::builder(config)
        .settings(settings)
        .build()
        .unwrap();
    let running = start(set);
    sim.wait_connected("s", WAIT).await.unwrap();
    assert_eq!(proxy.heads().len(), 3, "two refusals, then the tunnel");
    assert_eq!(sim.source_status("s").unwrap().connections, 1);
    // A dropped connection is re-made through the proxy as well.
    sim.drop_connection("s").await.unwrap();
    sim.wait_connections("s", 2, WAIT).await.unwrap();
    proxy.wait_requests(4).await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn credentials_are_sent_percent_decoded_in_basic_auth() {
    let sim = sim(&["s"]).await;
    let proxy = FakeProxy::start(|_| Reply::Tunnel).await;
    let url = format!(
        "http://d%C3%A9v%20ops:p%40ss%3Aw%25rd@127.0.0.1:{}",
        proxy.addr.port()
    );
    let config = via(&sim.http_url(), &url).build().unwrap();
    let running = start(set(config));
    sim.wait_connected("s", WAIT).await.unwrap();
    running.stop().await.unwrap();
    let head = &proxy.heads()[0];
    // base64("dév ops:p@ss:w%rd")
    let expected = format!(
        "Proxy-Authorization: Basic {}\r\n",
        "ZMOpdiBvcHM6cEBzczp3JXJk"
    );
    assert!(head.contains(&expected), "{head}");
}
