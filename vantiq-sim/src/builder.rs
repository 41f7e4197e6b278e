//! [`SimBuilder`]: what an emulator is started with (credentials, sources,
//! acknowledgements, listening address, frame mode, control token).

use crate::server::Server;
use crate::state::Core;
use crate::{FrameMode, Sim, SimInner};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Configures an emulator before starting it: credentials, sources, acknowledgements,
/// listening address.
#[derive(Clone)]
pub struct SimBuilder {
    tokens: Vec<String>,
    users: Vec<(String, String)>,
    sources: Vec<(String, Value)>,
    acks: bool,
    listen: SocketAddr,
    keep_notifications: Option<usize>,
    frames: FrameMode,
    connect_grace: Duration,
    control_token: Option<String>,
}

/// How long an authenticated connector may go without `connectExtension` before the
/// emulator records a [`crate::kinds::NO_CONNECT`] note, by default.
pub const DEFAULT_CONNECT_GRACE: Duration = Duration::from_secs(5);

impl Default for SimBuilder {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            users: Vec::new(),
            sources: Vec::new(),
            acks: true,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            keep_notifications: None,
            frames: FrameMode::Follow,
            connect_grace: DEFAULT_CONNECT_GRACE,
            control_token: None,
        }
    }
}

/// Names sources and counts credentials; never shows a token or password.
impl std::fmt::Debug for SimBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<&str> = self.sources.iter().map(|(n, _)| n.as_str()).collect();
        let users: Vec<&str> = self.users.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SimBuilder")
            .field("tokens", &format_args!("{} (redacted)", self.tokens.len()))
            .field("users", &users)
            .field("sources", &sources)
            .field("acks", &self.acks)
            .field("listen", &self.listen)
            .field("frames", &self.frames)
            .field("connect_grace", &self.connect_grace)
            .field(
                "control_token",
                &self.control_token.as_ref().map(|_| "(redacted)"),
            )
            .finish_non_exhaustive()
    }
}

impl SimBuilder {
    /// A builder with no credentials, no sources, acknowledgements on, listening on
    /// `127.0.0.1` on a free port.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts this access token in `validate` (repeatable). With no tokens and no users
    /// configured, every credential is accepted.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.tokens.push(token.into());
        self
    }

    /// Accepts this user in `authenticate` (repeatable).
    pub fn user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push((username.into(), password.into()));
        self
    }

    /// Configures a source and the configuration document its connector receives.
    pub fn source(mut self, name: impl Into<String>, config: Value) -> Self {
        self.sources.push((name.into(), config));
        self
    }

    /// Whether each notification is acknowledged with `{"status":200}` (default true).
    pub fn acks(mut self, on: bool) -> Self {
        self.acks = on;
        self
    }

    /// Where to listen (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keeps only the last `limit` notifications of each source (sequence numbers keep
    /// counting), so long benchmarks run in bounded memory. Default: keep all.
    pub fn keep_notifications(mut self, limit: usize) -> Self {
        self.keep_notifications = Some(limit);
        self
    }

    /// In which frame type the emulator sends (default [`FrameMode::Follow`]: each
    /// connection in the type its connector uses). Forcing text or binary checks that a
    /// connector accepts both.
    pub fn frames(mut self, mode: FrameMode) -> Self {
        self.frames = mode;
        self
    }

    /// How long an authenticated connector may go without `connectExtension` before the
    /// emulator records a [`crate::kinds::NO_CONNECT`] note naming the likely cause (default
    /// [`DEFAULT_CONNECT_GRACE`]).
    pub fn connect_grace(mut self, grace: Duration) -> Self {
        self.connect_grace = grace;
        self
    }

    /// Requires this bearer token for the control API and the console's data
    /// (`Authorization: Bearer TOKEN`). Needed to listen on an address other than
    /// loopback: [`SimBuilder::start`] refuses without it, since the control API can drive
    /// every connector that connects. On loopback it is optional.
    pub fn control_token(mut self, token: impl Into<String>) -> Self {
        self.control_token = Some(token.into());
        self
    }

    /// Binds the listener and starts serving. Fails if the address is not loopback and
    /// no [`SimBuilder::control_token`] is set.
    pub async fn start(self) -> std::io::Result<Sim> {
        let core = Arc::new(Core::new(
            self.tokens,
            self.users,
            self.acks,
            self.keep_notifications,
            self.frames,
            self.connect_grace,
        ));
        for (name, config) in self.sources {
            core.add_source(name, config);
        }
        let server = Server::new(core, self.listen, self.control_token)?;
        server.start(self.listen, false).await?;
        Ok(Sim {
            inner: Arc::new(SimInner { server }),
        })
    }
}
