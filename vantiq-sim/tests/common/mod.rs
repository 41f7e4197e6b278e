//! A plain WebSocket test client speaking the connector's side of the protocol, written
//! directly on tokio-tungstenite so the emulator is tested against no SDK at all.

#![allow(dead_code)]

pub mod java;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Numbers that a lossy path would change: a float that the default parsing of serde_json
/// rounds wrongly, integers beyond 64 bits, `-0.0`, the smallest subnormal, `f64::MAX`,
/// 2^53 + 1, and numbers beyond the f64 range. Keys sorted and exponents signed, as
/// serde_json writes them, so the text itself must come back unchanged.
pub const NUMBERS: &str = concat!(
    r#"{"a":1.6499999999999999e-06,"b":1180591620717411303424,"#,
    r#""c":-36893488147419103232,"d":123456789012345678901234567890123456789,"#,
    r#""e":-0.0,"f":5e-324,"g":1.7976931348623157e+308,"h":9007199254740993,"#,
    r#""i":0.30000000000000004,"j":1e+400,"k":-1e+400}"#
);

/// [`NUMBERS`] as a JSON value.
pub fn numbers() -> Value {
    serde_json::from_str(NUMBERS).expect("NUMBERS is JSON")
}

/// Asserts that `text` holds [`NUMBERS`] verbatim and no `inf` or `NaN`.
pub fn assert_numbers_in(text: &str) {
    assert!(text.contains(NUMBERS), "numbers changed: {text}");
    let lower = text.to_ascii_lowercase();
    assert!(!lower.contains("inf") && !lower.contains("nan"), "{text}");
}

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// One connector socket.
pub struct Conn {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as seen by the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server sent a close frame.
    CloseFrame,
    /// The TCP connection ended without a close frame.
    Abrupt,
}

impl Conn {
    pub async fn open(url: &str) -> Conn {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        Conn { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::text(s)).await.expect("send");
    }

    pub async fn send_binary(&mut self, v: Value) {
        self.ws
            .send(Message::Binary(Bytes::from(v.to_string().into_bytes())))
            .await
            .expect("send");
    }

    /// The next data message, parsed (pings and pongs skipped), text or binary.
    pub async fn recv(&mut self) -> Value {
        self.recv_frame().await.1
    }

    /// The next text or binary message (pings and pongs skipped).
    async fn next_data(&mut self) -> Message {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("read error");
            match msg {
                Message::Text(_) | Message::Binary(_) => return msg,
                Message::Close(c) => panic!("unexpected close: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next data message with its frame type.
    pub async fn recv_frame(&mut self) -> (vantiq_sim::FrameType, Value) {
        match self.next_data().await {
            Message::Text(t) => {
                let v = serde_json::from_str(t.as_str()).expect("JSON");
                (vantiq_sim::FrameType::Text, v)
            }
            other => {
                let v = serde_json::from_slice(&other.into_data()).expect("JSON");
                (vantiq_sim::FrameType::Binary, v)
            }
        }
    }

    /// The text of the next data message, exactly as received.
    pub async fn recv_text(&mut self) -> String {
        String::from_utf8(self.next_data().await.into_data().to_vec()).expect("UTF-8")
    }

    /// Authenticates with a token; returns the answer.
    pub async fn validate(&mut self, token: &str) -> Value {
        self.send(json!({"op":"validate","resourceName":"system.credentials","object":token}))
            .await;
        self.recv().await
    }

    /// Sends connectExtension; returns the first answer.
    pub async fn connect_extension(&mut self, source: &str, secret: &str) -> Value {
        self.send(json!({
            "op":"connectExtension","resourceName":"sources","resourceId":source,
            "parameters":{"reconnectSecret":secret}
        }))
        .await;
        self.recv().await
    }

    /// Sends connectExtension and expects status 200 then configureExtension; returns the
    /// configuration.
    pub async fn connect_ok(&mut self, source: &str, secret: &str) -> Value {
        let status = self.connect_extension(source, secret).await;
        assert_eq!(status, json!({"status":200}), "connectExtension answer");
        let configure = self.recv().await;
        assert_eq!(configure["op"], "configureExtension", "{configure}");
        assert_eq!(configure["resourceName"], "sources");
        assert_eq!(configure["resourceId"], source);
        configure["object"]["config"].clone()
    }

    /// Opens, validates and connects a source.
    pub async fn handshake(url: &str, token: &str, source: &str, secret: &str) -> (Conn, Value) {
        let mut c = Conn::open(url).await;
        let auth = c.validate(token).await;
        assert_eq!(auth["status"], 200, "{auth}");
        let config = c.connect_ok(source, secret).await;
        (c, config)
    }

    pub async fn notify(&mut self, source: &str, object: Value) {
        self.send(json!({"op":"notification","resourceName":"sources","resourceId":source,"object":object}))
            .await;
    }

    pub async fn answer(&mut self, addr: &str, status: u16, body: Option<Value>) {
        let mut msg = json!({"status": status, "headers": {"X-Reply-Address": addr}});
        if let Some(body) = body {
            msg["body"] = body;
        }
        self.send(msg).await;
    }

    /// Waits for the connection to end; tells how.
    pub async fn ending(&mut self) -> Ending {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for the connection to end")
            {
                None | Some(Err(_)) => return Ending::Abrupt,
                Some(Ok(Message::Close(_))) => return Ending::CloseFrame,
                Some(Ok(_)) => continue,
            }
        }
    }
}
