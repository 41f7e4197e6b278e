//! The checks shared by the fuzz targets (and, through `#[path]`, by
//! `tests/fuzz_regressions.rs` of the SDK). See `README.md`.

#[path = "checks.rs"]
mod checks;

pub use checks::{check_config, check_config_text, check_decode};
