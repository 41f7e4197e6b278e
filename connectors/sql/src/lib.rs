//! `vantiq-sql-connector`: a Vantiq connector to PostgreSQL, MySQL/MariaDB and SQLite
//! that replaces Vantiq's Java `jdbcSource` without a change to the source's
//! configuration in Vantiq or to the VAIL that uses it. Answers are streamed from the
//! database, so a result of any size is answered in bounded memory.
//!
//! See `README.md` in this package: configuration, migration from jdbcSource, the
//! types table, errors, deployment, metrics and the numbers.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod db;
pub mod handler;
pub mod metrics;
pub mod values;

pub use config::{ConfigError, SourceConfig};
pub use handler::SqlConnector;
pub use metrics::SqlMetrics;
