//! The pure protocol layer: message types and the per-connection state
//! machine. Nothing here does I/O, so all of it is tested without a network
//! (and fuzzed: see `fuzz/`).
//!
//! It is public so that tools (the fuzz targets, emulators, tests) can use the
//! same decoder as the SDK; connector code rarely needs it.

pub mod message;
pub mod session;

pub use message::{decode, DecodeError, ServerMessage};
pub use session::{Action, AnswerError, Failure, Phase, ReconnectStyle, Session};
