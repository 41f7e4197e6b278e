#!/usr/bin/env bash
# Runs every test of the project, installing what it needs first.
#
#   bash scripts/test.sh
#
# Steps: formatting, clippy (warnings are errors), the unit, integration and doc
# tests of the whole workspace (the integration tests run the SDK, the echo
# example, the SQLite example and the official Python SDK against the vantiq-sim
# emulator on loopback), vantiq-sim's console in headless chromium (Playwright,
# against the emulator and the echo example built by the step before), rustdoc
# with warnings as errors, the deployment
# manifests against the Kubernetes schemas, and a short run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python environment (official vantiqconnectorsdk for the interoperability test)"
bash scripts/setup-python.sh
export VANTIQ_PY="$PWD/.venv/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace: unit, integration, doc tests)"
cargo test --workspace

step "vantiq-sim console in a real browser (Debian's chromium, playwright-core)"
bash scripts/setup-browser.sh
VANTIQ_SIM_BIN=target/debug/vantiq-sim ECHO_BIN=target/debug/examples/echo \
    node --test vantiq-sim/tests/browser/console.test.mjs

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "Deployment manifests"
bash scripts/validate-deploy.sh

step "Fuzz targets (short run)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

step "All tests passed"
