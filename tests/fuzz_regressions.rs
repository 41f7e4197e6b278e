//! The fuzz targets' inputs in `cargo test`: every committed seed
//! (`fuzz/seeds/<target>/`) and every minimised crash (`fuzz/regressions/<target>/`)
//! goes through the very checks of the fuzz targets, which live in
//! `fuzz/src/checks.rs` and are included here as they are.
//!
//! The seed directories must exist and hold files: a test with no input to run fails.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; an empty list when `dir` does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every seed and regression of `target`, reporting every input that
/// fails (by file name) rather than only the first.
fn run_target(target: &str, check: fn(&[u8])) {
    let seed_dir = fuzz_dir().join("seeds").join(target);
    let seeds = files_in(&seed_dir);
    assert!(
        !seeds.is_empty(),
        "no seed inputs in {}: the fuzz seeds are missing",
        seed_dir.display()
    );
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));

    let mut failed = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail the fuzz checks (see the panics above): {failed:#?}",
        failed.len(),
        seeds.len() + regressions.len()
    );
}

#[test]
fn decode_server_message_seeds_and_regressions() {
    run_target("decode_server_message", checks::check_decode);
}

#[test]
fn parse_server_config_seeds_and_regressions() {
    run_target("parse_server_config", checks::check_config);
}

/// The seeds reach the deeper checks: some decode (and drive a session), some parse
/// into a configuration (whose invariants and `Debug` output are then checked).
#[test]
fn seeds_reach_the_deep_checks() {
    let seeds = files_in(&fuzz_dir().join("seeds").join("decode_server_message"));
    let decoded = seeds
        .iter()
        .filter(|p| vantiq_connector_sdk::protocol::decode(&std::fs::read(p).unwrap()).is_ok())
        .count();
    assert!(decoded >= 5, "only {decoded} decode seeds decode");

    let seeds = files_in(&fuzz_dir().join("seeds").join("parse_server_config"));
    let parsed = seeds
        .iter()
        .filter(|p| {
            let text = String::from_utf8(std::fs::read(p).unwrap()).unwrap_or_default();
            vantiq_connector_sdk::ServerConfig::from_properties_str(&text, None, None).is_ok()
        })
        .count();
    assert!(parsed >= 5, "only {parsed} config seeds parse");
}

/// A target without seeds fails instead of passing on no input.
#[test]
fn missing_seeds_fail_loudly() {
    let result = catch_unwind(|| run_target("no_such_target", checks::check_decode));
    assert!(result.is_err(), "a target without seeds passed");
}
