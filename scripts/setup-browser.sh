#!/usr/bin/env bash
# Installs what vantiq-sim's console tests need (idempotent): Debian's chromium, and
# playwright-core from npm (no browser download: the tests point it at /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >&2
fi

cd vantiq-sim/tests/browser
if [ ! -d node_modules/playwright-core ]; then
    # playwright-core never downloads a browser; the variable only makes that explicit.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2
fi
