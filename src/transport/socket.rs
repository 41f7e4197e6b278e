//! A connected WebSocket, served by the one task that owns it: frames
//! written in batches with one flush, frames read without waiting
//! ([`Socket::next_now`]), both through [`SyncIo`] with the serving task's
//! waker.

use std::collections::VecDeque;
use std::task::{ready, Context, Poll};

use tungstenite::WebSocket;

use super::stream::SyncIo;
use super::{Frame, Io, TransportError};

/// A connected socket: hand-shaken with `send` and `recv`, then served with
/// `poll_io`, which reads and writes on the one stream (no split halves and
/// the lock between them: one task owns the socket).
pub(crate) struct Socket {
    ws: WebSocket<SyncIo>,
    /// Whether frames were handed to the library since the last flush.
    unflushed: bool,
    /// The library holds bytes the stream would not take: flush them before
    /// handing it more, so that what it buffers stays bounded.
    blocked: bool,
    /// The stream has ended (closed or failed): every read is `None`.
    ended: bool,
}

/// Whether `e` only says that the stream would block.
fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// A result of the library as a poll: would-block is `Pending`.
fn poll_of<T>(result: Result<T, tungstenite::Error>) -> Poll<Result<T, tungstenite::Error>> {
    match result {
        Err(e) if would_block(&e) => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl Socket {
    pub(super) fn new(ws: WebSocket<SyncIo>) -> Self {
        Socket {
            ws,
            unflushed: false,
            blocked: false,
            ended: false,
        }
    }

    /// Writes one frame and flushes it (the handshake's pace).
    pub(crate) async fn send(&mut self, frame: Frame) -> Result<(), TransportError> {
        let mut queue = VecDeque::from([frame]);
        std::future::poll_fn(|cx| self.poll_write(&mut queue, cx)).await
    }

    /// The next frame; `None` when the peer has closed the stream.
    pub(crate) async fn recv(&mut self) -> Option<Result<Frame, TransportError>> {
        std::future::poll_fn(|cx| {
            self.ws.get_mut().set_waker(cx);
            self.poll_frame()
        })
        .await
    }

    /// Sends a close frame and ends the socket (best effort).
    pub(crate) async fn close(mut self) {
        if self.ended {
            return;
        }
        let mut queued = false;
        let _ = std::future::poll_fn(|cx| {
            self.ws.get_mut().set_waker(cx);
            if !queued {
                queued = true;
                // Queued even when it would block; the flush below writes it.
                if let Err(e) = self.ws.close(None) {
                    if !would_block(&e) {
                        return Poll::Ready(Err(e));
                    }
                }
            }
            poll_of(self.ws.flush())
        })
        .await;
    }

    /// Whether there is anything to write or flush.
    pub(crate) fn has_work(&self, queue: &VecDeque<Frame>) -> bool {
        self.unflushed || !queue.is_empty()
    }

    /// Writes (when there is work, see [`Socket::has_work`]), then reads
    /// (when `read`): writes come first, so that a stream of incoming frames
    /// cannot starve them, and a slow write never stops the reading.
    /// Cancel-safe (see [`Socket::poll_write`]; a frame read is returned in
    /// the poll that reads it).
    pub(crate) fn poll_io(
        &mut self,
        out: &mut impl Outgoing,
        read: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Io> {
        self.ws.get_mut().set_waker(cx);
        if self.has_work(out.queue()) {
            if let Poll::Ready(written) = self.poll_write(out, cx) {
                return Poll::Ready(Io::Written(written));
            }
        }
        if read {
            if let Poll::Ready(frame) = self.poll_frame() {
                return Poll::Ready(Io::Read(frame));
            }
        }
        Poll::Pending
    }

    /// The next frame if one is already read, without waiting (a read that
    /// would wait wakes the task of the last [`Socket::poll_io`]).
    pub(crate) fn next_now(&mut self) -> Option<Option<Result<Frame, TransportError>>> {
        match self.poll_frame() {
            Poll::Ready(frame) => Some(frame),
            Poll::Pending => None,
        }
    }

    /// Writes every queued frame, refilling the queue while `out` has more,
    /// then flushes once: one write to the socket for everything that is
    /// ready (the WebSocket library writes on its own when its buffer fills,
    /// and this waits for the stream whenever it would not take that, so
    /// this stays bounded). Cancel-safe: a frame leaves the queue only in
    /// the same poll in which the library takes it, so dropping this future
    /// between polls loses nothing.
    pub(crate) fn poll_write(
        &mut self,
        out: &mut impl Outgoing,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), TransportError>> {
        self.ws.get_mut().set_waker(cx);
        loop {
            let queue = out.queue();
            while !queue.is_empty() {
                if self.blocked {
                    ready!(poll_of(self.ws.flush()))?;
                    self.blocked = false;
                }
                let frame = queue.pop_front().expect("not empty");
                self.unflushed = true;
                match self.ws.write(frame.into_message()) {
                    Ok(()) => {}
                    // Taken and kept: written by the next flush.
                    Err(e) if would_block(&e) => self.blocked = true,
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
            }
            out.refill();
            if out.queue().is_empty() {
                break;
            }
        }
        if self.unflushed {
            match ready!(poll_of(self.ws.flush())) {
                // The close handshake has ended the stream: nothing to flush.
                Ok(()) | Err(tungstenite::Error::ConnectionClosed) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            self.unflushed = false;
            self.blocked = false;
        }
        Poll::Ready(Ok(()))
    }

    /// The next frame of the stream, skipping what is never read; polled
    /// with the stored waker.
    fn poll_frame(&mut self) -> Poll<Option<Result<Frame, TransportError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            match ready!(poll_of(self.ws.read())) {
                Ok(message) => {
                    if let Some(frame) = Frame::from_message(message) {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Err(e) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }
}

/// What a [`Socket`] writes: a queue of frames, refilled from wherever they
/// come from once it is written.
pub(crate) trait Outgoing {
    /// The frames to write, in order.
    fn queue(&mut self) -> &mut VecDeque<Frame>;
    /// Moves more frames into the queue, if there are any ready to go.
    fn refill(&mut self);
}

impl Outgoing for VecDeque<Frame> {
    fn queue(&mut self) -> &mut VecDeque<Frame> {
        self
    }

    fn refill(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::stream::{self, Stream};
    use tokio::net::TcpStream;
    use tungstenite::client::IntoClientRequest;
    use tungstenite::protocol::WebSocketConfig;
    use tungstenite::Message;

    /// A server on loopback (tokio-tungstenite's) and this transport's client.
    async fn pair() -> (Socket, tokio_tungstenite::WebSocketStream<TcpStream>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio_tungstenite::accept_async(tcp).await.unwrap()
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("ws://{addr}/api/v1/wsock/websocket")
            .into_client_request()
            .unwrap();
        let ws = stream::handshake(request, Stream::Plain(tcp), WebSocketConfig::default())
            .await
            .unwrap();
        (Socket::new(ws), server.await.unwrap())
    }

    #[tokio::test]
    async fn frames_pings_and_close_cross_the_socket() {
        use futures_util::{SinkExt, StreamExt};
        let (mut socket, mut server) = pair().await;
        server
            .send(Message::Ping(b"p".to_vec().into()))
            .await
            .unwrap();
        server
            .send(Message::text("{\"status\":200}"))
            .await
            .unwrap();
        match socket.recv().await {
            Some(Ok(Frame::Text(text))) => assert_eq!(text.as_str(), "{\"status\":200}"),
            other => panic!("{other:?}"),
        }
        // The ping read on the way was answered.
        match server.next().await {
            Some(Ok(Message::Pong(data))) => assert_eq!(&data[..], b"p"),
            other => panic!("{other:?}"),
        }
        socket
            .send(Frame::Text("{\"op\":\"x\"}".into()))
            .await
            .unwrap();
        match server.next().await {
            Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "{\"op\":\"x\"}"),
            other => panic!("{other:?}"),
        }
        socket.close().await;
        assert!(matches!(server.next().await, Some(Ok(Message::Close(_)))));
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_holds_writes_back_and_loses_nothing() {
        use futures_util::StreamExt;
        let (mut socket, mut server) = pair().await;
        // 64 MiB, far more than the two kernels' buffers hold.
        let frames: VecDeque<Frame> = (0..1024)
            .map(|i| Frame::Text(format!("{i:08}{}", "x".repeat(65536)).into()))
            .collect();
        let mut queue = frames;
        let blocked =
            std::future::poll_fn(|cx| Poll::Ready(socket.poll_write(&mut queue, cx).is_pending()))
                .await;
        assert!(blocked, "the writes never waited for the peer");
        assert!(!queue.is_empty(), "everything was taken at once");
        let reader = tokio::spawn(async move {
            for i in 0..1024 {
                match server.next().await {
                    Some(Ok(Message::Text(text))) => {
                        assert_eq!(&text.as_str()[..8], format!("{i:08}"));
                        assert_eq!(text.len(), 8 + 65536);
                    }
                    other => panic!("frame {i}: {other:?}"),
                }
            }
        });
        std::future::poll_fn(|cx| socket.poll_write(&mut queue, cx))
            .await
            .unwrap();
        assert!(queue.is_empty());
        reader.await.unwrap();
    }
}
