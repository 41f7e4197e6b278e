//! The I/O layer under each WebSocket session, able to go silent.
//!
//! A half-open link (a peer that vanished without closing, a dead NAT entry) looks to a
//! connector like a server that neither answers nor reads. To emulate it the session must
//! stop answering pings, yet the WebSocket library answers pings as part of reading. So the
//! silence is made below the library: once silent, whatever arrives is swallowed unread
//! (the library never sees a ping, so never answers one) and whatever the library writes
//! is dropped. The socket stays open, and when the connector finally gives up and closes
//! it, the end of stream still comes through, so the session ends and is forgotten.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Wraps a stream; while `silent` is set, input is discarded and output is dropped.
pub(crate) struct SilenceableIo<T> {
    inner: T,
    silent: Arc<AtomicBool>,
}

impl<T> SilenceableIo<T> {
    /// Wraps `inner`, going silent whenever `silent` is set.
    pub(crate) fn new(inner: T, silent: Arc<AtomicBool>) -> Self {
        Self { inner, silent }
    }

    fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SilenceableIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.is_silent() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        // Swallow everything available; report only the end of stream (or an error).
        let mut scratch = [0u8; 2048];
        loop {
            let mut sink = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut sink) {
                Poll::Ready(Ok(())) if sink.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                other => return other,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SilenceableIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_silent() {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_silent() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.is_silent() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn silent_io_swallows_input_and_drops_output_until_eof() {
        let (a, mut b) = tokio::io::duplex(64);
        let silent = Arc::new(AtomicBool::new(false));
        let mut io = SilenceableIo::new(a, silent.clone());

        b.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        silent.store(true, Ordering::Relaxed);
        io.write_all(b"dropped").await.unwrap();
        b.write_all(b"swallowed").await.unwrap();
        drop(b);
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "silent input must not come through");
    }
}
