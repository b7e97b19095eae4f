#!/usr/bin/env bash
# Installs the orchestrator as four systemd services under mcp-orchestrator.target
# (`sudo make install`). Run it again to upgrade in place.
#
#   /opt/mcp-orchestrator/src    a copy of the project (README, images, examples, units)
#   /opt/mcp-orchestrator/venv   a virtual environment with the dependencies and the project
#   /etc/mcp-orchestrator/       settings.conf, mcp.config.json, environment (never overwritten)
#   /usr/local/lib/systemd/system/mcp-orchestrator{.target,-*.service}
#   /usr/local/lib/sysusers.d/mcp-orchestrator.conf   the system user mcp-orchestrator
#   /usr/local/bin/mcp-orchestrator                   the command line tool
#
# The target is enabled (started at boot) but not started: check the configuration
# first. On an upgrade the services that are running are restarted on the new code.
#
# Offline: pip reads its usual environment, so a wheelhouse works as
#   sudo PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels make install
# (the wheels of requirements.txt plus setuptools>=68 and wheel, to build the project).
#
# Environment: PYTHON (default python3) makes the virtual environment.
set -euo pipefail
STEP=install
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PREFIX=/opt/mcp-orchestrator
CONF_DIR=/etc/mcp-orchestrator
UNIT_DIR=/usr/local/lib/systemd/system
SYSUSERS_DIR=/usr/local/lib/sysusers.d
BIN_LINK=/usr/local/bin/mcp-orchestrator
USER_NAME=mcp-orchestrator
# Marks a directory as ours, so uninstall never removes anything else.
MARKER=.mcp-orchestrator-install
UNITS=(mcp-orchestrator-container-agent.service mcp-orchestrator-alb-agent.service
    mcp-orchestrator-scheduler.service mcp-orchestrator-dashboard.service)
TARGET=mcp-orchestrator.target
PYTHON=${PYTHON:-python3}

is_root || die "installing system services needs root: sudo make install"
if [ ! -f "$ROOT_DIR/pyproject.toml" ] || [ ! -d "$ROOT_DIR/systemd" ]; then
    die "$ROOT_DIR does not look like the project (no pyproject.toml or systemd/)"
fi
command -v systemctl >/dev/null 2>&1 || die "no systemctl: this installer needs systemd"
# systemd running as init: units can be reloaded and restarted now (else files only,
# e.g. while building an image).
systemd_running() { [ -d /run/systemd/system ]; }

upgrade=0
[ -f "$PREFIX/$MARKER" ] && upgrade=1

# --- Python ----------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON on PATH: apt-get install python3"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null ||
    die "$PYTHON is $("$PYTHON" -V 2>&1); Python 3.9 or newer is needed (set PYTHON=...)"
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 ||
    die "$PYTHON cannot make virtual environments: apt-get install python3-venv"

# --- the system user ---------------------------------------------------------------
install -d -m 0755 "$SYSUSERS_DIR"
install -m 0644 "$ROOT_DIR/systemd/mcp-orchestrator.sysusers.conf" \
    "$SYSUSERS_DIR/mcp-orchestrator.conf"
if ! getent passwd "$USER_NAME" >/dev/null; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "$SYSUSERS_DIR/mcp-orchestrator.conf"
    else
        useradd --system --user-group --no-create-home --home-dir / \
            --shell /usr/sbin/nologin --comment "MCP Docker Orchestrator" "$USER_NAME"
    fi
    getent passwd "$USER_NAME" >/dev/null || die "could not create the system user $USER_NAME"
    say "created the system user $USER_NAME"
fi

# The container-agent runs with the supplementary group docker (its unit says so) and
# cannot start without that group. Docker's packages create it; when Docker is not
# installed yet, make it now (the packages reuse it), with the GID of an existing
# socket when that GID has no name here (a socket shared from elsewhere).
if ! getent group docker >/dev/null; then
    socket_gid=$(stat -c %g /run/docker.sock 2>/dev/null || true)
    if [ -n "$socket_gid" ] && [ "$socket_gid" != 0 ] && ! getent group "$socket_gid" >/dev/null; then
        groupadd --system --gid "$socket_gid" docker
    else
        groupadd --system docker
    fi
    warn "created the group docker (GID $(getent group docker | cut -d: -f3)): the Docker socket must belong to it"
fi
if [ -S /run/docker.sock ] && [ "$(stat -c %G /run/docker.sock)" != docker ]; then
    warn "/run/docker.sock belongs to group $(stat -c %G /run/docker.sock), not docker: the container-agent will not reach Docker"
fi

# --- the program -------------------------------------------------------------------
install -d -m 0755 "$PREFIX"
touch "$PREFIX/$MARKER"
say "copying the project to $PREFIX/src"
rm -rf "$PREFIX/src.new"
install -d -m 0755 "$PREFIX/src.new"
tar -C "$ROOT_DIR" -c \
    --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude=./artifacts \
    --exclude=./bench-results --exclude=./tests --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=node_modules . |
    tar -C "$PREFIX/src.new" -x --no-same-owner
chmod -R u=rwX,go=rX "$PREFIX/src.new"
rm -rf "$PREFIX/src"
mv "$PREFIX/src.new" "$PREFIX/src"

venv=$PREFIX/venv
python_version=$("$PYTHON" -V 2>&1)
if [ ! -x "$venv/bin/python" ] || [ "$("$venv/bin/python" -V 2>&1)" != "$python_version" ]; then
    [ -e "$venv" ] && say "$venv was made with another Python: making it again"
    rm -rf "$venv"
    say "creating $venv with $python_version"
    "$PYTHON" -m venv "$venv" || die "'$PYTHON -m venv $venv' failed"
