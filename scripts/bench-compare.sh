#!/usr/bin/env bash
# Same-run comparison of builds: the benchmark with the `echo` example of other commits as
# extra columns beside the current worktree's echo, interleaved round by round so that the
# machine's noise hits every build alike (see BENCHMARKS.md, "Comparing builds").
#
#   bash scripts/bench-compare.sh 1527fb7 90ab3a2             # full run, two baselines
#   bash scripts/bench-compare.sh 1527fb7 --quick             # --quick / --skip-python pass through
#   bash scripts/bench-compare.sh 1527fb7 -- --only single    # everything after -- goes to the driver
#   bash scripts/bench-compare.sh --build-only 1527fb7        # only build (and cache) the baselines
#
# Each commit's `examples/echo` is built in release in a temporary git worktree (detached,
# removed afterwards), with CARGO_TARGET_DIR=target/bench-compare/cargo (shared by the
# baselines so their dependencies build once, apart from the worktree's own target/), and
# cached as target/bench-compare/<full sha>/echo. The column of a baseline is named after
# the commit as given (`1527fb7`), shown as `echo@1527fb7`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

commits=()
bench_args=()
build_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; bench_args+=("$@"); break ;;
        --build-only) build_only=1 ;;
        --quick|--skip-python) bench_args+=("$1") ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "bench-compare: unknown option $1 (driver options go after --)" >&2; exit 2 ;;
        *) commits+=("$1") ;;
    esac
    shift
done
if [ "${#commits[@]}" = 0 ]; then
    echo "usage: bash scripts/bench-compare.sh <commit>... [--quick] [-- driver options]" >&2
    exit 2
fi

cache="${ROOT}/target/bench-compare"
mkdir -p "${cache}"
baselines=""
for c in "${commits[@]}"; do
    case "${c}" in
        *[=,]*) echo "bench-compare: a commit name cannot contain '=' or ','" >&2; exit 2 ;;
    esac
    sha="$(git rev-parse --verify --quiet "${c}^{commit}")" \
        || { echo "bench-compare: ${c} is not a commit" >&2; exit 2; }
    bin="${cache}/${sha}/echo"
    if [ ! -x "${bin}" ]; then
        tmp="$(mktemp -d "${TMPDIR:-/tmp}/vantiq-bench-compare.XXXXXX")"
        wt="${tmp}/src"
        echo "building echo at ${c} (${sha:0:12}) in ${wt}..." >&2
        git worktree add --quiet --detach "${wt}" "${sha}"
        # The worktree goes whatever happens to the build.
        cleanup() { git -C "${ROOT}" worktree remove --force "${wt}" 2>/dev/null || true; rm -rf "${tmp}"; }
        trap cleanup EXIT
        (cd "${wt}" && CARGO_TARGET_DIR="${cache}/cargo" cargo build --release --quiet --example echo)
        mkdir -p "${cache}/${sha}"
        cp "${cache}/cargo/release/examples/echo" "${bin}.tmp"
        mv "${bin}.tmp" "${bin}"
        cleanup
        trap - EXIT
    fi
    echo "baseline ${c}: ${bin}" >&2
    baselines="${baselines:+${baselines},}${c}=${bin}"
done

if [ "${build_only}" = 1 ]; then
    exit 0
fi
export BENCH_BASELINE="${baselines}"
exec bash "${ROOT}/scripts/bench.sh" "${bench_args[@]}"
