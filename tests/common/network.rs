//! The network between a connector and the emulator, for the proxy and trust
//! tests: a TLS terminator in front of the emulator, a private CA made on the
//! spot, a real proxy (Debian's tinyproxy), and a small in-process CONNECT
//! proxy for the faults a real proxy is hard to make show.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A certificate authority made for one test, and a server certificate it
/// signed (for `127.0.0.1` and `localhost` unless told otherwise).
pub struct PrivateCa {
    /// The CA's certificate, PEM: what a connector must be told to trust.
    pub ca_pem: String,
    /// The server's certificate chain and key, for [`tls_terminator`].
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl PrivateCa {
    pub fn new() -> PrivateCa {
        Self::for_names(&["127.0.0.1", "localhost"])
    }

    /// A CA whose server certificate names only `names`.
    pub fn for_names(names: &[&str]) -> PrivateCa {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Test company CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let server =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let server_key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&server_key, &ca).unwrap();
        PrivateCa {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone()],
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                server_key.serialize_der(),
            ))),
        }
    }

    /// Writes the CA's certificate to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).unwrap();
    }
}

/// Terminates TLS with `chain` and `key` and forwards each connection to
/// `backend`; returns its address.
pub async fn tls_terminator(
    backend: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

/// The kind and reason of a run of `config` that ends with a connection
/// failure.
pub async fn connect_failure(
    config: vantiq_connector_sdk::ServerConfig,
) -> (vantiq_connector_sdk::ConnectErrorKind, String) {
    match super::run_to_error(config).await {
        vantiq_connector_sdk::Error::ConnectFailed { kind, reason, .. } => (kind, reason),
        other => panic!("expected a connection failure, got {other:?}"),
    }
}

/// A loopback port that nothing listens on (bound, then freed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the in-process proxy does with the n-th request (0-based).
pub type Script = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// One answer of the in-process proxy.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// `200`, then the tunnel to the requested target.
    Tunnel,
    /// This status line (and no tunnel).
    Status(&'static str),
}

/// A small CONNECT proxy: it records every request head and answers as its
/// script says.
pub struct FakeProxy {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    seen: watch::Receiver<usize>,
}

impl FakeProxy {
    pub async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> FakeProxy {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = watch::channel(0usize);
        let recorded = heads.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (script, recorded, count) = (script.clone(), recorded.clone(), count.clone());
                tokio::spawn(async move {
                    let mut tcp = BufReader::new(tcp);
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if tcp.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let n = {
                        let mut heads = recorded.lock().unwrap();
                        heads.push(head.clone());
                        heads.len() - 1
                    };
                    count.send_replace(n + 1);
                    match script(n) {
                        Reply::Status(status) => {
                            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                            let _ = tcp.get_mut().write_all(answer.as_bytes()).await;
                        }
                        Reply::Tunnel => {
                            let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                            let Ok(mut upstream) = TcpStream::connect(&target).await else {
                                let _ = tcp
                                    .get_mut()
                                    .write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                                    .await;
                                return;
                            };
                            let _ = tcp
                                .get_mut()
                                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                                .await;
                            let mut tcp = tcp.into_inner();
                            let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
                        }
                    }
                });
            }
        });
        FakeProxy { addr, heads, seen }
    }

    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits until `n` requests have come.
    pub async fn wait_requests(&self, n: usize) {
        let mut seen = self.seen.clone();
        tokio::time::timeout(super::WAIT, seen.wait_for(|c| *c >= n))
            .await
            .expect("the proxy saw the requests in time")
            .unwrap();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }
}

/// Debian's tinyproxy, started on a free loopback port with a generated
/// configuration; stopped when dropped. Its log is kept, to see what it did.
pub struct Tinyproxy {
    pub port: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
    lines: watch::Receiver<usize>,
}

impl Tinyproxy {
    /// Starts tinyproxy, with Basic authentication when `auth` is given
    /// (tinyproxy takes `[-a-z0-9._]` in both).
    pub async fn start(auth: Option<(&str, &str)>) -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogLevel Info\nMaxClients 64\nAllow 127.0.0.1\n"
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).unwrap();
        let mut child = tokio::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "tinyproxy is installed (scripts/test.sh installs it: apt-get install tinyproxy)",
            );
        let log = Arc::new(Mutex::new(String::new()));
        let (count, lines) = watch::channel(0usize);
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let kept = log.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = out.next_line().await {
                if line.contains("Accepting connections") {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
                count.send_modify(|c| *c += 1);
            }
        });
        tokio::time::timeout(super::WAIT, ready_rx)
            .await
            .unwrap_or_else(|_| panic!("tinyproxy did not start: {}", log.lock().unwrap()))
            .unwrap_or_else(|_| panic!("tinyproxy exited: {}", log.lock().unwrap()));
        Tinyproxy {
            port,
            _child: child,
            _dir: dir,
            log,
            lines,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until tinyproxy has logged a line containing `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let mut lines = self.lines.clone();
        let log = self.log.clone();
        tokio::time::timeout(
            super::WAIT,
            lines.wait_for(|_| log.lock().unwrap().contains(needle)),
        )
        .await
        .unwrap_or_else(|_| panic!("tinyproxy never logged `{needle}`: {}", self.log()))
        .unwrap();
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}
