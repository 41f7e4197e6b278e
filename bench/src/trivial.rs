//! The trivial client of the driver's ceiling (`floor --trivial`, its own process): the
//! handshake, then WebSocket framing and nothing else. Each publish is answered with one
//! notification frame made once at the start; each `rows` query with a made answer (its
//! reply address, cut out of the frame, between two fixed parts); a `notify` query with
//! the echo's notifications (`{"seq":0}`..., made once per count) and its final answer. No JSON is parsed after the
//! handshake: the frames are told apart by how they begin, which is how the load server
//! writes them ([`vantiq_sim::frames`]). After the handshake it runs on a blocking socket.
//! What the ceiling column measures with it is what
//! the load server and the machine sustain, which no connector can beat.

use std::io::{self, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use vantiq_connector_sdk::config::ServerConfig;

use crate::rawws::{self, find, put, Conn, Input};

/// The notification sent for every publish (the shape of the bench's published object).
const OBJECT: &str = r#"{"i":0,"payload":"0123456789"}"#;

/// Serves every source of `config` on a socket each until killed, reconnecting after
/// `retry` when a connection fails.
///
/// # Errors
///
/// `config` does not authenticate with a token, or its URL is not `ws://host:port/path`.
pub async fn serve(config: &ServerConfig, retry: Duration) -> Result<(), String> {
    let token = crate::config::token(config)?.to_owned();
    let url = config.websocket_url();
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for source in config.sources() {
        let (addr, path, token, source) = (
            addr.to_owned(),
            format!("/{}", path.trim_start_matches('/')),
            token.clone(),
            source.clone(),
        );
        tasks.spawn(async move {
            loop {
                if let Err(e) = session(&addr, &path, &token, &source).await {
                    if std::env::var_os("FLOOR_DEBUG").is_some() {
                        eprintln!("trivial: {source}: {e}");
                    }
                }
                tokio::time::sleep(retry).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The next whole text (or binary) message, skipping control frames.
async fn next_message(conn: &mut Conn) -> io::Result<Value> {
    loop {
        if let Some(f) = conn.input.frame().map_err(io::Error::other)? {
            if f.opcode == rawws::TEXT || f.opcode == rawws::BINARY {
                return serde_json::from_slice(&conn.input.bytes()[f.payload])
                    .map_err(io::Error::other);
            }
            continue;
        }
        conn.io().await?;
    }
}

fn send(conn: &mut Conn, v: &Value) {
    put(
        &mut conn.out,
        rawws::TEXT,
        &[v.to_string().as_bytes()],
        true,
    );
}

/// One connection: the handshake, then the trivial echo until it fails.
async fn session(addr: &str, path: &str, token: &str, source: &str) -> io::Result<()> {
    let mut conn = Conn::connect(addr, path).await?;
    send(
        &mut conn,
        &json!({"op":"validate","resourceName":"system.credentials","object":token}),
    );
    conn.flush().await?;
    let answer = next_message(&mut conn).await?;
    if answer.get("status").and_then(Value::as_u64) != Some(200) {
        return Err(io::Error::other(format!("validate refused: {answer}")));
    }
    send(
        &mut conn,
        &json!({"op":"connectExtension","resourceName":"sources","resourceId":source,
                "parameters":{"reconnectSecret":format!("trivial-{}", std::process::id())}}),
    );
    conn.flush().await?;
    loop {
        let m = next_message(&mut conn).await?;
        if m.get("op").and_then(Value::as_str) == Some("configureExtension") {
            break;
        }
        if m.get("status")
            .and_then(Value::as_u64)
            .is_none_or(|s| s >= 300)
        {
            return Err(io::Error::other(format!("connect refused: {m}")));
        }
    }
    let prefix = format!(
        r#"{{"op":"notification","resourceName":"sources","resourceId":{},"object":"#,
        Value::from(source)
    );
    let mut notification = Vec::new();
    put(
        &mut notification,
        rawws::TEXT,
        &[prefix.as_bytes(), OBJECT.as_bytes(), b"}"],
        true,
    );
    // The echo itself on blocking I/O in a thread of its own: a read wakes it straight
    // from the kernel, with no event loop in between (the load server never stops reading,
    // so a blocking write cannot deadlock with it).
    let (stream, input) = conn.into_blocking()?;
    tokio::task::spawn_blocking(move || echo(stream, input, &notification, &prefix))
        .await
        .map_err(io::Error::other)?
}

/// The trivial echo on a blocking socket, until the connection fails or
/// `reconnectRequired` comes.
fn echo(
    mut stream: TcpStream,
    mut input: Input,
    notification: &[u8],
    prefix: &str,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 * 1024);
    // The notifications of the last `notify` query, `{"seq":0}` to `{"seq":N-1}` as the
    // echo sends them, made once for the next queries of the same count.
    let mut notify: (usize, Vec<u8>) = (0, Vec::new());
    loop {
        while let Some(f) = input.frame().map_err(io::Error::other)? {
            let p = &input.bytes()[f.payload];
            match f.opcode {
                rawws::PING => put(&mut out, rawws::PONG, &[p], true),
                rawws::CLOSE => return Err(io::ErrorKind::ConnectionAborted.into()),
                _ if p.starts_with(br#"{"op":"publish""#) => out.extend_from_slice(notification),
                _ if p.starts_with(br#"{"status""#) => {} // an acknowledgement
                _ if p.starts_with(br#"{"messageHeaders""#) => {
                    let mut answer = Vec::new();
                    let owed = query(p, &mut answer);
                    if owed > 0 {
                        // A notify query: what is queued, its notifications, its answer.
                        if notify.0 != owed {
                            notify = (owed, seq_frames(prefix, owed));
                        }
                        stream.write_all(&out)?;
                        out.clear();
                        write_reading(&mut stream, &mut input, &notify.1)?;
                    }
                    out.extend_from_slice(&answer);
                }
                _ if find(p, br#""op":"reconnectRequired""#).is_some() => return Ok(()),
                _ => {}
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if input.read_from(&mut stream)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Writes `bytes` in slices, reading what has arrived between them (the
/// acknowledgements of the notifications written so far; they are looked at
/// afterwards): a client that wrote hundreds of thousands of notifications
/// without reading made the load server keep their acknowledgements, which
/// slowed it down below the floor's rate (the ceiling's rounds have several
/// times the floor's notifications).
fn write_reading(stream: &mut TcpStream, input: &mut Input, bytes: &[u8]) -> io::Result<()> {
    const SLICE: usize = 256 * 1024;
    for slice in bytes.chunks(SLICE) {
        stream.write_all(slice)?;
        stream.set_nonblocking(true)?;
        let read = loop {
            match input.read_from(stream) {
                Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        read?;
    }
    Ok(())
}

/// The frames of notifications `{"seq":0}` to `{"seq":n-1}`.
fn seq_frames(prefix: &str, n: usize) -> Vec<u8> {
    let mut frames = Vec::with_capacity(n * (prefix.len() + 24));
    for seq in 0..n {
        let object = format!(r#"{{"seq":{seq}}}}}"#);
        put(
            &mut frames,
            rawws::TEXT,
            &[prefix.as_bytes(), object.as_bytes()],
            true,
        );
    }
    frames
}

/// Answers a query frame: `rows` with `count` rows `{"i":0}`, `notify` with `count`
/// notifications (returned: they are to be sent before the answer), anything else with an
/// error. Nothing is parsed but the reply address and the count.
fn query(frame: &[u8], out: &mut Vec<u8>) -> usize {
    const ADDR: &[u8] = br#""REPLY_ADDR_HEADER":""#;
    let Some(at) = find(frame, ADDR).map(|a| a + ADDR.len()) else {
        return 0;
    };
    let Some(len) = frame[at..].iter().position(|b| *b == b'"') else {
        return 0;
    };
    let addr = &frame[at..at + len];
    let count = find(frame, br#""count":"#)
        .map(|c| {
            frame[c + 8..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'))
        })
        .unwrap_or(0);
    let head: &[u8] = br#"{"status":200,"headers":{"X-Reply-Address":""#;
    if find(frame, br#""op":"notify""#).is_some() {
        let body = format!(r#""}},"body":{{"sent":{count}}}}}"#);
        put(out, rawws::TEXT, &[head, addr, body.as_bytes()], true);
        return count;
    }
    if find(frame, br#""op":"rows""#).is_some() && count == 1 {
        put(
            out,
            rawws::TEXT,
            &[head, addr, br#""},"body":[{"i":0}]}"#],
            true,
        );
    } else if find(frame, br#""op":"rows""#).is_some() {
        let rows = vec![r#"{"i":0}"#; count].join(",");
        let body = format!(r#""}},"body":[{rows}]}}"#);
        put(out, rawws::TEXT, &[head, addr, body.as_bytes()], true);
    } else {
        let error: &[u8] = br#"{"status":400,"headers":{"X-Reply-Address":""#;
        let body: &[u8] = br#""},"body":{"messageCode":"trivial.unknownOp","messageTemplate":"only rows and notify","parameters":[]}}"#;
        put(out, rawws::TEXT, &[error, addr, body], true);
    }
    0
}
