#!/usr/bin/env bash
# Removes what `sudo make install` put in place: stops and disables the services,
# removes their units, /opt/mcp-orchestrator and the command line tool
# (`sudo make uninstall`).
#
# Kept: the configuration in /etc/mcp-orchestrator/ (a later install uses it again),
# the system user mcp-orchestrator (it owns that configuration's group), and the MCP
# containers, which Docker runs; the command to remove them is printed.
set -euo pipefail
STEP=uninstall
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PREFIX=/opt/mcp-orchestrator
CONF_DIR=/etc/mcp-orchestrator
UNIT_DIR=/usr/local/lib/systemd/system
SYSUSERS_DIR=/usr/local/lib/sysusers.d
BIN_LINK=/usr/local/bin/mcp-orchestrator
MARKER=.mcp-orchestrator-install
UNITS=(mcp-orchestrator-dashboard.service mcp-orchestrator-scheduler.service
    mcp-orchestrator-alb-agent.service mcp-orchestrator-container-agent.service)
TARGET=mcp-orchestrator.target

is_root || die "removing system services needs root: sudo make uninstall"
systemd_running() { [ -d /run/systemd/system ]; }

if command -v systemctl >/dev/null 2>&1; then
    if systemd_running; then
        say "stopping $TARGET and its services"
        systemctl stop "$TARGET" "${UNITS[@]}" 2>/dev/null || true
    fi
    systemctl disable --quiet "$TARGET" 2>/dev/null || true
fi

removed=0
for unit in "$TARGET" "${UNITS[@]}"; do
    if [ -e "$UNIT_DIR/$unit" ]; then
        rm -f "$UNIT_DIR/$unit"
        removed=$((removed + 1))
    fi
done
say "removed $removed unit file(s) from $UNIT_DIR"
if command -v systemctl >/dev/null 2>&1 && systemd_running; then
    systemctl daemon-reload
    systemctl reset-failed "$TARGET" "${UNITS[@]}" 2>/dev/null || true
fi
rm -f "$SYSUSERS_DIR/mcp-orchestrator.conf"

# The runtime directory outlives the services (RuntimeDirectoryPreserve=yes).
rm -rf /run/mcp-orchestrator

if [ -L "$BIN_LINK" ] && [ "$(readlink "$BIN_LINK")" = "$PREFIX/venv/bin/mcp-orchestrator" ]; then
    rm -f "$BIN_LINK"
fi
if [ -f "$PREFIX/$MARKER" ]; then
    rm -rf --one-file-system "$PREFIX"
    say "removed $PREFIX"
elif [ -e "$PREFIX" ]; then
    warn "$PREFIX exists but was not made by make install (no $MARKER): left alone"
else
    say "$PREFIX is not there"
fi

cat <<EOF

Kept: $CONF_DIR/ (settings.conf, mcp.config.json, environment) and the system user
mcp-orchestrator. The MCP containers keep running; to remove them:
  docker rm -f \$(docker ps -aq --filter label=mcp-orchestrator.managed=true)
EOF
