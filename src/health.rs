//! The TCP health probe used by Kubernetes startup, liveness and readiness probes.
//!
//! A Kubernetes TCP probe succeeds when it can open a connection. Declaring the connector
//! healthy opens a TCP listener (on `tcpProbePort`, default 8000, see
//! [`ServerConfig::tcp_probe_addr`](crate::config::ServerConfig::tcp_probe_addr)) that
//! accepts connections and closes them at once; declaring it unhealthy closes the
//! listener, so probes are refused.
//!
//! Two connectors on one machine (or tests run in parallel) cannot share port 8000: give
//! each its own `tcpProbePort`, or `tcpProbePort=0` to let the system pick a free port,
//! and read it back with [`HealthProbe::local_addr`] (`set.health_probe().local_addr()`).
//! A port that is taken is an error that names the address and the key.
//!
//! The state belongs to a whole connector set: clones of a [`HealthProbe`] share it.
//!
//! ```
//! use vantiq_connector_sdk::health::HealthProbe;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let probe = HealthProbe::new("127.0.0.1:0".parse().unwrap());
//! assert_eq!(probe.is_healthy(), None);
//!
//! probe.declare_healthy()?;
//! let addr = probe.local_addr().unwrap();
//! assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
//!
//! probe.declare_unhealthy();
//! assert_eq!(probe.is_healthy(), Some(false));
//! assert!(tokio::net::TcpStream::connect(addr).await.is_err());
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The health state of a connector set, and the TCP listener that reports it.
///
/// Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct HealthProbe {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    healthy: Option<bool>,
    serving: Option<Serving>,
}

/// A running listener. The accept task polls the listener through `slot` under its lock,
/// so taking the listener out of the slot and dropping it closes the socket at once.
struct Serving {
    slot: Arc<Mutex<Option<TcpListener>>>,
    task: JoinHandle<()>,
    local_addr: SocketAddr,
}

impl Serving {
    fn stop(self) {
        // Dropping the listener closes the socket now; the task then ends.
        drop(lock(&self.slot).take());
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for HealthProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("HealthProbe")
            .field("addr", &self.inner.addr)
            .field("healthy", &state.healthy)
            .field(
                "listening_on",
                &state.serving.as_ref().map(|s| s.local_addr),
            )
            .finish()
    }
}

impl HealthProbe {
    /// A probe that will listen at `addr` once declared healthy. Nothing is opened yet.
    pub fn new(addr: SocketAddr) -> Self {
        HealthProbe {
            inner: Arc::new(Inner {
                addr,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The address the probe listens at when healthy, as given to [`HealthProbe::new`].
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Declares the connector healthy: starts listening (unless already listening) and
    /// accepts and immediately closes every connection, in a task on the current tokio
    /// runtime. Calling it again while healthy does nothing.
    ///
    /// When the port is 0, the system picks one; see [`HealthProbe::local_addr`]. Each
    /// time the probe starts listening again after [`declare_unhealthy`](Self::declare_unhealthy)
    /// it may get a different one.
    ///
    /// # Errors
    ///
    /// The error from binding the address (for example the port is in use), or an error
    /// of kind [`io::ErrorKind::Other`] when called outside a tokio runtime. On error the
    /// health state is left as it was.
    pub fn declare_healthy(&self) -> io::Result<()> {
        let mut state = lock(&self.inner.state);
        if let Some(serving) = &state.serving {
            if !serving.task.is_finished() {
                state.healthy = Some(true);
                return Ok(());
            }
        }
        // The task has ended (its runtime shut down): start over.
        if let Some(old) = state.serving.take() {
            old.stop();
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("declare_healthy must be called from within a tokio runtime")
        })?;
        let addr = self.inner.addr;
        let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "the health probe cannot listen on {addr} (server.config `tcpProbePort={}`, \
                     `tcpProbeHost`): {e}; choose a free port, or 0 to let the system pick one \
                     (read it back with `set.health_probe().local_addr()`)",
                    addr.port()
                ),
            )
        })?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let listener = {
            let _entered = handle.enter();
            TcpListener::from_std(std_listener)?
        };
        let slot = Arc::new(Mutex::new(Some(listener)));
        let task = handle.spawn(accept_loop(Arc::clone(&slot)));
        tracing::info!(%local_addr, "health probe listening: connector declared healthy");
        state.serving = Some(Serving {
            slot,
            task,
            local_addr,
        });
        state.healthy = Some(true);
        Ok(())
    }

    /// Declares the connector unhealthy: stops listening. The port is released before this
    /// returns, so probes are refused from then on. Works with or without a runtime.
    pub fn declare_unhealthy(&self) {
        let mut state = lock(&self.inner.state);
        state.healthy = Some(false);
        if let Some(serving) = state.serving.take() {
            tracing::warn!(local_addr = %serving.local_addr, "connector declared unhealthy: health probe closed");
            serving.stop();
        }
    }

    /// `Some(true)` after [`declare_healthy`](Self::declare_healthy), `Some(false)` after
    /// [`declare_unhealthy`](Self::declare_unhealthy), `None` before either.
    pub fn is_healthy(&self) -> Option<bool> {
        lock(&self.inner.state).healthy
    }

    /// The address the probe is listening on, while it is (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        lock(&self.inner.state)
            .serving
            .as_ref()
            .filter(|s| !s.task.is_finished())
            .map(|s| s.local_addr)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(serving) = lock(&self.state).serving.take() {
            serving.stop();
        }
    }
}

