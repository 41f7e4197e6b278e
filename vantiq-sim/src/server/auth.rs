//! The control token. The control API and the console can drive any connector that
//! connects, so on a listener others can reach they answer only requests that present the
//! token: `Authorization: Bearer TOKEN`, or `access_token=TOKEN` in the query string (for
//! the browser's EventSource, which cannot set headers). Without a token (loopback only)
//! everything stays open. The token never appears in logs or errors.

use super::control::json_error;
use super::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Lets a request through if no token is set or it presents the right one; 401 otherwise.
pub(crate) async fn require_token(
    State(AppState(server)): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = server.control_token.as_deref() else {
        return next.run(req).await;
    };
    if presented(&req).is_some_and(|t| same(t.as_bytes(), expected.as_bytes())) {
        return next.run(req).await;
    }
    let mut resp = json_error(
        StatusCode::UNAUTHORIZED,
        "this emulator's control API needs its control token \
         (Authorization: Bearer TOKEN, or --control-token for the CLI)",
    );
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// The token a request presents, from its header or its query string.
fn presented(req: &Request) -> Option<&str> {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    from_header.or_else(|| {
        req.uri()
            .query()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
    })
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
    }
}
