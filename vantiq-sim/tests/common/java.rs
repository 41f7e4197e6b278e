//! A test client that behaves on the wire as a connector built on Vantiq's Java SDK
//! (`extjsdk`) does, written from what that SDK's sources say about its messages:
//!
//! - every message goes out as a binary frame (the SDK serialises each message object to
//!   JSON bytes and sends them with OkHttp's `ByteString` call);
//! - only binary frames are read: the SDK's WebSocket listener implements only the
//!   `ByteString` callback, so OkHttp drops text frames unseen (counted here, so a test
//!   can show that they came);
//! - `connectExtension` and notifications are serialised `ExtensionServiceMessage`
//!   objects: `"address": ""`, `"messageHeaders": {}`, `"namespaceName": null`,
//!   `"object": null` on `connectExtension`, `"contentType"`, `"sourceName"`, ...;
//! - query answers are serialised `Response` objects: `status`, `headers` with
//!   `X-Reply-Address`, `body` (`null` on a 204), `contentType`; a query error is a 400
//!   with one error object `{messageCode, messageTemplate, parameters}`;
//! - after `reconnectRequired` it sends `connectExtension` again on the same socket.

use super::WAIT;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The content type the Java SDK puts on every message it sends.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// One Java-shaped connector socket for one source.
pub struct JavaConn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    source: String,
    /// Text frames received and dropped, as the Java SDK drops them.
    pub text_frames_ignored: usize,
}

impl JavaConn {
    pub async fn open(url: &str, source: &str) -> JavaConn {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        JavaConn {
            ws,
            source: source.to_owned(),
            text_frames_ignored: 0,
        }
    }

    /// Sends a message as the SDK does: JSON bytes in a binary frame.
    pub async fn send(&mut self, message: Value) {
        let bytes = Bytes::from(message.to_string().into_bytes());
        self.ws.send(Message::Binary(bytes)).await.expect("send");
    }

    /// The next binary message, parsed; text frames are dropped (and counted).
    pub async fn recv(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a binary message")
                .expect("connection ended")
                .expect("read error");
            match msg {
                Message::Binary(b) => return serde_json::from_slice(&b).expect("JSON"),
                Message::Text(_) => self.text_frames_ignored += 1,
                Message::Close(c) => panic!("unexpected close: {c:?}"),
                _ => {}
            }
        }
    }

    /// Reads until a text frame has been dropped (a test's proof that text came).
    pub async fn until_text_dropped(&mut self) {
        let seen = self.text_frames_ignored;
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.text_frames_ignored == seen {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for a text frame")
                .expect("connection ended")
                .expect("read error");
            if let Message::Text(_) = msg {
                self.text_frames_ignored += 1;
            }
        }
    }

    /// Whether the connection ends (without a close frame or with one) before `WAIT`.
    pub async fn ended(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// `validate` as the SDK sends it (a plain map of three entries).
    pub async fn validate(&mut self, token: &str) {
        self.send(json!({"op": "validate", "resourceName": "system.credentials", "object": token}))
            .await;
    }

    /// A serialised `ExtensionServiceMessage` with this op, object and parameters.
    fn service_message(&self, op: &str, object: Value, parameters: Value) -> Value {
        json!({
            "address": "",
            "messageHeaders": {},
            "namespaceName": null,
            "locale": null,
            "op": op,
            "resourceName": "sources",
            "resourceId": self.source,
            "parameters": parameters,
            "object": object,
            "contentType": CONTENT_TYPE,
            "responseType": null,
            "sourceName": self.source,
        })
    }

    /// `connectExtension` with the reconnect secret, `"object": null`.
    pub async fn connect_extension(&mut self, secret: &str) {
        let msg = self.service_message(
            "connectExtension",
            Value::Null,
            json!({"reconnectSecret": secret}),
        );
        self.send(msg).await;
    }

    /// Validates and connects; returns the configuration received.
    pub async fn handshake(url: &str, token: &str, source: &str, secret: &str) -> (Self, Value) {
        let mut c = JavaConn::open(url, source).await;
        c.validate(token).await;
        let auth = c.recv().await;
        assert_eq!(auth["status"], 200, "{auth}");
        let config = c.connect(secret).await;
        (c, config)
    }

    /// Sends `connectExtension`, expects status 200 and `configureExtension`; returns the
    /// configuration.
    pub async fn connect(&mut self, secret: &str) -> Value {
        self.connect_extension(secret).await;
        let status = self.recv().await;
        assert_eq!(status["status"], 200, "{status}");
        let configure = self.recv().await;
        assert_eq!(configure["op"], "configureExtension", "{configure}");
        configure["object"]["config"].clone()
    }

    /// A notification, as `sendNotification` builds it.
    pub async fn notify(&mut self, object: Value) {
        let msg = self.service_message("notification", object, Value::Null);
        self.send(msg).await;
    }

    /// A serialised `Response` to the query with reply address `addr`.
    pub async fn answer(&mut self, addr: &str, status: u16, body: Value) {
        self.send(json!({
            "status": status,
            "headers": {"X-Reply-Address": addr},
            "body": body,
            "contentType": CONTENT_TYPE,
        }))
        .await;
    }

    /// `sendQueryResponseEmpty`: a 204 with `"body": null`.
    pub async fn answer_empty(&mut self, addr: &str) {
        self.answer(addr, 204, Value::Null).await;
    }

    /// `sendQueryError`: a 400 with one error object.
    pub async fn answer_error(&mut self, addr: &str, code: &str, template: &str, params: Value) {
        let body = json!({"messageCode": code, "messageTemplate": template, "parameters": params});
        self.answer(addr, 400, body).await;
    }

    /// Waits for a query; returns its parameters and reply address (`REPLY_ADDR_HEADER`
    /// in `messageHeaders`, where the SDK looks for it).
    pub async fn next_query(&mut self) -> (Value, String) {
        let q = self.recv().await;
        assert_eq!(q["op"], "query", "{q}");
        let addr = q["messageHeaders"]["REPLY_ADDR_HEADER"]
            .as_str()
            .expect("reply address")
            .to_owned();
        (q["object"].clone(), addr)
    }
}
