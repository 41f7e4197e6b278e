#!/usr/bin/env bash
# The benchmark (issue 5): the Rust SDK's echo example, the same echo on the official Python
# SDK and on this repository's Python package (python/), and a bare WebSocket floor client,
# driven with the same workload from the driver's process (one source: its lean load server
# on vantiq-sim's wire format; many sources: vantiq-sim emulators), beside the driver's own
# ceiling (a trivial client). Not part of the test suite.
#
#   bash scripts/bench.sh            # full run (about 10 minutes)
#   bash scripts/bench.sh --quick    # smaller run (about 3 minutes)
#   bash scripts/bench.sh --help     # the driver's options (--rounds, --skip-python, --only, --sizes,
#                                    # --figures, --baseline NAME=PATH)
#   bash scripts/bench-compare.sh <commit>...   # other builds' echo as extra columns, same run
#
# Builds everything in release, installs the Python SDK and builds python/ into .venv
# (scripts/setup-python.sh), raises the open-files limit for the 10,000-source figures, and
# runs the driver, which prints the table and writes bench/results/latest.json and
# bench/results/chart.svg.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

skip_python=0
for arg in "$@"; do
    if [ "${arg}" = "--skip-python" ]; then skip_python=1; fi
done

echo "building (release)..." >&2
cargo build --release --quiet --example echo
cargo build --release --quiet -p vantiq-bench --bins

if [ "${skip_python}" = 0 ]; then
    bash scripts/setup-python.sh >/dev/null
fi

# 10,000 sources need about 10,000 sockets in the emulator and as many in the connector.
want=65536
if ! ulimit -n "${want}" 2>/dev/null; then
    hard="$(ulimit -Hn)"
    if [ "${hard}" != "unlimited" ] && ! ulimit -n "${hard}" 2>/dev/null; then
        echo "warning: could not raise the open-files limit (soft $(ulimit -n))" >&2
    fi
fi
echo "open-files limit: $(ulimit -n)" >&2

exec "${ROOT}/target/release/vantiq-bench" "$@"
