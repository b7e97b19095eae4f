#!/usr/bin/env bash
# Installs the peer bridges `make bench` measures this project against, each in a
# place of its own under .cache/bench (never globally, never into .venv):
#   mcp-proxy (PyPI)  in .cache/bench/mcp-proxy-venv: its release does not import
#                     with mcp 2.x, so the venv pins mcp below 2 beside it;
#   mcp-proxy (npm)   in .cache/bench/node: the TypeScript one, on the MCP SDK 2.x, which
#                     serves 2026-07-28 too; needs Node.js 20 or newer (its tunnel
#                     library asks for 22 but is only loaded, not run, without --tunnel),
#                     so an older Node.js goes without it and the benchmarks say so;
#   supergateway      (npm) in .cache/bench/node: 4.x needs Node.js 20 or newer; an
#                     older Node.js gets the last 3.x release.
# Every version is pinned below.
# Re-runs pip/npm only when the pinned versions (or the interpreters) change.
#
# Environment: PYTHON (default python3) makes the venv.
set -euo pipefail
STEP=bench-tools
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-python3}
BENCH_DIR="$ROOT_DIR/.cache/bench"
MCP_PROXY_VENV="$BENCH_DIR/mcp-proxy-venv"
MCP_PROXY_PINS=("mcp-proxy==0.13.0" "mcp>=1.8,<2")
NODE_PREFIX="$BENCH_DIR/node"
MCP_PROXY_NPM="mcp-proxy@6.7.19"

mkdir -p "$BENCH_DIR"

# Output of a step goes to a log shown only when the step fails.
quiet() {
    local log status=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "$* failed (exit status $status)"
    fi
    rm -f "$log"
}

# --- mcp-proxy (PyPI) ---------------------------------------------------------

ensure_mcp_proxy_pypi() {
    local stamp="$MCP_PROXY_VENV/.bench-installed" want
    if ! "$MCP_PROXY_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$MCP_PROXY_VENV"
        say "creating .cache/bench/mcp-proxy-venv with $("$PYTHON" -V 2>&1)"
        quiet "$PYTHON" -m venv "$MCP_PROXY_VENV"
    fi
    want="${MCP_PROXY_PINS[*]} $("$MCP_PROXY_VENV/bin/python" -V 2>&1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$MCP_PROXY_VENV/bin/mcp-proxy" ]; then
        say "present: ${MCP_PROXY_PINS[*]}"
        return 0
    fi
    say "pip install ${MCP_PROXY_PINS[*]} into .cache/bench/mcp-proxy-venv"
    quiet "$MCP_PROXY_VENV/bin/python" -m pip install --disable-pip-version-check -q "${MCP_PROXY_PINS[@]}"
    # The release must import (a newer mcp breaks it): check before stamping.
    quiet "$MCP_PROXY_VENV/bin/mcp-proxy" --help
    printf '%s' "$want" >"$stamp"
    say "installed: ${MCP_PROXY_PINS[*]}"
}

# --- the npm peers: supergateway and mcp-proxy (npm) -----------------------------

# Both in one prefix, installed by one npm command, so that neither install prunes
# the other.
ensure_node_peers() {
    local stamp="$NODE_PREFIX/.bench-installed" major want bin present=1
    local packages=() bins=(supergateway)
    if ! command -v npm >/dev/null 2>&1; then
        say "installing Node.js and npm from Debian"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
    fi
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$major" -ge 20 ]; then
        packages=("supergateway@4.0.0" "$MCP_PROXY_NPM")
        bins+=(mcp-proxy)
    else
        packages=("supergateway@3.4.3")
        warn "Node.js $(node --version) is older than 20: $MCP_PROXY_NPM is not installed (the benchmarks show it as n/a)"
    fi
    want="${packages[*]} node $(node --version)"
    for bin in "${bins[@]}"; do
        [ -x "$NODE_PREFIX/node_modules/.bin/$bin" ] || present=0
    done
    if [ "$present" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "present: ${packages[*]}"
        return 0
    fi
    mkdir -p "$NODE_PREFIX"
    if [ "$major" -lt 20 ] && [ -d "$NODE_PREFIX/node_modules/mcp-proxy" ]; then
        # Left by an earlier Node.js: it would be measured on one it cannot run on.
        say "npm uninstall mcp-proxy from .cache/bench/node (Node.js $(node --version))"
        quiet npm uninstall --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error mcp-proxy
    fi
    say "npm install ${packages[*]} into .cache/bench/node"
    quiet npm install --prefix "$NODE_PREFIX" --save-exact --no-audit --no-fund --loglevel=error "${packages[@]}"
    for bin in "${bins[@]}"; do
        quiet "$NODE_PREFIX/node_modules/.bin/$bin" --help
    done
    printf '%s' "$want" >"$stamp"
    say "installed: ${packages[*]} ($(node --version))"
}

ensure_mcp_proxy_pypi
ensure_node_peers
