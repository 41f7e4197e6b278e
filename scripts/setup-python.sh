#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment used by vantiq-sim's Python interop
# test and the metrics tests: the repository root's .venv with the official Vantiq connector
# SDK and the Prometheus Python client installed. Idempotent: re-running only installs what is missing.
# Prints the path of the venv's python on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"
SDK_VERSION="1.3.7"
# The Prometheus project's Python client: its strict parsers check the SDK's /metrics (tests/metrics.rs).
PROMETHEUS_CLIENT_VERSION="0.26.0"

PYTHON="${PYTHON:-python3}"
if ! command -v "${PYTHON}" >/dev/null 2>&1; then
    echo "error: ${PYTHON} not found; install Python 3.10 or newer" >&2
    exit 1
fi

if [ ! -x "${VENV}/bin/python" ]; then
    echo "creating virtual environment in ${VENV}" >&2
    "${PYTHON}" -m venv "${VENV}"
fi

if "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('vantiqconnectorsdk') == '${SDK_VERSION}' else 1)" >/dev/null 2>&1; then
    echo "vantiqconnectorsdk ${SDK_VERSION} already installed" >&2
else
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "vantiqconnectorsdk==${SDK_VERSION}" >&2
fi

if "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('prometheus-client') == '${PROMETHEUS_CLIENT_VERSION}' else 1)" >/dev/null 2>&1; then
    echo "prometheus-client ${PROMETHEUS_CLIENT_VERSION} already installed" >&2
else
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "prometheus-client==${PROMETHEUS_CLIENT_VERSION}" >&2
fi

echo "${VENV}/bin/python"
