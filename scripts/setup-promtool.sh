#!/usr/bin/env bash
# Makes `promtool` (the Prometheus project's tool; `promtool check metrics` lints a
# /metrics exposition) available to the metrics tests, from Debian's `prometheus`
# package: the package is downloaded with apt-get and only its promtool binary is
# extracted into .tools/prometheus/ (nothing is installed system-wide and no Prometheus
# server is started). Idempotent: re-running downloads nothing once it is there.
# Prints the path of promtool on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${ROOT}/.tools/prometheus"
BIN="${DEST}/promtool"

if [ -x "${BIN}" ] && "${BIN}" --version >/dev/null 2>&1; then
    echo "promtool already in ${DEST}" >&2
    echo "${BIN}"
    exit 0
fi
for tool in apt-get dpkg-deb; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
        echo "error: ${tool} not found: promtool comes from Debian's prometheus package" >&2
        exit 1
    fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
cd "${tmp}"
if ! apt-get download prometheus >&2 2>/dev/null; then
    # A fresh machine has no package lists yet.
    apt-get update -qq >&2
    apt-get download prometheus >&2
fi
dpkg-deb -x prometheus_*.deb extracted
mkdir -p "${DEST}"
cp extracted/usr/bin/promtool "${BIN}"
"${BIN}" --version >&2
echo "${BIN}"
