use super::*;
use std::io;
use std::net::Ipv6Addr;

const BASE: &str = "targetServer=https://dev.vantiq.com/\nsources=a\nauthToken=tok\n";

fn cfg(text: &str) -> Result<ServerConfig, ConfigError> {
    ServerConfig::from_properties_str(text, Some(Path::new("serverConfig/server.config")), None)
}

fn ok(text: &str) -> ServerConfig {
    cfg(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ConfigError {
    match cfg(text) {
        Ok(c) => panic!("{text:?} should fail, got {c:?}"),
        Err(e) => e,
    }
}

fn token(c: &ServerConfig) -> &str {
    match c.credentials() {
        Credentials::Token(t) => t.expose(),
        other => panic!("expected a token, got {other:?}"),
    }
}

// ---- URL rewriting ----

#[test]
fn url_rewrite_examples() {
    let cases = [
        (
            "https://dev.vantiq.com/",
            "wss://dev.vantiq.com/api/v1/wsock/websocket",
        ),
        (
            "https://dev.vantiq.com",
            "wss://dev.vantiq.com/api/v1/wsock/websocket",
        ),
        (
            "http://localhost:8080",
            "ws://localhost:8080/api/v1/wsock/websocket",
        ),
        (
            "HTTPS://Dev.Vantiq.com/ui/ide",
            "wss://Dev.Vantiq.com/api/v1/wsock/websocket",
        ),
        (
            "ws://h:1/api/v1/wsock/websocket",
            "ws://h:1/api/v1/wsock/websocket",
        ),
        (
            "wss://h/api/v12/wsock/websocket",
            "wss://h/api/v12/wsock/websocket",
        ),
        (
            "https://h/prefix/api/v2/wsock/websocket",
            "wss://h/prefix/api/v2/wsock/websocket",
        ),
        (
            "https://h/api/vX/wsock/websocket",
            "wss://h/api/v1/wsock/websocket",
        ),
        (
            "https://h/api/v/wsock/websocket",
            "wss://h/api/v1/wsock/websocket",
        ),
        (
            "https://h/api/v1/wsock/websocket/",
            "wss://h/api/v1/wsock/websocket",
        ),
        ("https://h?x=1#frag", "wss://h/api/v1/wsock/websocket?x=1"),
        ("https://h/path?#frag", "wss://h/api/v1/wsock/websocket"),
        (
            "https://[::1]:8443/",
            "wss://[::1]:8443/api/v1/wsock/websocket",
        ),
        (
            "http://127.0.0.1:65535",
            "ws://127.0.0.1:65535/api/v1/wsock/websocket",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(websocket_url(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn url_rewrite_errors() {
    let cases = [
        ("", "empty"),
        ("dev.vantiq.com", "not an absolute URL"),
        ("ftp://dev.vantiq.com", "scheme `ftp`"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("https://:443", "no host"),
        ("https://h:port", "invalid port `port`"),
        ("https://h:65536", "invalid port"),
        ("https://h:+1", "invalid port"),
        ("https://h:", "invalid port ``"),
        ("https://user:pw@h", "user information"),
        ("https://h x", "whitespace"),
        ("https://[::1", "unclosed"),
        ("https://[zz]", "IPv6"),
        ("https://[::1]x", "unexpected"),
        ("https://h!/", "invalid character `!`"),
    ];
    for (input, needle) in cases {
        let e = websocket_url(input).unwrap_err();
        let ConfigError::InvalidUrl { path, url, reason } = &e else {
            panic!("{input}: {e:?}");
        };
        assert!(path.is_none());
        assert_eq!(url, input);
        assert!(reason.contains(needle), "{input}: {reason}");
        assert!(
            e.to_string().starts_with("in code: `targetServer` value"),
            "{e}"
        );
    }
    // The password is not echoed in... well, it is part of the URL as written; but the
    // reason does not repeat it.
    let e = websocket_url("https://user:pw@h").unwrap_err();
    let ConfigError::InvalidUrl { reason, .. } = e else {
        unreachable!()
    };
    assert!(!reason.contains("pw"));
}

#[test]
fn invalid_url_in_file_names_file() {
    let e = err("targetServer=gopher://x\nsources=a\nauthToken=t");
    assert!(matches!(e, ConfigError::InvalidUrl { .. }));
    assert!(e
        .to_string()
        .starts_with("serverConfig/server.config: `targetServer` value `gopher://x`"));
    assert_eq!(e.path(), Some(Path::new("serverConfig/server.config")));
}

// ---- basic file parsing ----

#[test]
fn minimal_file_and_defaults() {
    let c = ok(BASE);
    assert_eq!(c.target_server(), "https://dev.vantiq.com/");
    assert_eq!(
        c.websocket_url(),
        "wss://dev.vantiq.com/api/v1/wsock/websocket"
    );
    assert_eq!(token(&c), "tok");
    assert_eq!(c.sources(), ["a"]);
    assert!(!c.send_pings());
    assert!(!c.fail_on_connection_error());
    assert_eq!(c.tcp_probe_port(), 8000);
    assert_eq!(c.tcp_probe_port(), ServerConfig::DEFAULT_TCP_PROBE_PORT);
    assert_eq!(c.tcp_probe_host(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.tcp_probe_addr(), "0.0.0.0:8000".parse().unwrap());
    assert!(c.reconnect_secret().is_none());
    assert_eq!(c.tls(), &TlsSettings::default());
    assert!(!c.tls().disable_verification);
    assert!(c.tls().ca_file.is_none());
    assert!(c.connect_kwargs().is_none());
    assert_eq!(c.origin(), Some(Path::new("serverConfig/server.config")));
}

#[test]
fn full_file() {
    let text = "\
# all keys
targetServer = http://localhost:8080
authToken: abc==
sources = one , two,\\
          three
sendPings=TRUE
failOnConnectionError=True
tcpProbePort=9000
tcpProbeHost=127.0.0.1
reconnectSecret=fixed part
connectKWArgs={\"disableSslVerification\": true, \"open_timeout\": 5}
caFile=/etc/ca.pem
unknownKey=ignored
";
    let c = ok(text);
    assert_eq!(c.target_server(), "http://localhost:8080");
    assert_eq!(
        c.websocket_url(),
        "ws://localhost:8080/api/v1/wsock/websocket"
    );
    assert_eq!(token(&c), "abc==");
    assert_eq!(c.sources(), ["one", "two", "three"]);
    assert!(c.send_pings());
    assert!(c.fail_on_connection_error());
    assert_eq!(c.tcp_probe_port(), 9000);
    assert_eq!(c.tcp_probe_host(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.reconnect_secret().unwrap().expose(), "fixed part");
    assert!(c.tls().disable_verification);
    assert_eq!(c.tls().ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
    let kw = c.connect_kwargs().unwrap();
    assert_eq!(kw["open_timeout"], 5);
    assert_eq!(kw["disableSslVerification"], true);
}

#[test]
fn later_keys_win() {
    let c = ok("targetServer=http://a\ntargetServer=http://b\nsources=x\nsources=y\nauthToken=t");
    assert_eq!(c.target_server(), "http://b");
    assert_eq!(c.sources(), ["y"]);
}

#[test]
fn keys_are_case_sensitive() {
    // `authtoken` is not `authToken`.
    let e = err("targetServer=http://a\nsources=x\nauthtoken=t");
    assert!(matches!(e, ConfigError::MissingCredentials { .. }), "{e:?}");
    let e = err("targetserver=http://a\nsources=x\nauthToken=t");
    assert!(
        matches!(e, ConfigError::MissingTargetServer { .. }),
        "{e:?}"
    );
}

#[test]
fn values_are_trimmed() {
    let c = ok(
        "targetServer=http://a   \nsources=x  \nauthToken=t \t\nsendPings=true  \ntcpProbePort=81 ",
    );
    assert_eq!(c.target_server(), "http://a");
    assert_eq!(token(&c), "t");
    assert!(c.send_pings());
    assert_eq!(c.tcp_probe_port(), 81);
}

#[test]
fn properties_error_names_file_and_line() {
    let e = err("targetServer=http://a\nsources=\\u00ZZ");
    assert!(matches!(
        &e,
        ConfigError::Properties {
            source: PropertiesError::MalformedUnicodeEscape { line: 2, .. },
            ..
        }
    ));
    let msg = e.to_string();
    assert!(
        msg.starts_with("serverConfig/server.config: line 2: malformed"),
        "{msg}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

// ---- targetServer ----

#[test]
fn missing_target_server() {
    for text in [
        "sources=a\nauthToken=t",
        "targetServer=\nsources=a",
        "targetServer=   ",
    ] {
        let e = err(text);
        assert!(
            matches!(e, ConfigError::MissingTargetServer { .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "serverConfig/server.config: `targetServer` is missing"
        );
    }
}

// ---- sources ----

#[test]
fn sources_parsing() {
    let c = ok("targetServer=http://a\nauthToken=t\nsources=  a,b ,\tc\t, d ");
    assert_eq!(c.sources(), ["a", "b", "c", "d"]);
}

#[test]
fn missing_sources() {
    for text in [
        "targetServer=http://a\nauthToken=t",
        "targetServer=http://a\nauthToken=t\nsources=",
        "targetServer=http://a\nauthToken=t\nsources=  ",
    ] {
        let e = err(text);
        assert!(matches!(e, ConfigError::MissingSources { .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("serverConfig/server.config: `sources` is missing or empty"));
    }
}

#[test]
fn empty_source_entries() {
    for (list, position) in [("a,,b", 2), ("a,", 2), (",a", 1), ("a, ,b", 2), (",", 1)] {
        let e = err(&format!(
            "targetServer=http://a\nauthToken=t\nsources={list}"
        ));
        match &e {
            ConfigError::EmptySource {
                position: p, path, ..
            } => {
                assert_eq!(*p, position, "{list}");
                assert!(path.is_some());
            }
            other => panic!("{list}: {other:?}"),
        }
        assert!(e.to_string().contains("is empty"), "{e}");
    }
}

#[test]
fn source_names_with_whitespace_or_duplicates() {
    let e = err("targetServer=http://a\nauthToken=t\nsources=my source");
    assert!(
        matches!(&e, ConfigError::InvalidSource { name, .. } if name == "my source"),
        "{e:?}"
    );
    assert!(e.to_string().contains("whitespace"));
    let e = err("targetServer=http://a\nauthToken=t\nsources=a,b,a");
    assert!(matches!(&e, ConfigError::DuplicateSource { name, .. } if name == "a"));
    assert_eq!(
        e.to_string(),
        "serverConfig/server.config: source `a` is listed twice in `sources`"
    );
}

// ---- credentials ----

#[test]
fn env_token_fallback() {
    let text = "targetServer=http://a\nsources=s";
    let c = ServerConfig::from_properties_str(text, None, Some("envtok".into())).unwrap();
    assert_eq!(token(&c), "envtok");
    // The file wins.
    let c = ServerConfig::from_properties_str(
        &format!("{text}\nauthToken=filetok"),
        None,
        Some("envtok".into()),
    )
    .unwrap();
    assert_eq!(token(&c), "filetok");
    // An empty authToken counts as absent.
    let c = ServerConfig::from_properties_str(
        &format!("{text}\nauthToken="),
        None,
        Some("envtok".into()),
    )
    .unwrap();
    assert_eq!(token(&c), "envtok");
    // An empty environment token counts as absent too.
    let e = ServerConfig::from_properties_str(text, None, Some("  ".into())).unwrap_err();
    assert!(matches!(e, ConfigError::MissingCredentials { path: None }));
    assert!(e.to_string().starts_with("in code: no credentials"), "{e}");
}

#[test]
fn user_password() {
    let c = ok("targetServer=http://a\nsources=s\nusername=me\npassword=\\ p w ");
    assert_eq!(
        c.credentials(),
        &Credentials::UserPassword {
            username: "me".into(),
            password: Secret::new(" p w ")
        }
    );
    // A token wins, from the file or the environment.
    let c = ok("targetServer=http://a\nsources=s\nusername=me\npassword=pw\nauthToken=t");
    assert_eq!(token(&c), "t");
    let c = ServerConfig::from_properties_str(
        "targetServer=http://a\nsources=s\nusername=me\npassword=pw",
        None,
        Some("env".into()),
    )
    .unwrap();
    assert_eq!(token(&c), "env");
}

#[test]
fn incomplete_user_password() {
    let e = err("targetServer=http://a\nsources=s\nusername=me");
    assert!(matches!(
        e,
        ConfigError::IncompleteUserPassword {
            missing: "password",
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "serverConfig/server.config: `password` is missing (`username` and `password` go together)"
    );
    let e = err("targetServer=http://a\nsources=s\npassword=pw\nusername=");
    assert!(matches!(
        e,
        ConfigError::IncompleteUserPassword {
            missing: "username",
            ..
        }
    ));
}

#[test]
fn missing_credentials() {
    let e = err("targetServer=http://a\nsources=s");
    assert!(matches!(e, ConfigError::MissingCredentials { .. }));
    assert!(e.to_string().contains("CONNECTOR_AUTH_TOKEN"));
}

// ---- booleans, ports, hosts ----

#[test]
fn booleans() {
    for (v, expected) in [
        ("true", true),
        ("TRUE", true),
        ("tRuE", true),
        ("false", false),
        ("False", false),
        ("", false),
    ] {
        let c = ok(&format!("{BASE}sendPings={v}\nfailOnConnectionError={v}"));
        assert_eq!(c.send_pings(), expected, "{v}");
        assert_eq!(c.fail_on_connection_error(), expected, "{v}");
    }
    for (key, v) in [
        ("sendPings", "yes"),
        ("sendPings", "1"),
        ("failOnConnectionError", "truee"),
    ] {
        let e = err(&format!("{BASE}{key}={v}"));
        assert!(
            matches!(&e, ConfigError::InvalidBool { key: k, value, .. } if k == key && value == v),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("serverConfig/server.config: `{key}` must be `true` or `false`, not `{v}`")
        );
    }
}

#[test]
fn ports() {
    assert_eq!(ok(&format!("{BASE}tcpProbePort=0")).tcp_probe_port(), 0);
    assert_eq!(
        ok(&format!("{BASE}tcpProbePort=65535")).tcp_probe_port(),
        65535
    );
    assert_eq!(ok(&format!("{BASE}tcpProbePort=")).tcp_probe_port(), 8000);
    for v in ["http", "65536", "-1", "80.5", "8 000"] {
        let e = err(&format!("{BASE}tcpProbePort={v}"));
        assert!(
            matches!(&e, ConfigError::InvalidPort { key, value, .. } if key == "tcpProbePort" && value == v),
            "{e:?}"
        );
        assert!(e.to_string().contains("port number"), "{e}");
    }
}

#[test]
fn hosts() {
    assert_eq!(
        ok(&format!("{BASE}tcpProbeHost=::")).tcp_probe_host(),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    );
    assert_eq!(
        ok(&format!("{BASE}tcpProbeHost=[::1]")).tcp_probe_host(),
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    );
    assert_eq!(
        ok(&format!("{BASE}tcpProbeHost=10.1.2.3")).tcp_probe_host(),
        "10.1.2.3".parse::<IpAddr>().unwrap()
    );
    let e = err(&format!("{BASE}tcpProbeHost=localhost"));
    assert!(matches!(&e, ConfigError::InvalidHost { value, .. } if value == "localhost"));
    assert!(e
        .to_string()
        .contains("`tcpProbeHost` must be an IP address"));
}

// ---- reconnect secret, connectKWArgs, caFile ----

#[test]
fn reconnect_secret_kept_as_written() {
    let c = ok(&format!("{BASE}reconnectSecret= x "));
    assert_eq!(c.reconnect_secret().unwrap().expose(), "x ");
    let c = ok(&format!("{BASE}reconnectSecret=\\ x "));
    assert_eq!(c.reconnect_secret().unwrap().expose(), " x ");
    assert!(ok(&format!("{BASE}reconnectSecret="))
        .reconnect_secret()
        .is_none());
}

#[test]
fn connect_kwargs() {
    let c = ok(&format!(
        "{BASE}connectKWArgs={{\"disableSslVerification\": false}}"
    ));
    assert!(!c.tls().disable_verification);
    let c = ok(&format!(
        "{BASE}connectKWArgs={{\"disableSslVerification\": null}}"
    ));
    assert!(!c.tls().disable_verification);
    let c = ok(&format!("{BASE}connectKWArgs={{}}"));
    assert!(c.connect_kwargs().unwrap().is_empty());
    let c = ok(&format!("{BASE}connectKWArgs="));
    assert!(c.connect_kwargs().is_none());

    for (json, needle) in [
        ("{not json", "not valid JSON"),
        ("[1,2]", "expected a JSON object, found an array"),
        ("true", "found a boolean"),
        (
            "{\"disableSslVerification\": \"yes\"}",
            "must be true or false",
        ),
        ("{\"disableSslVerification\": 1}", "found a number"),
    ] {
        let e = err(&format!("{BASE}connectKWArgs={json}"));
        assert!(
            matches!(&e, ConfigError::InvalidConnectKwArgs { reason, .. } if reason.contains(needle)),
            "{json}: {e:?}"
        );
        assert!(e
            .to_string()
            .starts_with("serverConfig/server.config: invalid `connectKWArgs`: "));
    }
}

#[test]
fn ca_file() {
    let c = ok(&format!("{BASE}caFile=  certs/ca.pem "));
    assert_eq!(c.tls().ca_file.as_deref(), Some(Path::new("certs/ca.pem")));
    assert!(ok(&format!("{BASE}caFile=")).tls().ca_file.is_none());
}

#[test]
fn trust_store() {
    assert_eq!(ok(BASE).tls().trust_store, TrustStore::Platform);
    assert_eq!(
        ok(&format!("{BASE}trustStore= BuiltIn ")).tls().trust_store,
        TrustStore::BuiltIn
    );
    assert_eq!(
        ok(&format!("{BASE}trustStore=platform")).tls().trust_store,
        TrustStore::Platform
    );
    let e = err(&format!("{BASE}trustStore=system"));
    assert_eq!(
        e.to_string(),
        "serverConfig/server.config: `trustStore` must be `platform` or `builtin`, not `system`"
    );
    let c = ServerConfig::builder("https://h")
        .token("t")
        .source("s")
        .trust_store(TrustStore::BuiltIn)
        .build()
        .unwrap();
    assert_eq!(c.tls().trust_store, TrustStore::BuiltIn);
}

#[test]
fn proxy_key_and_connect_kwargs_proxy() {
    assert_eq!(ok(BASE).proxy(), &ProxySetting::FromEnvironment);
    assert_eq!(
        ok(&format!("{BASE}proxy=none")).proxy(),
        &ProxySetting::Direct
    );
    let c = ok(&format!("{BASE}proxy=http://u:PSECRET@proxy:3128"));
    let ProxySetting::Url(url) = c.proxy() else {
        panic!("{c:?}")
    };
    assert_eq!((url.host(), url.port()), ("proxy", 3128));
    assert!(!format!("{c:?}").contains("PSECRET"));
    // connectKWArgs' proxy applies when the key is absent; the key wins.
    let kw = r#"connectKWArgs={"proxy": null}"#;
    assert_eq!(ok(&format!("{BASE}{kw}")).proxy(), &ProxySetting::Direct);
    assert!(matches!(
        ok(&format!("{BASE}{kw}\nproxy=http://p:1")).proxy(),
        ProxySetting::Url(_)
    ));
    // A bad proxy names the key and hides the password.
    let e = err(&format!("{BASE}proxy=http://u:PSECRET@proxy:nope"));
    assert_eq!(
        e.to_string(),
        "serverConfig/server.config: `proxy`: invalid proxy URL `http://***@proxy:nope`: invalid port `nope`"
    );
    assert!(!format!("{e:?}").contains("PSECRET"));
    let e = err(&format!("{BASE}proxy=socks5h://p:1080"));
    assert!(
        e.to_string()
            .contains("unsupported proxy scheme `socks5h://`"),
        "{e}"
    );
    let e = err(&format!("{BASE}connectKWArgs={{\"proxy\": \"https://p\"}}"));
    assert!(
        matches!(e, ConfigError::InvalidConnectKwArgs { .. }),
        "{e:?}"
    );
}

#[test]
fn connect_kwargs_are_mapped() {
    let c = ok(&format!(
        "{BASE}connectKWArgs={{\"open_timeout\": 3, \"max_size\": null, \"user_agent_header\": \"ua/1\", \"bogus\": 1}}"
    ));
    let o = c.connect_options();
    assert_eq!(o.open_timeout, Some(std::time::Duration::from_secs(3)));
    assert_eq!(o.max_size, Some(None));
    assert_eq!(o.user_agent.as_deref(), Some("ua/1"));
    assert_eq!(c.connect_kwargs().unwrap().len(), 4);
}

#[test]
fn own_keys_are_readable() {
    let c = ok(&format!(
        "{BASE}pollSeconds = 5 \nreconnectSecret=RS\npassword=PW\nusername=u\nemptyKey=\n"
    ));
    assert_eq!(c.get("pollSeconds"), Some("5 "));
    assert_eq!(c.get("emptyKey"), Some(""));
    assert_eq!(c.get("targetServer"), Some("https://dev.vantiq.com/"));
    assert_eq!(c.get("username"), Some("u"));
    for secret in ["authToken", "password", "reconnectSecret"] {
        assert_eq!(c.get(secret), None, "{secret}");
    }
    assert_eq!(c.get("missing"), None);
    let keys: Vec<_> = c.properties().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "emptyKey",
            "pollSeconds",
            "sources",
            "targetServer",
            "username"
        ]
    );
    // Debug names the keys, never the values (a connector's own key may be a secret).
    let c = ok(&format!("{BASE}dbPassword=OWNSECRET"));
    let d = format!("{c:?}");
    assert!(d.contains("dbPassword") && !d.contains("OWNSECRET"), "{d}");

    let c = ServerConfig::builder("https://h")
        .token("t")
        .source("s")
        .property("pollSeconds", "7")
        .property("authToken", "ignored")
        .build()
        .unwrap();
    assert_eq!(c.get("pollSeconds"), Some("7"));
    assert_eq!(c.get("authToken"), None);
    assert_eq!(c.properties().count(), 1);
}

// ---- Debug redaction ----

#[test]
fn debug_never_shows_secrets() {
    let c = ok(&format!(
        "{BASE}reconnectSecret=RSECRET\nconnectKWArgs={{\"extra_headers\": {{\"Authorization\": \"KWSECRET\"}}}}"
    ));
    let d = format!("{c:?} {c:#?}");
    for secret in ["tok", "RSECRET", "KWSECRET"] {
        assert!(!d.contains(secret), "{secret} in {d}");
    }
    assert!(d.contains("extra_headers"));
    assert!(d.contains("dev.vantiq.com"));

    let c = ok("targetServer=http://a\nsources=s\nusername=me\npassword=PWSECRET");
    let d = format!("{c:?}");
    assert!(!d.contains("PWSECRET"), "{d}");
    assert!(d.contains("me"));

    let creds = Credentials::Token(Secret::new("TOKSECRET"));
    assert!(!format!("{creds:?}").contains("TOKSECRET"));

    let b = ServerConfig::builder("http://a")
        .token("BTOKEN")
        .user_password("u", "BPASS")
        .reconnect_secret("BRS");
    let d = format!("{b:?}");
    for secret in ["BTOKEN", "BPASS", "BRS"] {
        assert!(!d.contains(secret), "{secret} in {d}");
    }
}

#[test]
fn clone_is_equal_in_content() {
    let c = ok(BASE);
    let d = c.clone();
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
}

// ---- builder ----

#[test]
fn builder_full() {
    let c = ServerConfig::builder("https://dev.vantiq.com")
        .token("t")
        .source("a")
        .sources(["b", "c"])
        .sources(vec!["d".to_string()])
        .send_pings(true)
        .fail_on_connection_error(true)
        .tcp_probe_port(0)
        .tcp_probe_host(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .reconnect_secret("rs")
        .disable_tls_verification(true)
        .ca_file("/x/ca.pem")
        .build()
        .unwrap();
    assert_eq!(
        c.websocket_url(),
        "wss://dev.vantiq.com/api/v1/wsock/websocket"
    );
    assert_eq!(c.target_server(), "https://dev.vantiq.com");
    assert_eq!(c.sources(), ["a", "b", "c", "d"]);
    assert!(c.send_pings());
    assert!(c.fail_on_connection_error());
    assert_eq!(c.tcp_probe_addr(), "127.0.0.1:0".parse().unwrap());
    assert_eq!(c.reconnect_secret().unwrap().expose(), "rs");
    assert!(c.tls().disable_verification);
    assert_eq!(c.tls().ca_file.as_deref(), Some(Path::new("/x/ca.pem")));
    assert!(c.origin().is_none());
    assert!(c.connect_kwargs().is_none());
}

#[test]
fn builder_defaults_and_user_password() {
    let c = ServerConfig::builder("http://h")
        .user_password("me", "pw")
        .source("s")
        .build()
        .unwrap();
    assert!(matches!(
        c.credentials(),
        Credentials::UserPassword { username, password } if username == "me" && password.expose() == "pw"
    ));
    assert_eq!(c.tcp_probe_port(), 8000);
    assert_eq!(c.tcp_probe_host(), ServerConfig::DEFAULT_TCP_PROBE_HOST);
    assert!(!c.send_pings());
    // Token wins; empty token counts as none.
    let c = ServerConfig::builder("http://h")
        .user_password("me", "pw")
        .token("t")
        .source("s")
        .build()
        .unwrap();
    assert_eq!(token(&c), "t");
    let c = ServerConfig::builder("http://h")
        .user_password("me", "pw")
        .token("")
        .source("s")
        .build()
        .unwrap();
    assert!(matches!(c.credentials(), Credentials::UserPassword { .. }));
}

#[test]
fn builder_errors_say_in_code() {
    let b = || ServerConfig::builder("http://h").token("t");
    let cases: Vec<(ConfigError, &str)> = vec![
        (
            ServerConfig::builder("")
                .token("t")
                .source("s")
                .build()
                .unwrap_err(),
            "in code: `targetServer` is missing",
        ),
        (
            ServerConfig::builder("nope")
                .token("t")
                .source("s")
                .build()
                .unwrap_err(),
            "in code: `targetServer` value `nope` is not a valid server URL",
        ),
        (b().build().unwrap_err(), "in code: `sources` is missing"),
        (
            b().source("a").source("").build().unwrap_err(),
            "in code: `sources` entry 2 is empty",
        ),
        (
            b().source(" a").build().unwrap_err(),
            "in code: invalid source name ` a`",
        ),
        (
            b().sources(["a", "a"]).build().unwrap_err(),
            "in code: source `a` is listed twice",
        ),
        (
            ServerConfig::builder("http://h")
                .source("s")
                .build()
                .unwrap_err(),
            "in code: no credentials",
        ),
        (
            ServerConfig::builder("http://h")
                .source("s")
                .user_password("u", "")
                .build()
                .unwrap_err(),
            "in code: `password` is missing",
        ),
    ];
    for (e, prefix) in cases {
        assert!(e.to_string().starts_with(prefix), "{e} / {prefix}");
        assert!(e.path().is_none());
    }
}

// ---- file search ----

#[test]
fn search_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let e = ServerConfig::load_from_dir(root).unwrap_err();
    match &e {
        ConfigError::NotFound { tried } => assert_eq!(
            tried,
            &[
                root.join("serverConfig/server.config"),
                root.join("server.config")
            ]
        ),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().starts_with("no server.config found (tried "));
    assert!(e.to_string().contains("serverConfig/server.config"));

    std::fs::write(
        root.join("server.config"),
        "targetServer=http://second\nsources=s\nauthToken=t",
    )
    .unwrap();
    let c = ServerConfig::load_from_dir(root).unwrap();
    assert_eq!(c.target_server(), "http://second");
    assert_eq!(c.origin(), Some(root.join("server.config").as_path()));

    std::fs::create_dir(root.join("serverConfig")).unwrap();
    std::fs::write(
        root.join("serverConfig/server.config"),
        "targetServer=http://first\nsources=s\nauthToken=t",
    )
    .unwrap();
    let c = ServerConfig::load_from_dir(root).unwrap();
    assert_eq!(c.target_server(), "http://first");
    assert_eq!(
        c.origin(),
        Some(root.join("serverConfig/server.config").as_path())
    );
}

#[test]
fn first_found_file_is_used_even_if_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("serverConfig")).unwrap();
    std::fs::write(root.join("serverConfig/server.config"), "sources=s").unwrap();
    std::fs::write(
        root.join("server.config"),
        "targetServer=http://second\nsources=s\nauthToken=t",
    )
    .unwrap();
    let e = ServerConfig::load_from_dir(root).unwrap_err();
    assert!(matches!(e, ConfigError::MissingTargetServer { .. }));
    let expected = format!(
        "{}: `targetServer` is missing",
        root.join("serverConfig/server.config").display()
    );
    assert_eq!(e.to_string(), expected);
}

#[test]
fn unreadable_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A directory where the file should be: exists, but cannot be read as a file.
    std::fs::create_dir_all(root.join("serverConfig/server.config")).unwrap();
    let e = ServerConfig::load_from_dir(root).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Io { path, .. } if path.ends_with("serverConfig/server.config")),
        "{e:?}"
    );
    assert!(e.to_string().contains("cannot read"));

    let missing = root.join("nope.config");
    let e = ServerConfig::from_file(&missing).unwrap_err();
    assert!(
        matches!(&e, ConfigError::Io { path, source } if path == &missing && source.kind() == io::ErrorKind::NotFound)
    );
    assert_eq!(e.path(), Some(missing.as_path()));
}

#[test]
fn file_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.config");
    // UTF-8 with BOM.
    std::fs::write(
        &path,
        "\u{feff}targetServer=http://h\nsources=caf\u{e9}\nauthToken=t",
    )
    .unwrap();
    let c = ServerConfig::from_file(&path).unwrap();
    assert_eq!(c.target_server(), "http://h");
    assert_eq!(c.sources(), ["café"]);
    // ISO-8859-1.
    let mut bytes = b"targetServer=http://h\nauthToken=t\nsources=caf".to_vec();
    bytes.push(0xE9);
    std::fs::write(&path, bytes).unwrap();
    let c = ServerConfig::from_file(&path).unwrap();
    assert_eq!(c.sources(), ["café"]);
}

#[test]
fn error_is_send_sync_static() {
    fn assert_bounds<T: Send + Sync + 'static + std::error::Error>() {}
    assert_bounds::<ConfigError>();
    assert_bounds::<PropertiesError>();
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn from_properties_str_never_panics(text in "\\PC{0,200}") {
            let _ = ServerConfig::from_properties_str(&text, None, None);
        }

        #[test]
        fn websocket_url_never_panics_and_is_ws(url in "[a-zA-Z]{0,6}://[a-z0-9.:@\\[\\]/?#%-]{0,40}") {
            if let Ok(rewritten) = websocket_url(&url) {
                prop_assert!(rewritten.starts_with("ws://") || rewritten.starts_with("wss://"));
                prop_assert!(rewritten.contains("/wsock/websocket"));
                prop_assert!(!rewritten.contains('#'));
                // Rewriting is idempotent.
                prop_assert_eq!(websocket_url(&rewritten).unwrap(), rewritten.clone());
            }
        }

        #[test]
        fn source_lists_round_trip(names in proptest::collection::btree_set("[A-Za-z0-9_.]{1,12}", 1..6)) {
            let names: Vec<String> = names.into_iter().collect();
            let text = format!("targetServer=http://h\nauthToken=t\nsources= {} ", names.join(" ,  "));
            let c = ServerConfig::from_properties_str(&text, None, None).unwrap();
            prop_assert_eq!(c.sources(), names.as_slice());
        }
    }
}

#[test]
fn unknown_connect_kwargs_are_named_in_one_warning() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        ok(&format!(
            "{BASE}connectKWArgs={{\"compression\": null, \"open_timeout\": 1, \"max_queue\": 8}}"
        ));
        ok(&format!("{BASE}connectKWArgs={{\"open_timeout\": 1}}"));
    });
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("not applied")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains(
            "serverConfig/server.config: `connectKWArgs` keywords not applied by this SDK: compression, max_queue"
        ),
        "{logs}"
    );
}
