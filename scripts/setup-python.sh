#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment of the tests and the benchmark: the
# repository root's .venv, with
#   - the official Vantiq connector SDK (vantiq-sim's interop test, the benchmark),
#   - pytest and maturin,
#   - the Prometheus project's Python client (its strict parsers check the SDK's /metrics),
#   - Vantiq's pyExecConnector (PyPI vantiqpythonexecconnector) with what it imports,
#   - this repository's Python package (python/, `vantiq_connector_sdk`): its
#     distribution wheel, built by scripts/build-python.sh into target/python-dist
#     (cargo rebuilds only what changed) and installed as a user would install it.
# Idempotent: re-running installs only what is missing, and rebuilds the package.
# Set SKIP_PY_PACKAGE=1 to skip building the package.
# Prints the path of the venv's python on its last line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"
SDK_VERSION="1.3.7"
MATURIN_VERSION="1.16.0"
PYTEST_VERSION="9.2.0"
PROMETHEUS_CLIENT_VERSION="0.26.0"
# Vantiq's own connector, run unchanged on this package by python/tests/test_pyexec.py
# (installed without its dependencies, which would pull the official SDK's pin: the
# official SDK is here already; vantiqsdk and codetiming are what it imports).
PYEXEC_VERSION="1.3.4"
VANTIQSDK_VERSION="1.4.8"
CODETIMING_VERSION="1.4.0"
# The example connector's tests (python/examples) and the package's lint and type checks.
PYTEST_ASYNCIO_VERSION="1.3.0"
RUFF_VERSION="0.17.6"
MYPY_VERSION="2.4.1"
# The release workflow's checks (.github/workflows): its schema, and zizmor. (actionlint
# from PyPI downloads its binary from GitHub when installed, which is not reachable here.)
CHECK_JSONSCHEMA_VERSION="0.39.0"
ZIZMOR_VERSION="1.33.1"

PYTHON="${PYTHON:-python3}"
if ! command -v "${PYTHON}" >/dev/null 2>&1; then
    echo "error: ${PYTHON} not found; install Python 3.10 or newer" >&2
    exit 1
fi

if [ ! -x "${VENV}/bin/python" ]; then
    echo "creating virtual environment in ${VENV}" >&2
    "${PYTHON}" -m venv "${VENV}"
fi

# Installs NAME==VERSION unless that version is there already.
want() {
    if "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1') == '$2' else 1)" >/dev/null 2>&1; then
        echo "$1 $2 already installed" >&2
    else
        "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "$1==$2" >&2
    fi
}

want vantiqconnectorsdk "${SDK_VERSION}"
want maturin "${MATURIN_VERSION}"
want pytest "${PYTEST_VERSION}"
want prometheus-client "${PROMETHEUS_CLIENT_VERSION}"
want vantiqsdk "${VANTIQSDK_VERSION}"
want codetiming "${CODETIMING_VERSION}"
want pytest-asyncio "${PYTEST_ASYNCIO_VERSION}"
want ruff "${RUFF_VERSION}"
want mypy "${MYPY_VERSION}"
want check-jsonschema "${CHECK_JSONSCHEMA_VERSION}"
want zizmor "${ZIZMOR_VERSION}"
if ! "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('vantiqpythonexecconnector') == '${PYEXEC_VERSION}' else 1)" >/dev/null 2>&1; then
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        "vantiqpythonexecconnector==${PYEXEC_VERSION}" >&2
fi

if [ "${SKIP_PY_PACKAGE:-0}" != 1 ]; then
    echo "building the vantiq_connector_sdk wheels (python/) and installing the one pip picks" >&2
    bash "${ROOT}/scripts/build-python.sh" "${ROOT}/target/python-dist" >/dev/null
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
        --no-index --find-links "${ROOT}/target/python-dist" vantiq-connector-sdk >&2
fi

echo "${VENV}/bin/python"
