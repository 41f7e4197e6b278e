//! The handshake on a session: `validate`/`authenticate`, `connectExtension`, and the
//! note recorded when an authenticated connector never connects a source.

use super::Session;
use crate::types::{kinds, FrameMode};
use crate::wire;
use serde_json::{Map, Value};

impl Session {
    /// Records that the connector authenticated but sent no `connectExtension` in time,
    /// with the likely cause: it cannot read the frames it is sent.
    pub(super) fn note_no_connect(&self) {
        let sent = self.link.frame_type();
        let received = self
            .link
            .frame_type_received()
            .map_or("no data frames".to_owned(), |t| format!("{t} frames"));
        let mode = match self.link.frame_mode() {
            FrameMode::Follow => "the emulator follows the connector's frame type".to_owned(),
            forced => format!("the emulator was started with frames forced to {forced}"),
        };
        let detail = format!(
            "session {} from {} authenticated but sent no connectExtension within {} ms. \
             The likely cause is a client that cannot read the frames it is sent: this \
             session sends {sent} frames and the connector sent {received} ({mode}). \
             Vantiq's Java SDK reads only binary frames; its Python SDK reads text frames.",
            self.link.id,
            self.link.peer,
            self.core.connect_grace.as_millis(),
        );
        self.violation(kinds::NO_CONNECT, detail);
    }

    pub(super) fn on_validate(&mut self, map: &Map<String, Value>, text: &str) {
        let Some(token) = map.get("object").and_then(Value::as_str) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "validate needs the token as object: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_credentials(
                "io.vantiq.authentication.malformed",
                "Malformed validate request.",
            );
        };
        if self.core.token_ok(token) {
            tracing::info!(session = self.link.id, "authenticated with a token");
            self.user = Some("token".into());
            self.reply(wire::auth_ok(self.link.id, "token"));
            self.start_connect_deadline();
        } else {
            self.reject_credentials(
                "io.vantiq.authentication.failed",
                "The access token is not valid (unknown, revoked or expired).",
            );
        }
    }

    pub(super) fn on_authenticate(&mut self, map: &Map<String, Value>, text: &str) {
        let object = map.get("object");
        let user = object
            .and_then(|o| o.get("username"))
            .and_then(Value::as_str);
        let password = object
            .and_then(|o| o.get("password"))
            .and_then(Value::as_str);
        let (Some(user), Some(password)) = (user, password) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "authenticate needs object {{username, password}}: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reject_credentials(
                "io.vantiq.authentication.malformed",
                "Malformed authenticate request.",
            );
        };
        if self.core.user_ok(user, password) {
            tracing::info!(
                session = self.link.id,
                user,
                "authenticated with a password"
            );
            self.user = Some(user.to_owned());
            self.reply(wire::auth_ok(self.link.id, user));
            self.start_connect_deadline();
        } else {
            self.reject_credentials(
                "io.vantiq.authentication.failed",
                "Authentication failed: unknown user or wrong password.",
            );
        }
    }

    /// After a successful authentication: the connector should connect a source soon.
    pub(super) fn start_connect_deadline(&mut self) {
        if self.bound.is_none() {
            let grace = self.core.connect_grace;
            self.connect_deadline = Some(Box::pin(tokio::time::sleep(grace)));
        }
    }

    pub(super) fn reject_credentials(&self, code: &str, message: &str) {
        self.core.auth_failed();
        tracing::warn!(session = self.link.id, peer = %self.link.peer, "authentication rejected");
        self.reply(wire::error_status(401, code, message));
    }

    pub(super) fn on_connect(&mut self, map: &Map<String, Value>, text: &str) {
        if self.user.is_none() {
            self.violation(
                kinds::NOT_AUTHENTICATED,
                format!(
                    "connectExtension before authentication: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reply(wire::error_status(
                401,
                "io.vantiq.authentication.required",
                "Authenticate (validate or authenticate) before connectExtension.",
            ));
        }
        let source = map.get("resourceId").and_then(Value::as_str);
        let resource = map.get("resourceName").and_then(Value::as_str);
        let (Some(source), Some("sources")) = (source, resource) else {
            self.violation(
                kinds::BAD_SHAPE,
                format!(
                    "connectExtension needs resourceName \"sources\" and a resourceId: {}",
                    wire::excerpt(text)
                ),
            );
            return self.reply(wire::error_status(
                400,
                "io.vantiq.sim.malformed",
                "Malformed connectExtension request.",
            ));
        };
        if let Some(bound) = self.source().filter(|b| *b != source) {
            self.violation(
                kinds::SECOND_SOURCE,
                format!("connectExtension for {source:?} on a socket serving {bound:?}"),
            );
            return self.reply(wire::error_status(
                400,
                "io.vantiq.sim.secondSource",
                &format!(
                    "This connection already serves source {bound}; use one WebSocket per source."
                ),
            ));
        }
        self.connect_deadline = None;
        let secret = map
            .get("parameters")
            .and_then(|p| p.get("reconnectSecret"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.flush_batch();
        match self.core.connect_extension(&self.link, source, secret) {
            Ok(entry) => self.bound = Some(entry),
            Err((status, code, message)) => {
                tracing::info!(
                    session = self.link.id,
                    source,
                    status,
                    "connectExtension refused: {message}"
                );
                self.reply(wire::error_status(status, code, &message));
            }
        }
    }
}
