//! Parsing of `server.config` (Java properties) into a `ServerConfig`.
//! The checks are in `src/checks.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vantiq_connector_sdk_fuzz::check_config(data);
});
