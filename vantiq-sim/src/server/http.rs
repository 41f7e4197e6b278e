//! HTTP on the listener: the routes (the WebSocket endpoint, the control API and the
//! console) and the WebSocket upgrade, which hands the upgraded connection to a session.

use super::{auth, console, control, Server};
use crate::session;
use crate::state::Core;
use axum::body::Body;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The peer address of an HTTP connection, passed to handlers as a request extension.
#[derive(Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// What the routes share: the server (for the sessions' generation and count) and,
/// through it, the emulator's state (all the control API needs).
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Server>);

impl FromRef<AppState> for Arc<Core> {
    fn from_ref(app: &AppState) -> Arc<Core> {
        app.0.core.clone()
    }
}

/// Every route: the WebSocket endpoint (the connectors' own credentials), the control API
/// and the console's event stream (behind the control token, if set), and the console's
/// page and assets (open: they hold no data).
pub(crate) fn router(server: Arc<Server>) -> Router {
    let app = AppState(server);
    let guarded = control::routes().merge(console::data_routes()).route_layer(
        axum::middleware::from_fn_with_state(app.clone(), auth::require_token),
    );
    Router::new()
        .route("/api/{version}/wsock/websocket", any(websocket))
        .merge(guarded)
        .merge(console::asset_routes())
        .fallback(|| async { control::json_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(app)
}

/// `/api/vN/wsock/websocket`: upgrades to a WebSocket and runs a session on it.
async fn websocket(
    State(AppState(server)): State<AppState>,
    Path(version): Path<String>,
    Extension(Peer(peer)): Extension<Peer>,
    mut req: Request,
) -> Response {
    let is_version = version
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !is_version {
        return control::json_error(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let headers = req.headers();
    if req.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return control::json_error(
            StatusCode::UPGRADE_REQUIRED,
            "this is the WebSocket endpoint: connect with a WebSocket client",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut resp = control::json_error(
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
        return control::json_error(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Subscribed now, so a stop() between this answer and the upgrade still ends the session.
    let stopped = server.generation.subscribe();
    let guard = server.session_guard();
    let core = server.core.clone();
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
