//! Secrets never appear in logs, errors or Debug output: every log event at
//! TRACE level, with the `log` crate's records forwarded (tungstenite's among
//! them), is captured through a full session (reconnections, a
//! reconfiguration, a rejected token, a password login, a tunnel through an
//! authenticating proxy and a proxy's refusal) and searched, for each secret
//! as written and hex-encoded (as tungstenite writes frame payloads).

mod common;

use common::network::{FakeProxy, Reply};
use common::*;
use serde_json::json;
use vantiq_connector_sdk::config::ProxySetting;
use vantiq_connector_sdk::{ConnectorSet, Handlers, ServerConfig};

const PASSWORD: &str = "wonder-pass-77";
const WRONG_TOKEN: &str = "rejected-token-secret-9981";
const RECONNECT_SECRET: &str = "reconnect-secret-4417";
const PROXY_USER: &str = "proxy-user-3178";
const PROXY_PASSWORD: &str = "proxy-pass-6624";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_errors_or_debug() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    // The `log` crate's records too, as `setup_logging` forwards them.
    vantiq_connector_sdk::logging::forward_log_records().unwrap();

    let sim = sim(&["s"]).await;
    // A full session with a token: publishes, queries, notifications, a drop,
    // a reconfiguration.
    let config = ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .source("s")
        .send_pings(true)
        .reconnect_secret(RECONNECT_SECRET)
        .build()
        .unwrap();
    let mut texts = vec![format!("{config:?}"), format!("{:?}", config.credentials())];
    let set = ConnectorSet::builder(config)
        .settings(fast_settings())
        .handler(
            Handlers::new()
                .on_publish(
                    |ctx: vantiq_connector_sdk::Context, m: serde_json::Value| async move {
                        ctx.connection().send_notification(&m).await
                    },
                )
                .on_query(|q: vantiq_connector_sdk::Query| async move {
                    q.complete(&json!({"ok": 1})).await
                }),
        )
        .build()
        .unwrap();
    texts.push(format!("{set:?}"));
    let running = start(set);
    sim.wait_connected("s", WAIT).await.unwrap();
    sim.publish("s", json!({"a": 1})).await.unwrap();
    sim.wait_notifications("s", 1, WAIT).await.unwrap();
    sim.query("s", json!({}), WAIT).await.unwrap();
    sim.drop_connection("s").await.unwrap();
    sim.wait_connections("s", 2, WAIT).await.unwrap();
    sim.set_config("s", json!({"v": 2})).await.unwrap();
    sim.wait_connections("s", 3, WAIT).await.unwrap();
    // The running set and its connection, printed.
    texts.push(format!("{:?}", running.set));
    texts.push(format!("{:?}", running.set.connection("s").unwrap()));
    texts.push(format!("{:?}", running.set.server_config()));
    running.stop().await.unwrap();

    // A rejected token.
    let config = ServerConfig::builder(sim.http_url())
        .token(WRONG_TOKEN)
        .source("s")
        .build()
        .unwrap();
    let err = run_to_error(config).await;
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));

    // A user and password.
    let config = ServerConfig::builder(sim.http_url())
        .user_password("alice", PASSWORD)
        .source("s")
        .build()
        .unwrap();
    texts.push(format!("{config:?}"));
    let running = start(
        ConnectorSet::builder(config)
            .settings(fast_settings())
            .build()
            .unwrap(),
    );
    sim.wait_connections("s", 4, WAIT).await.unwrap();
    running.stop().await.unwrap();

    // Through a proxy that wants Basic credentials: a tunnel, then a refusal.
    // It tunnels until told to refuse (a retry after a refused source must
    // still get through).
    let refuse = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refusing = refuse.clone();
    let proxy = FakeProxy::start(move |_| {
        if refusing.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::Status("407 Proxy Authentication Required")
        } else {
            Reply::Tunnel
        }
    })
    .await;
    let proxy_url = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        proxy.addr.port()
    );
    let setting = ProxySetting::parse(&proxy_url).unwrap();
    let config = ServerConfig::builder(sim.http_url())
        .token(TOKEN)
        .source("s")
        .proxy(setting.clone())
        .build()
        .unwrap();
    texts.push(format!("{config:?}"));
    texts.push(format!("{setting:?}"));
    let settings = fast_settings().to_builder().proxy(Some(setting)).build();
    texts.push(format!("{settings:?}"));
    let running = start(
        ConnectorSet::builder(config.clone())
            .settings(fast_settings())
            .build()
            .unwrap(),
    );
    sim.wait_connections("s", 5, WAIT).await.unwrap();
    // The proxy refuses the next connection: the error is printed and
    // retried, then the connection is closed.
    let asked = proxy.heads().len();
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    sim.drop_connection("s").await.unwrap();
    proxy.wait_requests(asked + 1).await;
    running.stop().await.unwrap();
    let text = format!(
        "targetServer={}\nsources=s\nauthToken={TOKEN}\nproxy={proxy_url}\nfailOnConnectionError=true\n",
        sim.http_url()
    );
    let err = run_to_error(ServerConfig::from_properties_str(&text, None, None).unwrap()).await;
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));
    let err = ServerConfig::from_properties_str(&text.replace("@127", "@bad host"), None, None)
        .unwrap_err();
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));
    assert!(
        proxy.heads()[0].contains("Proxy-Authorization: Basic "),
        "the credentials were sent"
    );

    // A configuration error from a file.
    let err = ServerConfig::from_properties_str(
        &format!("authToken={TOKEN}\nsources=s\ntargetServer=ftp://nowhere\n"),
        None,
        None,
    )
    .unwrap_err();
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));

    let logs = capture.contents();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the capture saw no low-level events"
    );
    assert!(logs.contains("connected"), "the capture missed the session");
    assert!(
        logs.contains("tungstenite"),
        "the capture missed the log crate's records"
    );
    assert!(logs.contains("127.0.0.1:"), "the capture missed the proxy");
    for secret in [
        TOKEN,
        WRONG_TOKEN,
        PASSWORD,
        RECONNECT_SECRET,
        PROXY_USER,
        PROXY_PASSWORD,
    ] {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for form in [secret, hex.as_str()] {
            assert!(!logs.contains(form), "`{secret}` appears in the logs");
            for t in &texts {
                assert!(!t.contains(form), "`{secret}` appears in: {t}");
            }
        }
    }
}
