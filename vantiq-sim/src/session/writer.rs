//! The writer task of a session: drains the session's queue in batches, flushing once per
//! batch, and sends each message in the session's frame type.

use super::Ws;
use crate::state::{Out, SessionLink};
use crate::types::FrameType;
use crate::wire;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

/// Frames written per flush at most, so acknowledgements are not held back for long.
const MAX_BATCH: usize = 1024;

/// The writer task: drains the session's queue in batches, then flushes once.
pub(super) async fn write_loop<S>(
    mut sink: SplitSink<Ws<S>, Message>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    link: Arc<SessionLink>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let result: Result<(), tungstenite::Error> = async {
        loop {
            let first = tokio::select! {
                biased;
                out = rx.recv() => match out {
                    Some(out) => Some(out),
                    None => return Ok(()),
                },
                _ = link.ack_wake.notified() => None,
            };
            let mut credit = 0;
            if let Some(out) = first {
                credit += feed(&mut sink, out, &link).await?;
                for _ in 0..MAX_BATCH {
                    match rx.try_recv() {
                        Ok(out) => credit += feed(&mut sink, out, &link).await?,
                        Err(_) => break,
                    }
                }
            }
            let acks = link.acks_pending.swap(0, Ordering::AcqRel);
            for _ in 0..acks {
                sink.feed(framed(wire::ack(), &link)).await?;
            }
            sink.flush().await?;
            if credit > 0 {
                link.credit.add_permits(credit);
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(session = link.id, "write failed: {e}");
        link.kill();
    }
}

/// Feeds one queued item to the sink in the session's frame type (raw frames as they
/// are); returns the publish credit it held.
async fn feed<S>(
    sink: &mut SplitSink<Ws<S>, Message>,
    out: Out,
    link: &SessionLink,
) -> Result<usize, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match out {
        Out::Control(msg) => sink.feed(framed(msg, link)).await.map(|_| 0),
        Out::Data(msg) => sink.feed(framed(msg, link)).await.map(|_| 1),
        Out::Raw(msg) => sink.feed(msg).await.map(|_| 0),
    }
}

/// The emulator's messages are built as text frames; on a binary session the same bytes
/// go out as a binary frame (no copy). The type is read per frame: the reader notes a
/// connector's frame type before queuing anything in answer to that frame, so every
/// answer goes out in the type of the frame it answers.
fn framed(msg: Message, link: &SessionLink) -> Message {
    match msg {
        Message::Text(text) if link.frame_type() == FrameType::Binary => {
            Message::Binary(text.into())
        }
        other => other,
    }
}
