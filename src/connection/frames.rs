//! Notification frames, cut from one buffer per source.
//!
//! A notification's frame lives from its sending until the server
//! acknowledges it (the flow-control window keeps up to 1,024 of them, the
//! outbox up to `buffer_capacity` while a server is slow), and frames are
//! freed in the order they were made. Allocated one by one, long-lived
//! frames of about a hundred bytes missed the allocator's per-thread cache
//! and took its slow path twice each (the frame, and the shared header a
//! `Bytes` gets when the copy kept for re-sending is taken), and freeing them
//! at their acknowledgement touched memory long gone from the cache. Cut from
//! a buffer of [`CHUNK`] bytes instead, consecutive frames share one
//! allocation and one reference count: taking the copy for re-sending and
//! dropping a frame only count, and a chunk is freed when its last frame
//! is.
//!
//! Frames of one source only: a frame kept long (a slow server's) holds its
//! chunk, so sharing chunks with other sources could keep theirs alive too.
//! When nothing of the source is buffered or in flight, the connection task
//! lets go of the partly used chunk ([`Frames::release`]), so a source that
//! has gone quiet holds no chunk.

use std::sync::{Mutex, MutexGuard, TryLockError};

use bytes::BytesMut;
use serde::Serialize;

use crate::error::NotifyError;
use crate::protocol::message::NotificationEnvelope;
use crate::transport::OwnText;

/// The size of a chunk (a frame larger than that gets a chunk of its size).
pub(crate) const CHUNK: usize = 4096;

/// The room a serialised frame starts in; one that outgrows it grows the
/// chunk as it is written.
const ROOM: usize = 256;

/// Makes the notification frames of one source.
#[derive(Debug)]
pub(crate) struct Frames {
    envelope: NotificationEnvelope,
    chunk: Mutex<BytesMut>,
}

