//! The listener: accepts TCP connections, serves HTTP on them (the control API and the
//! WebSocket upgrade), and can be stopped and restarted on the same port.
//!
//! The accept loop and the per-connection tasks are driven by hand rather than by
//! `axum::serve` so that stop() can end every connection at once, abruptly, as a crashed
//! server would: the accept task is aborted (closing the listening socket) and a
//! generation counter is bumped, which every connection and session watches.

use crate::session;
use crate::state::Core;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Where the emulator listens, and the task accepting connections while it runs.
pub(crate) struct ListenerSlot {
    /// The bound address (kept after stop() so restart() reuses the port).
    pub(crate) addr: SocketAddr,
    /// The accept task; None while stopped.
    pub(crate) task: Option<JoinHandle<()>>,
}

/// The peer address of an HTTP connection, passed to handlers as a request extension.
#[derive(Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Binds `addr` and starts accepting. With `retry`, a busy address is retried for a few
/// seconds (the previous listener's socket may take a moment to go away).
pub(crate) async fn start(core: &Arc<Core>, addr: SocketAddr, retry: bool) -> io::Result<()> {
    let listener = if retry {
        bind_with_retry(addr).await?
    } else {
        bind(addr)?
    };
    let local = listener.local_addr()?;
    let router = router(core.clone());
    let stopped = core.generation.subscribe();
    let task = tokio::spawn(accept_loop(listener, router, stopped));
    let mut slot = crate::state::lock(&core.listener);
    slot.addr = local;
    if let Some(old) = slot.task.replace(task) {
        old.abort();
    }
    tracing::info!(%local, "listening");
    Ok(())
}

/// How many connections may wait to be accepted (the kernel caps it at `somaxconn`).
/// `TcpListener::bind` uses 1024: when thousands of connectors dial at once (a restart,
/// a ten-thousand-source process starting) the excess SYNs are dropped and retried by the
/// client a second later, which would show up as a one-second connect time.
const BACKLOG: u32 = 16 * 1024;

/// Binds `addr` with SO_REUSEADDR (as `TcpListener::bind` does) and a deep backlog.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn bind_with_retry(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut attempts = 0;
    loop {
        match bind(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 60 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the listener is running.
pub(crate) fn running(core: &Core) -> bool {
    crate::state::lock(&core.listener)
        .task
        .as_ref()
        .is_some_and(|t| !t.is_finished())
}

/// Stops at once (synchronously): listener closed, connections told to end, sources
/// disconnected. Used by stop() and when the last `Sim` handle is dropped.
pub(crate) fn stop_now(core: &Core) -> Option<JoinHandle<()>> {
    let task = crate::state::lock(&core.listener).task.take();
    if let Some(task) = &task {
        task.abort();
    }
    core.generation.send_modify(|g| *g = g.wrapping_add(1));
    core.detach_all();
    task
}

/// Stops, and waits until the listening socket and every session's socket are closed.
pub(crate) async fn stop(core: &Core) {
    if let Some(task) = stop_now(core) {
        let _ = task.await;
    }
    let mut live = core.live_sessions.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(5), live.wait_for(|n| *n == 0)).await;
    tracing::info!("stopped");
}

async fn accept_loop(listener: TcpListener, router: Router, stopped: watch::Receiver<u64>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve_connection(tcp, peer, router.clone(), stopped.clone()));
            }
            Err(e) => {
                // Typically too many open files: back off rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stopped: watch::Receiver<u64>,
) {
    let service = ConnService { router, peer };
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::select! {
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        _ = stopped.changed() => {}
    }
}

/// The per-connection service: the router, with the peer address added to each request.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(Peer(self.peer));
        let mut router = self.router.clone();
        tower_service::Service::call(&mut router, req)
    }
}

/// Every route: the WebSocket endpoint and the control API.
fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/api/{version}/wsock/websocket", any(websocket))
        .merge(crate::control::routes())
        .fallback(|| async {
            crate::control::json_error(StatusCode::NOT_FOUND, "no such endpoint")
        })
        .with_state(core)
}

/// `/api/vN/wsock/websocket`: upgrades to a WebSocket and runs a session on it.
async fn websocket(
    State(core): State<Arc<Core>>,
    Path(version): Path<String>,
    Extension(Peer(peer)): Extension<Peer>,
    mut req: Request,
) -> Response {
    let is_version = version
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !is_version {
        return crate::control::json_error(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let headers = req.headers();
    if req.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return crate::control::json_error(
            StatusCode::UPGRADE_REQUIRED,
            "this is the WebSocket endpoint: connect with a WebSocket client",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut resp = crate::control::json_error(
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket version (13 expected)",
        );
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return resp;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return crate::control::json_error(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Subscribed now, so a stop() between this answer and the upgrade still ends the session.
    let stopped = core.generation.subscribe();
    let guard = core.session_guard();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session::run(core, TokioIo::new(upgraded), peer, stopped, guard).await,
            Err(e) => tracing::debug!(%peer, "WebSocket upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// Whether a comma-separated header contains `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}
