//! The way out through an HTTP proxy: an HTTP `CONNECT` tunnel, opened on any
//! byte stream, through which the WebSocket (and for `wss`, TLS to the Vantiq
//! server itself) then runs end to end.
//!
//! The proxy sees only the host and port of the server. Basic credentials
//! from the proxy URL go in `Proxy-Authorization`; they never appear in a
//! log line or an error.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::{ProxyCredentials, ProxyUrl};
use crate::error::{ConnectError, ConnectErrorKind};

/// The largest proxy answer head read (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// Asks the proxy on `stream` for a tunnel to `target` (`host:port`, IPv6 in
/// brackets) and reads its answer. On success the stream is the tunnel: not
/// one byte past the proxy's answer has been read.
///
/// # Errors
///
/// [`ConnectErrorKind::ProxyAuth`] for a 407 (or 401), [`ConnectErrorKind::ProxyRefused`]
/// for any other non-2xx answer, [`ConnectErrorKind::ProxyUnreachable`] when
/// the proxy closes, breaks or does not speak HTTP.
pub(crate) async fn tunnel<S>(
    stream: &mut S,
    proxy: &ProxyUrl,
    target: &str,
) -> Result<(), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let broken = |what: String| {
        ConnectError::new(
            ConnectErrorKind::ProxyUnreachable,
            format!("the proxy {proxy} {what}"),
        )
    };
    let request = connect_request(target, proxy.credentials());
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| broken(format!("failed while asked for a tunnel to {target}: {e}")))?;
    stream
        .flush()
        .await
        .map_err(|e| broken(format!("failed while asked for a tunnel to {target}: {e}")))?;

    // Byte by byte up to the blank line: the tunnel's first bytes (the TLS or
    // WebSocket handshake) must stay in the stream. A head is a few hundred
    // bytes, read once per connection.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(broken(format!("sent an answer head over {MAX_HEAD} bytes")));
        }
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) => {
                return Err(broken(format!(
                    "closed the connection before answering the request for a tunnel to {target}"
                )))
            }
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(broken(format!("failed before answering: {e}"))),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let (code, reason) = match response.parse(&head) {
        Ok(httparse::Status::Complete(_)) => (
            response.code.unwrap_or(0),
            response.reason.unwrap_or("").to_owned(),
        ),
        _ => return Err(broken("did not answer in HTTP".to_owned())),
    };
    match code {
        200..=299 => {
            tracing::debug!(%proxy, target, code, "proxy tunnel open");
            Ok(())
        }
        // 407 is the standard answer; some proxies (tinyproxy) answer a
        // CONNECT with wrong credentials with 401.
        401 | 407 => Err(ConnectError::new(
            ConnectErrorKind::ProxyAuth,
            match proxy.credentials() {
                Some(_) => format!(
                    "the proxy {proxy} rejected the credentials of the proxy URL ({code} {reason})"
                ),
                None => format!(
                    "the proxy {proxy} wants credentials ({code} {reason}): \
                     give them in the proxy URL, http://user:password@host:port"
                ),
            },
        )),
        _ => Err(ConnectError::new(
            ConnectErrorKind::ProxyRefused(code),
            format!("the proxy {proxy} refused to open a tunnel to {target} ({code} {reason})"),
        )),
    }
}

/// The `CONNECT` request for `target`, with Basic credentials when given.
fn connect_request(target: &str, credentials: Option<&ProxyCredentials>) -> String {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = credentials {
        let pair = format!("{}:{}", c.username().expose(), c.password().expose());
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&data_encoding::BASE64.encode(pair.as_bytes()));
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncBufReadExt, BufReader};

    /// Runs `tunnel` against a scripted proxy answer; returns the result, the
    /// request the proxy saw, and what the client reads next from the stream.
    async fn against(
        answer: &'static [u8],
        proxy: &str,
    ) -> (Result<(), ConnectError>, String, Vec<u8>) {
        let proxy = ProxyUrl::parse(proxy).unwrap();
        let (mut client, server) = duplex(64 * 1024);
        let fake = tokio::spawn(async move {
            let mut server = BufReader::new(server);
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if server.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                request.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            server.get_mut().write_all(answer).await.unwrap();
            drop(server);
            request
        });
        let result = tunnel(&mut client, &proxy, "dev.vantiq.com:443").await;
        let request = fake.await.unwrap();
        let mut rest = Vec::new();
        if result.is_ok() {
            client.read_to_end(&mut rest).await.unwrap();
        }
        (result, request, rest)
    }

    #[tokio::test]
    async fn an_open_tunnel_leaves_the_following_bytes_unread() {
        let (result, request, rest) = against(
            b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n\x16\x03\x01TLS",
            "http://proxy:3128",
        )
        .await;
        result.unwrap();
        assert_eq!(
            request,
            "CONNECT dev.vantiq.com:443 HTTP/1.1\r\nHost: dev.vantiq.com:443\r\n\r\n"
        );
        assert_eq!(rest, b"\x16\x03\x01TLS");
    }

    #[tokio::test]
    async fn basic_credentials_are_sent_percent_decoded() {
        let (result, request, _) = against(
            b"HTTP/1.0 200 OK\r\n\r\n",
            "http://al%20ice:p%40ss:w@proxy:3128",
        )
        .await;
        result.unwrap();
        // base64("al ice:p@ss:w")
        assert!(
            request.contains("\r\nProxy-Authorization: Basic YWwgaWNlOnBAc3M6dw==\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_407_says_what_is_missing_without_the_password() {
        let (e, ..) = against(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            "http://proxy:1",
        )
        .await;
        let e = e.unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::ProxyAuth);
        assert!(e.message.contains("wants credentials"), "{e}");
        let (e, ..) = against(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            "http://bob:hunter2@proxy:1",
        )
        .await;
        let e = e.unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::ProxyAuth);
        assert!(e.message.contains("rejected the credentials"), "{e}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("bob"), "{e:?}");
    }

    #[tokio::test]
    async fn refusals_and_garbage() {
        for (answer, kind) in [
            (
                &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..],
                ConnectErrorKind::ProxyRefused(403),
            ),
            (
                b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
                ConnectErrorKind::ProxyRefused(502),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                ConnectErrorKind::ProxyUnreachable,
            ),
            (b"HTTP/1.1 200 OK\r\n", ConnectErrorKind::ProxyUnreachable),
        ] {
            let (e, ..) = against(answer, "http://proxy:1").await;
            let e = e.unwrap_err();
            assert_eq!(e.kind, kind, "{e}");
            assert!(e.message.starts_with("the proxy http://proxy:1 "), "{e}");
        }
        let (e, ..) = against(b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "http://proxy:1").await;
        assert_eq!(
            e.unwrap_err().message,
            "the proxy http://proxy:1 refused to open a tunnel to dev.vantiq.com:443 (502 Bad Gateway)"
        );
    }

    #[tokio::test]
    async fn an_endless_head_is_cut() {
        let (mut client, mut server) = duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            let line = [b'a'; 1024];
            while server.write_all(&line).await.is_ok() {}
        });
        let proxy = ProxyUrl::parse("http://proxy:1").unwrap();
        let e = tunnel(&mut client, &proxy, "h:1").await.unwrap_err();
        assert!(e.message.contains("over 16384 bytes"), "{e}");
    }
}
