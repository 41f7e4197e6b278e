//! The listener: accepts TCP connections, serves HTTP on them (the control API and the
//! WebSocket upgrade), and can be stopped and restarted on the same port.
//!
//! The accept loop and the per-connection tasks are driven by hand rather than by
//! `axum::serve` so that stop() can end every connection at once, abruptly, as a crashed
//! server would: the accept task is aborted (closing the listening socket) and a
//! generation counter is bumped, which every connection and session watches.
//!
//! The server owns what belongs to the listener and the connections on it: the address,
//! the accept task, the generation counter, and the count of live sessions. The
//! emulator's state (`state/`) knows nothing of them. Parts: `http` (the routes and the
//! WebSocket upgrade) and `control` (the control API).

mod auth;
mod console;
mod control;
mod http;

use crate::state::{lock, Core};
use http::Peer;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the emulator listens, and the task accepting connections while it runs.
pub(crate) struct ListenerSlot {
    /// The bound address (kept after stop() so restart() reuses the port).
    pub(crate) addr: SocketAddr,
    /// The accept task; None while stopped.
    pub(crate) task: Option<JoinHandle<()>>,
}

/// The listener and the connections on it, around the emulator's state.
pub(crate) struct Server {
    /// The emulator's state.
    pub(crate) core: Arc<Core>,
    /// The listening address and accept task.
    listener: Mutex<ListenerSlot>,
    /// Bumped by stop(): every connection accepted before ends at once.
    generation: watch::Sender<u64>,
    /// Sessions alive (socket still open), so stop() can wait until they are all gone.
    live_sessions: watch::Sender<usize>,
    /// The token the control API and the console's data require, if any (see `auth.rs`).
    control_token: Option<String>,
}

/// Counts a session as alive until dropped.
pub(crate) struct SessionGuard(Arc<Server>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.live_sessions.send_modify(|n| *n -= 1);
    }
}

impl Server {
    /// A server for `core`, not yet listening; `addr` is where it will listen. A listener
    /// that is not on loopback needs a control token: it refuses to exist without one.
    pub(crate) fn new(
        core: Arc<Core>,
        addr: SocketAddr,
        control_token: Option<String>,
    ) -> io::Result<Arc<Self>> {
        if !addr.ip().is_loopback() && control_token.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{addr} is not a loopback address: listening there needs a control token \
                     (--control-token), since the control API and the console can drive \
                     every connector that connects"
                ),
            ));
        }
        Ok(Arc::new(Self {
            core,
            listener: Mutex::new(ListenerSlot { addr, task: None }),
            generation: watch::Sender::new(0),
            live_sessions: watch::Sender::new(0),
            control_token,
        }))
    }

    /// The listening address (kept while stopped, so a restart reuses it).
    pub(crate) fn addr(&self) -> SocketAddr {
        lock(&self.listener).addr
    }

    /// Counts a new session as alive until the guard is dropped.
    fn session_guard(self: &Arc<Self>) -> SessionGuard {
        self.live_sessions.send_modify(|n| *n += 1);
        SessionGuard(self.clone())
    }

    /// Binds `addr` and starts accepting. With `retry`, a busy address is retried for a few
    /// seconds (the previous listener's socket may take a moment to go away).
    pub(crate) async fn start(self: &Arc<Self>, addr: SocketAddr, retry: bool) -> io::Result<()> {
        let listener = if retry {
            bind_with_retry(addr).await?
        } else {
            bind(addr)?
        };
        let local = listener.local_addr()?;
        let router = http::router(self.clone());
        let stopped = self.generation.subscribe();
        let task = tokio::spawn(accept_loop(listener, router, stopped));
        let mut slot = lock(&self.listener);
        slot.addr = local;
        if let Some(old) = slot.task.replace(task) {
            old.abort();
        }
        tracing::info!(%local, "listening");
        Ok(())
    }

    /// Whether the listener is running.
    pub(crate) fn running(&self) -> bool {
        lock(&self.listener)
            .task
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Stops at once (synchronously): listener closed, connections told to end, sources
    /// disconnected. Used by stop() and when the last `Sim` handle is dropped.
    pub(crate) fn stop_now(&self) -> Option<JoinHandle<()>> {
        let task = lock(&self.listener).task.take();
        if let Some(task) = &task {
            task.abort();
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
        self.core.detach_all();
        task
    }

    /// Stops, and waits until the listening socket and every session's socket are closed.
    pub(crate) async fn stop(&self) {
        if let Some(task) = self.stop_now() {
            let _ = task.await;
        }
        let mut live = self.live_sessions.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), live.wait_for(|n| *n == 0)).await;
        tracing::info!("stopped");
    }
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

async fn accept_loop(listener: TcpListener, router: axum::Router, stopped: watch::Receiver<u64>) {
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
    router: axum::Router,
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
    router: axum::Router,
    peer: SocketAddr,
}

impl hyper::service::Service<axum::extract::Request<hyper::body::Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: axum::extract::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(Peer(self.peer));
        let mut router = self.router.clone();
        tower_service::Service::call(&mut router, req)
    }
}