fi

# pip's output goes to a log shown only when pip fails.
pip() {
    local log status=0
    log=$(mktemp)
    "$venv/bin/python" -m pip --disable-pip-version-check --no-input "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "pip $* failed (exit status $status)"
    fi
    rm -f "$log"
}
say "installing the dependencies (requirements.txt) into $venv"
pip install -r "$PREFIX/src/requirements.txt"
say "installing the project into $venv"
pip install --no-deps --force-reinstall "$PREFIX/src"
rm -rf "$PREFIX/src/build" "$PREFIX/src/"*.egg-info
for module in scheduler container_agent alb_agent dashboard; do
    [ -f "$PREFIX/src/services/$module/__main__.py" ] ||
        warn "services/$module has no __main__.py yet: its unit will fail to start"
done
ln -sfn "$venv/bin/mcp-orchestrator" "$BIN_LINK"
[ -x /bin/kill ] || warn "no /bin/kill: \`systemctl reload mcp-orchestrator-scheduler\` needs it (apt-get install procps)"

# --- configuration (never overwritten) -----------------------------------------------
install -d -m 0750 -o root -g "$USER_NAME" "$CONF_DIR"
for name in settings.conf mcp.config.json; do
    if [ -e "$CONF_DIR/$name" ]; then
        say "kept $CONF_DIR/$name (the shipped one is $PREFIX/src/$name)"
    else
        # Readable by the services' group only: both files may hold secrets.
        install -m 0640 -o root -g "$USER_NAME" "$ROOT_DIR/$name" "$CONF_DIR/$name"
        say "installed $CONF_DIR/$name"
    fi
done
if [ -e "$CONF_DIR/environment" ]; then
    say "kept $CONF_DIR/environment"
    mode=$(stat -c %a "$CONF_DIR/environment")
    [ "${mode: -2}" = 00 ] ||
        warn "$CONF_DIR/environment is mode $mode: it holds secrets, chmod 600 it"
else
    install -m 0600 -o root -g root /dev/null "$CONF_DIR/environment"
    cat >"$CONF_DIR/environment" <<'EOF'
# Secrets for the MCP Docker Orchestrator, read by systemd (root only, mode 0600) and
# passed to the four services. One NAME=value per line.
#
# Values that `-e NAME` / `--env NAME` (without =value) in mcp.config.json refers to:
# GITHUB_PERSONAL_ACCESS_TOKEN=...
#
# The dashboard password (overrides [dashboard] password in settings.conf):
# MCP_ORCHESTRATOR_DASHBOARD_PASSWORD=...
#
# Bearer tokens the MCP bridges ask for (needed once [service] bridge_host is not
# loopback); comma-separated, TOKEN for every server or SERVER-ID:TOKEN for one.
# Make one with: openssl rand -hex 32
# MCP_ORCHESTRATOR_BRIDGE_TOKENS=...
#
# AWS credentials, when the instance has no role:
# AWS_ACCESS_KEY_ID=...
# AWS_SECRET_ACCESS_KEY=...
EOF
    say "installed $CONF_DIR/environment (empty, mode 0600)"
fi

# --- units ---------------------------------------------------------------------------
install -d -m 0755 "$UNIT_DIR"
for unit in "$TARGET" "${UNITS[@]}"; do
    install -m 0644 "$ROOT_DIR/systemd/$unit" "$UNIT_DIR/$unit"
done
say "installed the units in $UNIT_DIR"
if systemd_running; then
    systemctl daemon-reload
fi
systemctl enable --quiet "$TARGET"
say "enabled $TARGET (started at boot)"

restarted=()
if systemd_running; then
    for unit in "${UNITS[@]}"; do
        if systemctl is-active --quiet "$unit"; then
            systemctl restart "$unit" || warn "$unit did not restart: journalctl -u $unit"
            restarted+=("$unit")
        fi
    done
fi

# --- what next -------------------------------------------------------------------------
if [ "$upgrade" -eq 1 ]; then
    say "upgraded $PREFIX in place"
    [ ${#restarted[@]} -eq 0 ] || say "restarted on the new code: ${restarted[*]}"
else
    say "installed into $PREFIX"
fi
cat <<EOF

Next steps:
  1. Edit $CONF_DIR/settings.conf ([aws] alb_arn and listener_arn; empty = routing
     simulated locally) and $CONF_DIR/mcp.config.json (your MCP servers).
  2. Put secrets in $CONF_DIR/environment (values for -e NAME,
     MCP_ORCHESTRATOR_DASHBOARD_PASSWORD, and behind an ALB the bridges' tokens:
     MCP_ORCHESTRATOR_BRIDGE_TOKENS=\$(openssl rand -hex 32)); it stays root-only (mode 0600).
  3. Check both files as the services will read them (same user, same environment):
       systemd-run --quiet --pipe --wait -p User=$USER_NAME \\
         -p EnvironmentFile=$CONF_DIR/environment mcp-orchestrator validate \\
         --settings $CONF_DIR/settings.conf --config $CONF_DIR/mcp.config.json
  4. Start:    systemctl start $TARGET
     Status:   systemctl status $TARGET 'mcp-orchestrator-*'
     Logs:     journalctl -u 'mcp-orchestrator-*' -f
     Reload:   systemctl reload mcp-orchestrator-scheduler   (after editing the files)
EOF
