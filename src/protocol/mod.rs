//! The pure protocol layer: the messages of one connection and the state
//! machines that decide what to do with them.
//!
//! - `message`: decoding server frames and encoding the connector's.
//! - `publish`: publishes of the documented shape read the short way, and
//!   the raw decoding.
//! - `raw`: [`raw::RawObject`], a JSON object kept as its text.
//! - `session`: the handshake, `reconnectRequired`, and the open queries.
//! - `delivery`: the flow-control window, notifications in flight,
//!   acknowledgements, the ack timeout and the re-send order.
//! - `keepalive`: the ping schedule and the pong deadline.
//!
//! Nothing here does I/O, reads a clock, or is `async`: the connection task
//! (`connection::serve`) feeds in frames and the time, and carries out the
//! actions that come back. So every rule is tested without a network, and
//! the decoder is fuzzed (see `fuzz/`).
//!
//! The module is hidden from the documentation: it is not part of the stable
//! API, and is public only so that the fuzz targets can reach the decoder.

pub mod delivery;
pub mod keepalive;
pub mod message;
mod publish;
pub mod raw;
pub(crate) mod scratch;
pub mod session;

pub use delivery::Delivery;
pub use keepalive::Keepalive;
pub use message::{decode, DecodeError, ServerMessage};
pub use session::{Action, AnswerError, Auth, Failure, Phase, ReconnectStyle, Session};
