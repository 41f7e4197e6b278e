#!/usr/bin/env bash
# The README's path for a new connector, checked as a newcomer would take it: a fresh
# crate made with exactly the README's commands (its `--git` replaced by `--path` to
# this checkout), the README's connector as its src/main.rs, built. Fails if the
# snippet needs anything the commands do not add.
#
#   bash scripts/check-newcomer.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT

# The commands of the README's "Your own connector" block, with --git -> --path.
commands="$(awk '/^## Your own connector/{s=1} s&&/^```sh/{c=1;next} c&&/^```/{exit} c' "${ROOT}/README.md")"
[ -n "${commands}" ] || { echo "no sh block under 'Your own connector' in README.md" >&2; exit 1; }
commands="${commands//--dev vantiq-sim --git https:\/\/github.com\/vantiq-rust\/vantiq-connector-sdk/--dev vantiq-sim --path ${ROOT}/vantiq-sim}"
commands="${commands//--git https:\/\/github.com\/vantiq-rust\/vantiq-connector-sdk/--path ${ROOT}}"
echo "${commands}" | grep -q -- "--git" && { echo "a --git URL was not rewritten" >&2; exit 1; }

cd "${WORK}"
echo "${commands}" | sed 's/^/+ /'
bash -euo pipefail -c "${commands}"
cd my-connector
# The README's connector: the first rust block after the commands.
awk '/^## Your own connector/{s=1} s&&/^```rust/{c=1;next} c&&/^```/{exit} c' "${ROOT}/README.md" > src/main.rs
[ -s src/main.rs ] || { echo "no rust block under 'Your own connector' in README.md" >&2; exit 1; }
# Share the workspace's build cache; the crate itself is new.
CARGO_TARGET_DIR="${ROOT}/target/newcomer" cargo build --quiet
echo "the README's connector builds in a fresh crate"
