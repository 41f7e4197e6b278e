//! The SQLite connector: each source is an SQLite database. `PUBLISH {...} TO
//! SOURCE db` inserts a row; `SELECT * FROM SOURCE db WITH sql: "...", params: [..]`
//! runs a parameterised read-only statement and streams the rows back in chunks.
//! See docs/sqlite-connector.md; the binary is `src/main.rs`.

#![deny(missing_docs)]

pub mod handler;
pub mod metrics;
mod sql;

pub use handler::SqliteConnector;
pub use metrics::SqliteMetrics;
