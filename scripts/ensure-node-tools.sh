#!/usr/bin/env bash
# Installs the Node.js tools the tests use as real, independent MCP clients into
# .cache/node (never globally): the MCP Inspector CLI. Node.js and npm come from
# Debian when missing. Re-runs npm only when the pinned versions change.
set -euo pipefail
STEP=node-tools
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# 0.15.0 is the last Inspector release that runs on Node.js below 22 (Debian's is 18,
# some machines have 20); newer releases refuse to start there.
PACKAGES=("@modelcontextprotocol/inspector@0.15.0")
PREFIX="$ROOT_DIR/.cache/node"
STAMP="$PREFIX/.installed"

if ! command -v npm >/dev/null 2>&1; then
    say "installing Node.js and npm from Debian"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi

want="${PACKAGES[*]} node $(node --version 2>/dev/null || echo none)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$PREFIX/node_modules/.bin/mcp-inspector" ]; then
    say "present: ${PACKAGES[*]}"
    exit 0
fi
mkdir -p "$PREFIX"
say "npm install ${PACKAGES[*]} into .cache/node"
log=$(mktemp)
if ! npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "npm install failed (output above)"
fi
rm -f "$log"
printf '%s' "$want" >"$STAMP"
say "installed: ${PACKAGES[*]}"
