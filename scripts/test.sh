#!/usr/bin/env bash
# Runs every test of the project, installing what it needs first.
#
#   bash scripts/test.sh
#
# Steps: formatting, clippy (warnings are errors), the unit, integration and doc
# tests of the whole workspace (the integration tests run the SDK, the echo
# example, the SQLite example and the official Python SDK against the vantiq-sim
# emulator on loopback, the proxy tests through Debian's tinyproxy; the metrics
# tests parse /metrics with the Prometheus Python client and promtool), the Python
# package's pytest suite (python/tests, against the in-process emulator), vantiq-sim's
# console in headless chromium (Playwright), rustdoc
# with warnings as errors, the deployment manifests against the Kubernetes
# schemas, and a short run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Python environment (official vantiqconnectorsdk, pytest, and python/ built into .venv)"
bash scripts/setup-python.sh
export VANTIQ_PY="$PWD/.venv/bin/python"

step "Debian packages for the tests (tinyproxy: the real proxy of tests/proxy.rs)"
# The binary alone (tinyproxy-bin): the tests start it on their own port and
# configuration; no service is installed.
if ! command -v tinyproxy >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy-bin
fi

step "Debian packages for the SQL connector's tests (PostgreSQL and MariaDB servers)"
# The server binaries only: connectors/sql's tests start their own instances (a
# temporary directory, loopback, a free port). Nothing is started by the packages
# (policy-rc.d) and PostgreSQL makes no cluster of its own.
sql_packages=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || sql_packages+=(postgresql)
[ -x /usr/sbin/mariadbd ] || sql_packages+=(mariadb-server)
if [ "${#sql_packages[@]}" -gt 0 ]; then
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${sql_packages[@]}"
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

step "promtool (from Debian's prometheus package) for the metrics tests"
PROMTOOL="$(bash scripts/setup-promtool.sh)"
export PROMTOOL

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy (the SDK without its default \`metrics\` feature)"
cargo clippy -p vantiq-connector-sdk --lib --no-default-features -- -D warnings

step "cargo test (workspace: unit, integration, doc tests)"
cargo test --workspace

# The suite runs against the wheel setup-python.sh installed into the venv (the
# conftest checks it is not the source tree), with no Rust toolchain on PATH.
NO_RUST_PATH="$(dirname "${VANTIQ_PY}"):$(printf '%s' "${PATH}" | tr ':' '\n' \
    | grep -v -e '/\.cargo/' -e '/\.rustup/' | paste -sd: -)"

step "Python package tests (pytest, python/tests) against the installed wheel, no Rust on PATH"
PATH="${NO_RUST_PATH}" VANTIQ_EXPECT_INSTALLED=1 "${VANTIQ_PY}" -m pytest -q -p no:cacheprovider python/tests

step "Python package tests on the manylinux2014 wheel (a fresh venv), the loop woken by a thread"
# The wheel every glibc Linux installs (setup-python.sh installed the manylinux_2_28 one,
# which pip prefers here), in a venv of its own; with the loop woken through a thread,
# the path taken where asyncio has no add_reader (Windows' Proactor loop).
VENV2014="$(mktemp -d)/venv"
python3 -m venv "${VENV2014}"
"${VENV2014}/bin/python" -m pip install --quiet --disable-pip-version-check \
    target/python-dist/vantiq_connector_sdk-*manylinux_2_17_x86_64*.whl \
    pytest==9.2.0 vantiqconnectorsdk==1.3.7 prometheus-client==0.26.0 vantiqsdk==1.4.8 codetiming==1.4.0
"${VENV2014}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    vantiqpythonexecconnector==1.3.4
PATH="${NO_RUST_PATH}" VANTIQ_EXPECT_INSTALLED=1 VANTIQ_CONNECTOR_WAKE=thread \
    "${VENV2014}/bin/python" -m pytest -q -p no:cacheprovider python/tests
rm -rf "$(dirname "${VENV2014}")"

step "The Python example connector's own tests (the package's pytest plugin, pytest-asyncio)"
(cd python/examples && PATH="${NO_RUST_PATH}" "${VANTIQ_PY}" -m pytest -q -p no:cacheprovider .)

step "The Python release workflow: GitHub's workflow schema, zizmor"
"$(dirname "${VANTIQ_PY}")/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$(dirname "${VANTIQ_PY}")/zizmor" --offline --config .github/zizmor.yml .github/workflows

step "Python: ruff, mypy --strict on the example connector"
"${VANTIQ_PY}" -m ruff check python
"${VANTIQ_PY}" -m mypy --strict python/examples/echo_connector.py

step "vantiq-sim console in a real browser (Debian's chromium, playwright-core)"
bash scripts/setup-browser.sh
VANTIQ_SIM_BIN=target/debug/vantiq-sim ECHO_BIN=target/debug/examples/echo \
    node --test vantiq-sim/tests/browser/console.test.mjs

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "The README's connector in a fresh crate made with the README's commands"
bash scripts/check-newcomer.sh

step "cargo publish --dry-run (the SDK and the emulator stay publishable)"
cargo publish --dry-run --allow-dirty -p vantiq-connector-sdk
cargo publish --dry-run --allow-dirty -p vantiq-sim

step "Deployment manifests"
bash scripts/validate-deploy.sh

step "Fuzz targets (short run)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

step "All tests passed"
