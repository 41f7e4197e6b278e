//! The byte stream under the WebSocket, and the blocking-style view of it that
//! the WebSocket library reads and writes.
//!
//! `tungstenite` reads and writes through `std::io::Read` and `Write`; an
//! async stream is given to it through [`SyncIo`], which polls the stream with
//! the waker of the one task that serves the socket and turns `Pending` into
//! `WouldBlock` (the library keeps what it could not write, and a read that
//! would block leaves its buffer as it was). One task owns the socket, so one
//! waker serves both directions: it is stored once per poll of that task
//! ([`SyncIo::set_waker`]), not once per frame, and there are no shared wakers
//! between split halves.
//!
//! Why not `tokio-tungstenite`'s stream: it registers the polling task's
//! waker in two atomic slots (read and write, for split halves) on every
//! frame read and every flush; for the small frames a connector mostly
//! reads (the server's acknowledgement of each notification, 14 bytes) that
//! and its other per-frame wrapping were about a tenth of a notification's
//! cost (BENCHMARKS.md, issue 17, fourth session).

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::handshake::client::{ClientHandshake, Request};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

/// A TCP stream, or TLS over one.
pub(crate) enum Stream {
    /// Plain `ws://`.
    Plain(TcpStream),
    /// `wss://`, with rustls.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// [`Stream`] as `std::io::Read` and `Write`: polled with the waker of the
/// task that serves the socket, `Pending` reported as `WouldBlock`.
pub(crate) struct SyncIo {
    stream: Stream,
    waker: Waker,
}

impl SyncIo {
    /// Wraps `stream`; no task is woken until [`SyncIo::set_waker`].
    pub(crate) fn new(stream: Stream) -> Self {
        SyncIo {
            stream,
            waker: Waker::noop().clone(),
        }
    }

    /// Polls from now on with `cx`'s waker (cloned only when it is another
    /// task's: the serving task's stays).
    pub(crate) fn set_waker(&mut self, cx: &Context<'_>) {
        if !self.waker.will_wake(cx.waker()) {
            self.waker.clone_from(cx.waker());
        }
    }

    /// Polls `f` on the stream with the stored waker.
    fn poll<R>(
        &mut self,
        f: impl FnOnce(Pin<&mut Stream>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> io::Result<R> {
        let mut cx = Context::from_waker(&self.waker);
        match f(Pin::new(&mut self.stream), &mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Read for SyncIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.poll(|stream, cx| {
            let mut buf = ReadBuf::new(buf);
            stream
                .poll_read(cx, &mut buf)
                .map_ok(|()| buf.filled().len())
        })
    }
}

impl Write for SyncIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|stream, cx| stream.poll_write(cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|stream, cx| stream.poll_flush(cx))
    }
}

/// The client side of the WebSocket upgrade on `stream`, without blocking:
/// each round that would block waits for the stream, with the calling task's
/// waker.
pub(crate) async fn handshake(
    request: Request,
    stream: Stream,
    config: WebSocketConfig,
) -> Result<WebSocket<SyncIo>, tungstenite::Error> {
    let mut start = Some((request, SyncIo::new(stream)));
    let mut middle = None;
    poll_fn(|cx| {
        let round = match start.take() {
            Some((request, mut io)) => {
                io.set_waker(cx);
                match ClientHandshake::start(io, request, Some(config)) {
                    Ok(mid) => mid.handshake(),
                    Err(e) => Err(HandshakeError::Failure(e)),
                }
            }
            None => {
                let mut mid: tungstenite::handshake::MidHandshake<ClientHandshake<SyncIo>> =
                    middle.take().expect("polled again after the end");
                mid.get_mut().get_mut().set_waker(cx);
                mid.handshake()
            }
        };
        match round {
            Ok((ws, _response)) => Poll::Ready(Ok(ws)),
            Err(HandshakeError::Interrupted(mid)) => {
                middle = Some(mid);
                Poll::Pending
            }
            Err(HandshakeError::Failure(e)) => Poll::Ready(Err(e)),
        }
    })
    .await
}