impl Frames {
    /// The frames of `source`.
    pub(crate) fn new(source: &str) -> Self {
        Frames {
            envelope: NotificationEnvelope::new(source),
            chunk: Mutex::new(BytesMut::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BytesMut> {
        // Every update is completed before the guard is dropped (a panic in
        // between leaves at worst bytes nobody refers to).
        self.chunk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The frame of `object`, serialised (it must be a JSON object).
    ///
    /// # Errors
    ///
    /// [`NotifyError::NotAnObject`] or [`NotifyError::Serialize`].
    ///
    /// Serialised straight into the chunk, no copy in between. When the
    /// chunk is in use (another producer of the source, or a `Serialize`
    /// that itself sends a notification of this source) the frame is made
    /// on its own instead of waiting: serialising runs the caller's code,
    /// which must not wait for a lock the same code may hold.
    pub(crate) fn encode<T: Serialize + ?Sized>(&self, object: &T) -> Result<OwnText, NotifyError> {
        let mut chunk = match self.chunk.try_lock() {
            Ok(chunk) => chunk,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return self.envelope.encode(object).map(OwnText::from)
            }
        };
        if chunk.capacity() - chunk.len() < ROOM {
            chunk.reserve(CHUNK);
        }
        self.envelope.encode_into(object, &mut chunk)?;
        // The envelope and serde_json write strs only.
        Ok(OwnText::from_strs(chunk.split().freeze()))
    }

    /// The frame of an object already serialised (and checked).
    pub(crate) fn wrap(&self, object_json: &str) -> OwnText {
        let len = self.envelope.frame_len(object_json);
        let bytes = {
            let mut chunk = self.lock();
            if chunk.capacity() - chunk.len() < len {
                // Reuses the chunk when every frame cut from it is gone,
                // otherwise allocates another.
                chunk.reserve(len.max(CHUNK));
            }
            self.envelope.write_frame(object_json, &mut chunk);
            chunk.split().freeze()
        };
        // The envelope and serde_json write strs only.
        OwnText::from_strs(bytes)
    }

    /// Nothing of the source is buffered or in flight: lets go of the
    /// chunk (freed, unless a frame cut from it is still alive somewhere).
    pub(crate) fn release(&self) {
        let mut chunk = self.lock();
        if chunk.capacity() > 0 {
            *chunk = BytesMut::new();
        }
    }

    /// Whether a chunk is held (for tests).
    #[cfg(test)]
    fn holds_chunk(&self) -> bool {
        self.lock().capacity() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_are_the_envelopes_and_share_a_chunk() {
        let frames = Frames::new("src");
        let envelope = NotificationEnvelope::new("src");
        let a = frames.encode(&json!({"a": 1})).unwrap();
        let b = frames.wrap(r#"{"b":2.50}"#);
        assert_eq!(a.as_str(), envelope.encode(&json!({"a": 1})).unwrap());
        assert_eq!(b.as_str(), envelope.wrap(r#"{"b":2.50}"#));
        // Cut one after the other from the same chunk.
        let (pa, pb) = (a.as_str().as_ptr() as usize, b.as_str().as_ptr() as usize);
        assert_eq!(pa + a.len(), pb);
    }

    #[test]
    fn a_frame_larger_than_a_chunk_and_many_frames() {
        let frames = Frames::new("src");
        let big = "x".repeat(3 * CHUNK);
        let frame = frames.encode(&json!({ "big": big })).unwrap();
        assert!(frame.as_str().ends_with(&format!(r#""{big}"}}}}"#)));
        let kept: Vec<_> = (0..10_000)
            .map(|i| frames.encode(&json!({ "i": i })).unwrap())
            .collect();
        for (i, frame) in kept.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
            assert_eq!(v["object"]["i"], i);
        }
    }

    #[test]
    fn not_an_object_is_refused_and_leaves_nothing_behind() {
        let frames = Frames::new("src");
        assert!(matches!(
            frames.encode(&json!([1, 2])),
            Err(NotifyError::NotAnObject("list"))
        ));
        let next = frames.encode(&json!({})).unwrap();
        assert_eq!(next.as_str(), NotificationEnvelope::new("src").wrap("{}"));
    }

    #[test]
    fn a_serialize_that_sends_a_notification_itself_does_not_wait_for_itself() {
        struct SendsToo<'a>(&'a Frames, std::cell::RefCell<Option<OwnText>>);
        impl Serialize for SendsToo<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // The chunk is in use by the outer frame right now.
                let inner = self.0.encode(&json!({"inner": 1})).unwrap();
                *self.1.borrow_mut() = Some(inner);
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("outer", &2)?;
                map.end()
            }
        }
        let frames = Frames::new("src");
        let envelope = NotificationEnvelope::new("src");
        let object = SendsToo(&frames, Default::default());
        let outer = frames.encode(&object).unwrap();
        let inner = object.1.borrow_mut().take().unwrap();
        assert_eq!(outer.as_str(), envelope.wrap(r#"{"outer":2}"#));
        assert_eq!(inner.as_str(), envelope.wrap(r#"{"inner":1}"#));
        // A serialiser's error leaves nothing behind either.
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(matches!(
            frames.encode(&Fails),
            Err(NotifyError::Serialize(_))
        ));
        let next = frames.encode(&json!({"n": 3})).unwrap();
        assert_eq!(next.as_str(), envelope.wrap(r#"{"n":3}"#));
    }

    #[test]
    fn release_lets_go_of_the_chunk_and_frames_outlive_it() {
        let frames = Frames::new("src");
        let kept = frames.encode(&json!({"kept": true})).unwrap();
        assert!(frames.holds_chunk());
        frames.release();
        assert!(!frames.holds_chunk());
        assert!(kept.as_str().contains(r#""kept":true"#));
        let after = frames.encode(&json!({"after": true})).unwrap();
        assert!(after.as_str().contains(r#""after":true"#));
    }

    /// Against the emulator: once every notification is acknowledged the
    /// source holds no chunk (the frames of a quiet source cost nothing).
    #[tokio::test]
    async fn an_acknowledged_source_holds_no_chunk() {
        let sim = vantiq_sim::Sim::builder()
            .token("t")
            .source("s", json!({}))
            .start()
            .await
            .unwrap();
        let config = crate::ServerConfig::builder(sim.http_url())
            .token("t")
            .sources(["s"])
            .tcp_probe_port(0)
            .build()
            .unwrap();
        let set = crate::ConnectorSet::builder(config).build().unwrap();
        let running = {
            let set = set.clone();
            tokio::spawn(async move { set.run().await })
        };
        let conn = set.connection("s").unwrap();
        for round in 0..3 {
            for i in 0..2_000 {
                conn.send_notification(&json!({ "round": round, "i": i }))
                    .await
                    .unwrap();
            }
            conn.flush().await;
            assert!(!conn.shared.frames.holds_chunk(), "round {round}");
        }
        assert_eq!(conn.stats().acknowledged, 6_000);
        set.close().await;
        running.await.unwrap().unwrap();
    }
}
