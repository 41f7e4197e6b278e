#!/usr/bin/env bash
# Fuzzes the SDK's pure entry points with cargo-fuzz (libFuzzer). See fuzz/README.md.
#
# Usage: scripts/fuzz.sh [seconds-per-target]     (default 10)
#
# Runs every target for the given time, one after the other, with one job. Exits
# non-zero when a target crashes (the input is saved under fuzz/artifacts/<target>/).
# Works on the stable toolchain. Environment:
#   FUZZ_SANITIZER  none (default) or address; the SDK has no unsafe code, and
#                   `none` runs about 5x faster than AddressSanitizer.
#   FUZZ_ARGS       extra libFuzzer arguments, e.g. "-runs=10000000" or "-jobs=2".
set -euo pipefail

seconds="${1:-10}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [seconds-per-target]   (a positive whole number, default 10)" >&2
    exit 2
fi
sanitizer="${FUZZ_SANITIZER:-none}"
targets=(decode_server_message parse_server_config)

cd "$(dirname "$0")/.."

# cargo-fuzz passes nightly-only flags (-Z..., -Cpasses=sancov-module) to rustc; the
# stable compiler accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== building the fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    # The committed seeds and regressions start (or join) the working corpus.
    for dir in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
        if [ -d "$dir" ]; then
            cp -f "$dir"/* "$corpus"/
        fi
    done
    echo "== fuzzing $target for ${seconds}s"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of arguments
    if ! cargo fuzz run -s "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 ${FUZZ_ARGS:-}; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "== CRASH in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    echo "   minimise with: RUSTC_BOOTSTRAP=1 cargo fuzz tmin -s $sanitizer <target> <input>" >&2
    echo "   then save it as fuzz/regressions/<target>/<name> so cargo test runs it" >&2
    exit 1
fi
echo "== no crash in ${targets[*]}"
