//! The protocol state machine of one source's connection.
//!
//! [`Session`] decides everything about the protocol and does no I/O: the
//! connection task feeds it each decoded server message and carries out the
//! [`Action`] it returns. This keeps the rules (what may come when, which query
//! may still be answered) in one place that is tested without a network, the
//! way `rumqttc` tests its `MqttState`. Its siblings [`super::delivery`] and
//! [`super::keepalive`] do the same for notifications and pings.
//!
//! Frames that carry secrets (the authentication frame, `connectExtension`
//! with its reconnect secret) never show in `Debug` output: [`Session`] and
//! [`Action`] print their sizes instead.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::message::{self, ServerMessage};
use super::raw::RawObject;

/// What the connector does when the server sends `reconnectRequired`.
///
/// `PROTOCOL.md` describes both and says both work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReconnectStyle {
    /// Close the socket and redo the whole handshake on a new one, as the
    /// Python SDK does. The default.
    #[default]
    NewSocket,
    /// Send `connectExtension` again on the same socket, as the Java SDK does.
    SameSocket,
}

/// The credentials the session authenticates with (borrowed: the session
/// keeps only the frame it builds from them).
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// An access token (`validate`).
    Token(&'a str),
    /// A username and password (`authenticate`).
    Password {
        /// The username.
        username: &'a str,
        /// The password.
        password: &'a str,
    },
}

impl fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `validate`/`authenticate` sent, waiting for its answer.
    Authenticating,
    /// `connectExtension` sent, waiting for `configureExtension`.
    Connecting,
    /// Configured: publishes, queries and acknowledgements flow.
    Connected,
}

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The server rejected the credentials. Retrying will not help.
    AuthRejected {
        /// The status the server answered with (typically 401).
        status: u16,
        /// The error body.
        body: Option<Value>,
    },
    /// The server refused `connectExtension` (no such source, another
    /// connector serves it, or the source is being restarted). Worth a retry.
    ConnectRejected {
        /// The status the server answered with.
        status: u16,
        /// The error body.
        body: Option<Value>,
    },
}

/// What the connection task must do after a server message.
#[derive(Clone, PartialEq)]
pub enum Action {
    /// Write this frame.
    Send(String),
    /// The handshake is complete: hand `config` to the connect handler.
    Connected {
        /// The source's configuration document.
        config: Value,
    },
    /// A new configuration arrived on a connected session without a
    /// `reconnectRequired` first: close, then connect, with `config`.
    Reconfigured {
        /// The new configuration document.
        config: Value,
    },
    /// Deliver a published object to the publish handler.
    Publish {
        /// The published object.
        object: Value,
    },
    /// Deliver a published object's checked text (any JSON but `null`),
    /// to be read into a tree for the publish handler.
    PublishText {
        /// The published object's text.
        object: Box<str>,
    },
    /// Deliver a published object, as its text, to the publish handler.
    PublishRaw {
        /// The published object.
        object: RawObject,
    },
    /// Deliver a query to the query handler.
    Query {
        /// The `WITH` parameters.
        params: Value,
        /// The reply address the answers must carry (shared: the session
        /// keeps it too, until the final answer).
        reply_address: Arc<str>,
    },
    /// A status message on a connected session: the acknowledgement of a
    /// notification (an error status when the server refused it).
    Ack {
        /// The status code.
        status: u16,
        /// The body, if any.
        body: Option<Value>,
    },
    /// `reconnectRequired` ([`ReconnectStyle::NewSocket`]): close this socket
    /// and connect again at once, without backoff.
    Reconnect,
    /// `reconnectRequired` ([`ReconnectStyle::SameSocket`]): the current
    /// connection has ended (run the close handler), then write `resend`.
    Reconfigure {
        /// The `connectExtension` frame to write again.
        resend: String,
    },
    /// `testRequestsClientClose`: close the source for good, at once (as the
    /// official SDKs do for Vantiq's test servers).
    CloseForGood,
    /// The handshake failed.
    Fail(Failure),
    /// Nothing to do but log why.
    Ignore(&'static str),
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Frames to write may be `connectExtension` (the reconnect secret):
        // their sizes only.
        match self {
            Action::Send(frame) => write!(f, "Send(<{} bytes>)", frame.len()),
            Action::Reconfigure { resend } => {
                write!(f, "Reconfigure {{ resend: <{} bytes> }}", resend.len())
            }
            Action::Connected { config } => {
                f.debug_struct("Connected").field("config", config).finish()
            }
            Action::Reconfigured { config } => f
                .debug_struct("Reconfigured")
                .field("config", config)
                .finish(),
            Action::Publish { object } => {
                f.debug_struct("Publish").field("object", object).finish()
            }
            Action::PublishText { object } => f
                .debug_struct("PublishText")
                .field("object", object)
                .finish(),
            Action::PublishRaw { object } => f
                .debug_struct("PublishRaw")
                .field("object", object)
                .finish(),
            Action::Query {
                params,
                reply_address,
            } => f
                .debug_struct("Query")
                .field("params", params)
                .field("reply_address", reply_address)
                .finish(),
            Action::Ack { status, body } => f
                .debug_struct("Ack")
                .field("status", status)
                .field("body", body)
                .finish(),
            Action::Reconnect => f.write_str("Reconnect"),
            Action::CloseForGood => f.write_str("CloseForGood"),
            Action::Fail(failure) => f.debug_tuple("Fail").field(failure).finish(),
            Action::Ignore(why) => f.debug_tuple("Ignore").field(why).finish(),
        }
    }
}

