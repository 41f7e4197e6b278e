#!/usr/bin/env bash
# Builds the Python package for distribution into DIR:
#   - the abi3 wheel for CPython >= 3.10, tagged manylinux2014 (manylinux_2_17) x86_64,
#     stripped; linked with zig (PyPI `ziglang`) against glibc 2.17, so it installs on
#     every glibc Linux of the last decade; `auditwheel show` must agree with its tag;
#   - the same wheel against glibc 2.28 (manylinux_2_28), which pip prefers wherever
#     glibc is 2.28 or newer: linked against 2.17 the extension measured 0.85-0.9x in the
#     benchmark's query figure (BENCHMARKS.md, "The Python package");
#   - the sdist (builds with maturin, given a Rust toolchain).
#
#   bash scripts/build-python.sh DIR
#
# Uses the repository's .venv (scripts/setup-python.sh makes it) for maturin, ziglang
# and auditwheel. Prints the manylinux2014 wheel's path on its last line.
set -euo pipefail

OUT="${1:?usage: build-python.sh DIR}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"
MATURIN_VERSION="1.16.0"
ZIG_VERSION="0.17.1"
AUDITWHEEL_VERSION="6.8.2"
TARGET="x86_64-unknown-linux-gnu"

[ -x "${VENV}/bin/python" ] || python3 -m venv "${VENV}"
want() {
    "${VENV}/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1') == '$2' else 1)" \
        >/dev/null 2>&1 || "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "$1==$2" >&2
}
want maturin "${MATURIN_VERSION}"
want ziglang "${ZIG_VERSION}"
want auditwheel "${AUDITWHEEL_VERSION}"

mkdir -p "${OUT}"
rm -f "${OUT}"/vantiq_connector_sdk-*.whl "${OUT}"/vantiq_connector_sdk-*.tar.gz
# The license file a wheel carries (python/LICENSE.txt is the repository's LICENSE).
cmp -s "${ROOT}/LICENSE" "${ROOT}/python/LICENSE.txt" || {
    echo "error: python/LICENSE.txt differs from LICENSE" >&2
    exit 1
}
export PATH="${VENV}/bin:${PATH}"
for compat in manylinux2014 manylinux_2_28; do
    maturin build --release --strip --zig --compatibility "${compat}" --target "${TARGET}" \
        -m "${ROOT}/python/Cargo.toml" -o "${OUT}" >&2
done
maturin sdist -m "${ROOT}/python/Cargo.toml" -o "${OUT}" >&2

# Each wheel's tag confirmed by auditwheel.
for tag in manylinux_2_17_x86_64 manylinux_2_28_x86_64; do
    WHEEL="$(ls "${OUT}"/vantiq_connector_sdk-*-cp310-abi3-*"${tag}"*.whl)"
    SHOW="$(auditwheel show "${WHEEL}")"
    if ! grep -q "\"${tag}\"" <<<"${SHOW}"; then
        echo "error: auditwheel does not confirm ${tag}:" >&2
        echo "${SHOW}" >&2
        exit 1
    fi
    echo "auditwheel: ${WHEEL##*/} consistent with ${tag}; $(du -k "${WHEEL}" | cut -f1) KiB" >&2
done
# The manylinux2014 wheel's path last (the one every glibc Linux installs).
ls "${OUT}"/vantiq_connector_sdk-*-cp310-abi3-*manylinux_2_17_x86_64*.whl
