#!/usr/bin/env bash
# Runs Vantiq's own Python test suites, unchanged, against this repository's Python
# package: extpsdk/src/test/python (the official SDK's 12 tests) and
# pythonExecSource/src/test/python/test_PyExecConnector.py (pyExecConnector's 10; the
# live-server file is left out), from a checkout of Vantiq/vantiq-extension-sources.
#
#   bash scripts/outside-suites.sh REPO [WHEEL]
#
# REPO is a clone of that repository (a work tree or a bare git directory: its HEAD is
# read). CI cannot reach GitHub, so this runs by hand. The suites' `import
# vantiqconnectorsdk` is answered by a one-line module forwarding to
# `vantiq_connector_sdk`; nothing of theirs is changed or copied into this repository.
# WHEEL (optional) is the package's wheel to install (default: build from python/).
# `OFFICIAL=1` runs the same suites against the official SDK instead, for comparison.
set -euo pipefail

REPO="${1:?usage: outside-suites.sh REPO [WHEEL]}"
WHEEL="${2:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT

if git -C "${REPO}" rev-parse --is-bare-repository >/dev/null 2>&1; then
    for dir in extpsdk pythonExecSource; do
        git -C "${REPO}" archive HEAD "${dir}" | tar -x -C "${WORK}"
    done
else
    cp -r "${REPO}/extpsdk" "${REPO}/pythonExecSource" "${WORK}/"
fi
rm -f "${WORK}/pythonExecSource/src/test/python/test_PyExecConnectorLive.py"
# extpsdk's pytest.ini puts src/main/python (the official SDK's source) first on the path:
# the SDK under test comes from the venv instead (ours, or the official one from PyPI).
rm -f "${WORK}/extpsdk/src/main/python/vantiqconnectorsdk.py"

python3 -m venv "${WORK}/venv"
PY="${WORK}/venv/bin/python"
# The versions the suites' own requirements.txt files pin.
"${PY}" -m pip install --quiet --disable-pip-version-check \
    pytest==9.0.2 pytest-asyncio==1.3.0 pytest-html==4.2.0 pytest-timeout==2.4.0 \
    aioresponses==0.7.8 codetiming==1.4.0 vantiqsdk==1.4.8 websockets==16.0 jprops==2.0.2 \
    aiohttp==3.13.4
if [ "${OFFICIAL:-0}" = 1 ]; then
    "${PY}" -m pip install --quiet --disable-pip-version-check vantiqconnectorsdk==1.3.7
    FORWARD=""
else
    if [ -z "${WHEEL}" ]; then
        "${PY}" -m pip install --quiet --disable-pip-version-check maturin==1.16.0
        PATH="${WORK}/venv/bin:${PATH}" "${PY}" -m pip install --quiet --disable-pip-version-check \
            --no-build-isolation "${ROOT}/python"
    else
        "${PY}" -m pip install --quiet --disable-pip-version-check "${WHEEL}"
    fi
    mkdir -p "${WORK}/forward"
    echo 'import sys, vantiq_connector_sdk; sys.modules[__name__] = vantiq_connector_sdk' \
        > "${WORK}/forward/vantiqconnectorsdk.py"
    FORWARD="${WORK}/forward"
fi

status=0
cd "${WORK}/extpsdk"
echo "==> extpsdk/src/test/python" >&2
PYTHONPATH="${FORWARD}" "${PY}" -m pytest -q -p no:cacheprovider -o addopts= src/test/python || status=1
cd "${WORK}/pythonExecSource"
echo "==> pythonExecSource/src/test/python (without the live-server file)" >&2
PYTHONPATH="${FORWARD}" "${PY}" -m pytest -q -p no:cacheprovider -o addopts= src/test/python || status=1
exit "${status}"