/// Why a query answer was refused by the state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No open query has this reply address: it was already given its final
    /// answer, or it came on an earlier connection.
    #[error(
        "no open query has reply address `{0}` (already answered, or from an earlier connection)"
    )]
    NotOpen(String),
}

/// Whether a query response code ends the query.
pub fn is_final(status: u16) -> bool {
    status != 100
}

/// The protocol state of one connection of one source.
pub struct Session {
    phase: Phase,
    style: ReconnectStyle,
    connect_frame: String,
    open_queries: HashSet<Arc<str>, foldhash::fast::FixedState>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("style", &self.style)
            .field("connect_frame", &"<redacted>")
            .field("open_queries", &self.open_queries.len())
            .finish()
    }
}

impl Session {
    /// Starts a session: returns it and the authentication frame to write
    /// first (`validate` or `authenticate`, from `auth`).
    pub fn start(
        source: &str,
        reconnect_secret: &str,
        auth: Auth<'_>,
        style: ReconnectStyle,
    ) -> (Session, String) {
        let auth_frame = match auth {
            Auth::Token(token) => message::validate(token),
            Auth::Password { username, password } => message::authenticate(username, password),
        };
        let session = Session {
            phase: Phase::Authenticating,
            style,
            connect_frame: message::connect_extension(source, reconnect_secret),
            open_queries: HashSet::default(),
        };
        (session, auth_frame)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether notifications may be sent now.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The number of queries waiting for their final answer.
    pub fn open_queries(&self) -> usize {
        self.open_queries.len()
    }

    /// Takes one server message and says what to do.
    pub fn on_message(&mut self, msg: ServerMessage) -> Action {
        match (self.phase, msg) {
            (Phase::Authenticating, ServerMessage::Status { status, body }) => {
                if status < 300 {
                    self.phase = Phase::Connecting;
                    Action::Send(self.connect_frame.clone())
                } else {
                    Action::Fail(Failure::AuthRejected { status, body })
                }
            }
            (Phase::Connecting, ServerMessage::Status { status, body }) => {
                if status < 300 {
                    Action::Ignore("status before the configuration")
                } else {
                    Action::Fail(Failure::ConnectRejected { status, body })
                }
            }
            (Phase::Connected, ServerMessage::Status { status, body }) => {
                Action::Ack { status, body }
            }
            (Phase::Authenticating, ServerMessage::ConfigureExtension { .. }) => {
                Action::Ignore("configureExtension before authentication")
            }
            (Phase::Connecting, ServerMessage::ConfigureExtension { config }) => {
                self.phase = Phase::Connected;
                Action::Connected { config }
            }
            (Phase::Connected, ServerMessage::ConfigureExtension { config }) => {
                Action::Reconfigured { config }
            }
            (Phase::Connected, ServerMessage::Publish { object }) => Action::Publish { object },
            (Phase::Connected, ServerMessage::PublishRaw { object }) => {
                Action::PublishRaw { object }
            }
            (Phase::Connected, ServerMessage::PublishText { object }) => {
                Action::PublishText { object }
            }
            (
                _,
                ServerMessage::Publish { .. }
                | ServerMessage::PublishRaw { .. }
                | ServerMessage::PublishText { .. },
            ) => Action::Ignore("publish before the configuration"),
            (
                Phase::Connected,
                ServerMessage::Query {
                    params,
                    reply_address,
                },
            ) => {
                if self.open_queries.insert(reply_address.clone()) {
                    Action::Query {
                        params,
                        reply_address,
                    }
                } else {
                    Action::Ignore("query with the reply address of a query still open")
                }
            }
            (_, ServerMessage::Query { reply_address, .. }) => {
                // Answer at once so that the VAIL SELECT does not hang.
                Action::Send(not_ready_answer(&reply_address))
            }
            (_, ServerMessage::TestClose) => Action::CloseForGood,
            (Phase::Authenticating, ServerMessage::ReconnectRequired) => Action::Reconnect,
            (_, ServerMessage::ReconnectRequired) => match self.style {
                ReconnectStyle::NewSocket => Action::Reconnect,
                ReconnectStyle::SameSocket => {
                    self.phase = Phase::Connecting;
                    // The queries of the connection that ends now cannot be
                    // answered any more, as after a new socket: their
                    // handlers' answers are refused.
                    self.open_queries.clear();
                    Action::Reconfigure {
                        resend: self.connect_frame.clone(),
                    }
                }
            },
        }
    }

    /// Closes every open query with an error answer (`error_json`, the
    /// serialised body): returns the frames to write. For a connection that
    /// closes before its query handlers answered.
    pub fn abandon_open_queries(&mut self, error_json: &str) -> Vec<String> {
        self.open_queries
            .drain()
            .map(|reply_address| message::query_response(&reply_address, 400, Some(error_json)))
            .collect()
    }

    /// Settles an answer to an open query: checks that the query is open
    /// and closes it when `status` is final. The answer's frame is built by
    /// whoever answers ([`message::query_response`]), so that the body is
    /// written once, where it is serialised.
    ///
    /// # Errors
    ///
    /// [`AnswerError::NotOpen`] if the query was already closed or never
    /// came on this session: nothing must be sent then.
    pub fn settle(&mut self, reply_address: &str, status: u16) -> Result<(), AnswerError> {
        let open = if is_final(status) {
            self.open_queries.remove(reply_address)
        } else {
            self.open_queries.contains(reply_address)
        };
        if !open {
            return Err(AnswerError::NotOpen(reply_address.to_owned()));
        }
        Ok(())
    }

    /// [`Session::settle`], then the answer's frame. `body_json` is
    /// serialised JSON (`None` for 204).
    ///
    /// # Errors
    ///
    /// As [`Session::settle`].
    pub fn answer(
        &mut self,
        reply_address: &str,
        status: u16,
        body_json: Option<&str>,
    ) -> Result<String, AnswerError> {
        self.settle(reply_address, status)?;
        Ok(message::query_response(reply_address, status, body_json))
    }
}

/// The error answer for a query that arrived before the source was
/// configured.
fn not_ready_answer(reply_address: &str) -> String {
    let body = serde_json::json!({
        "messageCode": "io.vantiq.connector.notReady",
        "messageTemplate": "The connector received the query before its configuration.",
        "parameters": [],
    });
    message::query_response(reply_address, 400, Some(&body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn connected() -> Session {
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::NewSocket);
        assert!(matches!(s.on_message(status(200)), Action::Send(_)));
        assert_eq!(
            s.on_message(ServerMessage::ConfigureExtension {
                config: json!({"a":1})
            }),
            Action::Connected {
                config: json!({"a":1})
            }
        );
        s
    }

    fn status(status: u16) -> ServerMessage {
        ServerMessage::Status { status, body: None }
    }

    fn query(addr: &str) -> ServerMessage {
        ServerMessage::Query {
            params: json!({}),
            reply_address: addr.into(),
        }
    }

    #[test]
    fn handshake_sends_connect_extension_then_tolerates_statuses() {
        let (mut s, first) =
            Session::start("src", "sec", Auth::Token("tok"), ReconnectStyle::NewSocket);
        assert!(first.contains(r#""op":"validate""#));
        let Action::Send(frame) = s.on_message(status(200)) else {
            panic!("expected connectExtension");
        };
        assert!(frame.contains(r#""reconnectSecret":"sec""#));
        assert_eq!(s.phase(), Phase::Connecting);
        assert!(matches!(s.on_message(status(200)), Action::Ignore(_)));
        assert!(matches!(s.on_message(status(204)), Action::Ignore(_)));
        assert!(matches!(
            s.on_message(ServerMessage::ConfigureExtension { config: json!({}) }),
            Action::Connected { .. }
        ));
        assert!(s.is_connected());
    }

    #[test]
    fn auth_and_connect_rejections_are_failures() {
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::NewSocket);
        assert!(matches!(
            s.on_message(status(401)),
            Action::Fail(Failure::AuthRejected { status: 401, .. })
        ));
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::NewSocket);
        s.on_message(status(200));
        assert!(matches!(
            s.on_message(status(404)),
            Action::Fail(Failure::ConnectRejected { status: 404, .. })
        ));
    }

    #[test]
    fn messages_before_configuration_are_not_delivered() {
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::NewSocket);
        assert!(matches!(
            s.on_message(ServerMessage::Publish { object: json!({}) }),
            Action::Ignore(_)
        ));
        let Action::Send(answer) = s.on_message(query("q0")) else {
            panic!("an early query must be answered");
        };
        assert!(answer.contains(r#""status":400"#));
    }

    #[test]
    fn a_query_is_answered_once() {
        let mut s = connected();
        assert!(matches!(s.on_message(query("q1")), Action::Query { .. }));
        assert!(s.answer("q1", 100, Some("[]")).is_ok());
        assert!(s.answer("q1", 100, Some("[]")).is_ok());
        assert!(s.answer("q1", 200, Some("[]")).is_ok());
        assert_eq!(
            s.answer("q1", 200, Some("[]")),
            Err(AnswerError::NotOpen("q1".into()))
        );
        assert!(s.answer("q1", 100, Some("[]")).is_err());
        assert!(s.answer("other", 204, None).is_err());
        assert_eq!(s.open_queries(), 0);
    }

    #[test]
    fn duplicate_open_reply_address_is_ignored() {
        let mut s = connected();
        assert!(matches!(s.on_message(query("q")), Action::Query { .. }));
        assert!(matches!(s.on_message(query("q")), Action::Ignore(_)));
    }

    #[test]
    fn reconnect_required_in_both_styles() {
        let mut s = connected();
        assert_eq!(
            s.on_message(ServerMessage::ReconnectRequired),
            Action::Reconnect
        );

        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::SameSocket);
        s.on_message(status(200));
        s.on_message(ServerMessage::ConfigureExtension { config: json!({}) });
        let Action::Reconfigure { resend } = s.on_message(ServerMessage::ReconnectRequired) else {
            panic!("expected Reconfigure");
        };
        assert!(resend.contains("connectExtension"));
        assert_eq!(s.phase(), Phase::Connecting);
        assert!(matches!(s.on_message(status(200)), Action::Ignore(_)));
        assert!(matches!(
            s.on_message(ServerMessage::ConfigureExtension {
                config: json!({"v":2})
            }),
            Action::Connected { .. }
        ));
    }

    #[test]
    fn a_same_socket_reconnect_closes_the_open_queries() {
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::SameSocket);
        s.on_message(status(200));
        s.on_message(ServerMessage::ConfigureExtension { config: json!({}) });
        assert!(matches!(s.on_message(query("old")), Action::Query { .. }));
        assert!(matches!(
            s.on_message(ServerMessage::ReconnectRequired),
            Action::Reconfigure { .. }
        ));
        s.on_message(ServerMessage::ConfigureExtension { config: json!({}) });
        assert_eq!(s.open_queries(), 0);
        assert_eq!(
            s.answer("old", 200, Some("{}")),
            Err(AnswerError::NotOpen("old".into()))
        );
    }

    #[test]
    fn abandoned_queries_get_one_error_answer_each() {
        let mut s = connected();
        s.on_message(query("a"));
        s.on_message(query("b"));
        s.answer("a", 100, Some("{}")).unwrap();
        let mut frames = s.abandon_open_queries(r#"{"messageCode":"x"}"#);
        frames.sort();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.contains(r#""status":400"#)));
        assert!(frames[0].contains(r#""X-Reply-Address":"a""#));
        assert!(s.answer("a", 200, Some("{}")).is_err());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let (mut s, first) = Session::start(
            "src",
            "reconnect-SECRET-1",
            Auth::Password {
                username: "u",
                password: "pass-SECRET-2",
            },
            ReconnectStyle::SameSocket,
        );
        assert!(first.contains("pass-SECRET-2"));
        let send = s.on_message(status(200));
        s.on_message(ServerMessage::ConfigureExtension { config: json!({}) });
        let reconfigure = s.on_message(ServerMessage::ReconnectRequired);
        let printed = format!(
            "{s:?} {send:?} {reconfigure:?} {:?} {:?}",
            Auth::Token("tok-SECRET-3"),
            Auth::Password {
                username: "u",
                password: "pass-SECRET-2"
            }
        );
        assert!(!printed.contains("SECRET"), "{printed}");
    }

    #[test]
    fn statuses_after_configuration_are_acks() {
        let mut s = connected();
        assert_eq!(
            s.on_message(status(200)),
            Action::Ack {
                status: 200,
                body: None
            }
        );
        assert!(matches!(
            s.on_message(status(500)),
            Action::Ack { status: 500, .. }
        ));
        assert!(matches!(
            s.on_message(ServerMessage::ConfigureExtension {
                config: json!({"b":2})
            }),
            Action::Reconfigured { .. }
        ));
    }

    #[test]
    fn test_close_ends_the_source_in_every_phase() {
        let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), ReconnectStyle::NewSocket);
        assert_eq!(s.on_message(ServerMessage::TestClose), Action::CloseForGood);
        let mut s = connected();
        assert_eq!(s.on_message(ServerMessage::TestClose), Action::CloseForGood);
    }

    fn arb_message() -> impl Strategy<Value = ServerMessage> {
        prop_oneof![
            (0u16..600).prop_map(status),
            Just(ServerMessage::ConfigureExtension {
                config: json!({"c":1})
            }),
            Just(ServerMessage::Publish {
                object: json!({"p":1})
            }),
            (0u8..4).prop_map(|i| query(&format!("q{i}"))),
            Just(ServerMessage::ReconnectRequired),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Server(ServerMessage),
        Answer(u8, u16),
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            arb_message().prop_map(Step::Server),
            (
                (0u8..4),
                prop_oneof![Just(100u16), Just(200), Just(204), Just(400)]
            )
                .prop_map(|(q, s)| Step::Answer(q, s)),
        ]
    }

    proptest! {
        /// No sequence of server messages and answer attempts panics, and no
        /// query delivered to a handler gets more than one final answer
        /// frame, nor any answer after its final one.
        #[test]
        fn never_answers_a_query_twice(
            steps in proptest::collection::vec(arb_step(), 0..200),
            same_socket in any::<bool>(),
        ) {
            let style = if same_socket { ReconnectStyle::SameSocket } else { ReconnectStyle::NewSocket };
            let (mut s, _) = Session::start("src", "sec", Auth::Token("t"), style);
            // reply address -> whether it is open (delivered, no final answer yet)
            let mut open: std::collections::HashMap<String, bool> = Default::default();
            for step in steps {
                match step {
                    Step::Server(msg) => match s.on_message(msg) {
                        Action::Query { reply_address, .. } => {
                            prop_assert!(!open.get(&*reply_address).copied().unwrap_or(false));
                            open.insert(reply_address.to_string(), true);
                        }
                        // The queries of the ended connection are closed.
                        Action::Reconfigure { .. } => open.clear(),
                        _ => {}
                    },
                    Step::Answer(q, status) => {
                        let addr = format!("q{q}");
                        let body = if status == 204 { None } else { Some("{}") };
                        let was_open = open.get(&addr).copied().unwrap_or(false);
                        let sent = s.answer(&addr, status, body).is_ok();
                        prop_assert_eq!(sent, was_open);
                        if sent && is_final(status) {
                            open.insert(addr, false);
                        }
                    }
                }
            }
        }
    }
}