async fn accept_loop(slot: Arc<Mutex<Option<TcpListener>>>) {
    loop {
        let accepted = poll_fn(|cx| match lock(&slot).as_ref() {
            None => Poll::Ready(None),
            Some(listener) => listener.poll_accept(cx).map(Some),
        })
        .await;
        match accepted {
            None => return,
            // Close at once: being able to connect is the whole answer.
            Some(Ok((stream, _))) => drop(stream),
            Some(Err(e)) => {
                // For example too many open files: wait a little rather than spin.
                tracing::debug!(error = %e, "health probe accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpStream};

    fn localhost0() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    fn can_connect(addr: SocketAddr) -> bool {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }

    #[tokio::test]
    async fn healthy_then_unhealthy() {
        let probe = HealthProbe::new(localhost0());
        assert_eq!(probe.is_healthy(), None);
        assert_eq!(probe.local_addr(), None);

        probe.declare_healthy().unwrap();
        assert_eq!(probe.is_healthy(), Some(true));
        let addr = probe.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        // Several probes in a row.
        for _ in 0..5 {
            assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
        }

        probe.declare_unhealthy();
        assert_eq!(probe.is_healthy(), Some(false));
        assert_eq!(probe.local_addr(), None);
        let e = tokio::net::TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unhealthy_frees_port_synchronously_on_multi_thread_runtime() {
        let probe = HealthProbe::new(localhost0());
        for _ in 0..20 {
            probe.declare_healthy().unwrap();
            let addr = probe.local_addr().unwrap();
            assert!(can_connect(addr));
            probe.declare_unhealthy();
            assert!(!can_connect(addr));
        }
    }

    #[tokio::test]
    async fn connection_is_closed_by_the_probe() {
        use tokio::io::AsyncReadExt;
        let probe = HealthProbe::new(localhost0());
        probe.declare_healthy().unwrap();
        let mut stream = tokio::net::TcpStream::connect(probe.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("probe should close the connection")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn double_declarations_are_idempotent() {
        let probe = HealthProbe::new(localhost0());
        probe.declare_healthy().unwrap();
        let addr = probe.local_addr().unwrap();
        probe.declare_healthy().unwrap();
        assert_eq!(probe.local_addr(), Some(addr), "still the same listener");
        assert!(can_connect(addr));

        probe.declare_unhealthy();
        probe.declare_unhealthy();
        assert_eq!(probe.is_healthy(), Some(false));
        assert!(!can_connect(addr));

        // And healthy again.
        probe.declare_healthy().unwrap();
        assert_eq!(probe.is_healthy(), Some(true));
        assert!(can_connect(probe.local_addr().unwrap()));
    }

    #[tokio::test]
    async fn fixed_port_can_be_reopened() {
        // Find a free port, then use it as a fixed address.
        let port = std::net::TcpListener::bind(localhost0())
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let probe = HealthProbe::new(addr);
        assert_eq!(probe.addr(), addr);
        for _ in 0..3 {
            probe.declare_healthy().unwrap();
            assert_eq!(probe.local_addr(), Some(addr));
            assert!(can_connect(addr));
            probe.declare_unhealthy();
            assert!(!can_connect(addr));
        }
    }

    #[tokio::test]
    async fn clones_share_state() {
        let probe = HealthProbe::new(localhost0());
        let clone = probe.clone();
        clone.declare_healthy().unwrap();
        assert_eq!(probe.is_healthy(), Some(true));
        assert_eq!(probe.local_addr(), clone.local_addr());
        probe.declare_unhealthy();
        assert_eq!(clone.is_healthy(), Some(false));
        assert!(format!("{probe:?}").contains("healthy: Some(false)"));
    }

    #[tokio::test]
    async fn bind_error_is_reported_and_state_unchanged() {
        let taken = std::net::TcpListener::bind(localhost0()).unwrap();
        let probe = HealthProbe::new(taken.local_addr().unwrap());
        let e = probe.declare_healthy().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        // It says which port, which key, and what to do.
        let text = e.to_string();
        let port = taken.local_addr().unwrap().port();
        assert!(text.contains(&format!("tcpProbePort={port}")), "{text}");
        assert!(text.contains("or 0 to let the system pick one"), "{text}");
        assert_eq!(probe.is_healthy(), None);
        assert_eq!(probe.local_addr(), None);
    }

    #[test]
    fn without_runtime_is_an_error_not_a_panic() {
        let probe = HealthProbe::new(localhost0());
        let e = probe.declare_healthy().unwrap_err();
        assert!(e.to_string().contains("tokio runtime"), "{e}");
        assert_eq!(probe.is_healthy(), None);
        probe.declare_unhealthy();
        assert_eq!(probe.is_healthy(), Some(false));
    }

    #[test]
    fn runtime_shutdown_then_new_runtime() {
        let probe = HealthProbe::new(localhost0());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { probe.declare_healthy() }).unwrap();
        drop(rt);
        // The listener's task died with its runtime: not listening any more.
        assert_eq!(probe.local_addr(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            probe.declare_healthy().unwrap();
            let addr = probe.local_addr().unwrap();
            assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
            probe.declare_unhealthy();
        });
    }

    #[test]
    fn dropping_last_clone_closes_listener() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let probe = HealthProbe::new(localhost0());
            probe.declare_healthy().unwrap();
            let addr = probe.local_addr().unwrap();
            drop(probe);
            assert!(!can_connect(addr));
        });
    }
}
