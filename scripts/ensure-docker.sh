#!/usr/bin/env bash
# Makes sure a Docker engine answers. Never starts a second engine:
#   1. `docker info` answers            -> nothing to do;
#   2. a dockerd process exists          -> wait for it (it may still be starting);
#   3. systemd runs and has docker.service -> `systemctl start docker`;
#   4. otherwise                         -> start dockerd detached, logging to DOCKERD_LOG.
#
# Environment:
#   DOCKERD_LOG            log of a dockerd started here (default /var/log/mcp-orchestrator-dockerd.log)
#   DOCKERD_ARGS           extra dockerd flags, split on spaces (e.g. "--iptables=false")
#   DOCKERD_START_TIMEOUT  seconds to wait for the engine to answer (default 60)
set -euo pipefail
STEP=docker
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/mcp-orchestrator-dockerd.log}
DOCKERD_START_TIMEOUT=${DOCKERD_START_TIMEOUT:-60}
read -r -a DOCKERD_EXTRA <<<"${DOCKERD_ARGS:-}"

command -v docker >/dev/null 2>&1 ||
    die "no docker CLI on PATH; run scripts/install-system.sh (installs docker.io)"

report_ready() {
    local server client
    server=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?')
    client=$(docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?')
    say "engine $server answers; docker CLI $client"
}

# Explains the failure of `docker info` when the engine runs but will not talk to us.
explain_refusal() {
    local out
    out=$(timeout 20 docker info 2>&1 >/dev/null || true)
    case "$out" in
    *"permission denied"*)
        die "the engine runs but $(id -un) may not use its socket: add the user to the 'docker' group (usermod -aG docker $(id -un), then log in again) or run as root" ;;
    *"is too new"* | *"too old"*)
        die "the docker CLI and the engine disagree on the API version ($out); set DOCKER_API_VERSION to the engine's version, e.g. DOCKER_API_VERSION=1.41" ;;
    esac
}

# Pids of the running dockerd processes (read from /proc: procps may be absent).
dockerd_pids() {
    local f comm
    for f in /proc/[0-9]*/comm; do
        read -r comm 2>/dev/null <"$f" || continue
        [ "$comm" = dockerd ] && echo "${f//[^0-9]/}"
    done
    return 0
}

log_tail() {
    if [ -r "$1" ]; then
        printf '%s\n' "--- last lines of $1 ---"
        tail -n 30 "$1"
        printf '%s\n' "--- end of $1 ---"
    elif [ -e "$1" ]; then
        as_root tail -n 30 "$1" || true
    fi
}

# wait_for_engine WHAT LOG [PID]: waits until `docker info` answers; fails with the
# log's tail when the deadline passes or the engine's process dies first.
wait_for_engine() {
    local what=$1 log=$2 pid=${3:-}
    local deadline=$((SECONDS + DOCKERD_START_TIMEOUT))
    say "waiting for $what to answer (up to ${DOCKERD_START_TIMEOUT} s)"
    until docker_answers; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && ! [ -d "/proc/$pid" ]; then
            log_tail "$log" >&2
            die "dockerd exited during start-up; see $log (extra flags can go in DOCKERD_ARGS)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            explain_refusal
            log_tail "$log" >&2
            die "$what did not answer within ${DOCKERD_START_TIMEOUT} s; see $log"
        fi
        sleep 0.5
    done
}

if docker_answers; then
    report_ready
    exit 0
fi
explain_refusal

if [ -n "${DOCKER_HOST:-}" ]; then
    die "DOCKER_HOST=$DOCKER_HOST is set but no engine answers there; start it, or unset DOCKER_HOST to use the local engine"
fi

pid=$(dockerd_pids | head -n 1)
if [ -n "$pid" ]; then
    # Starting another one would fight over /var/run/docker.pid and the data root.
    # Its log is wherever its stderr goes, when that is a file.
    running_log=$(readlink "/proc/$pid/fd/2" 2>/dev/null || true)
    [ -f "$running_log" ] || running_log=$DOCKERD_LOG
    wait_for_engine "the running dockerd (pid $pid)" "$running_log" "$pid"
elif [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    say "starting docker.service with systemd"
    as_root systemctl start docker.service ||
        die "systemctl start docker failed; see: journalctl -u docker.service -n 50"
    wait_for_engine "docker.service" "(journalctl -u docker.service)"
else
    dockerd_installed ||
        die "no dockerd on this machine; run scripts/install-system.sh (installs docker.io)"
    # A pid file left by a dockerd that was killed stops the next one from starting.
    # No dockerd runs (checked above), so one naming a pid that is not dockerd is stale.
    if [ -f /var/run/docker.pid ]; then
        stale=$(cat /var/run/docker.pid 2>/dev/null || true)
        comm=""
        if [ -n "$stale" ]; then read -r comm 2>/dev/null <"/proc/$stale/comm" || true; fi
        if [ "$comm" != dockerd ]; then
            say "removing stale /var/run/docker.pid (pid ${stale:-none} is not a running dockerd)"
            as_root rm -f /var/run/docker.pid
        fi
    fi
    say "starting dockerd in the background, log: $DOCKERD_LOG"
    # setsid and closed standard streams: the engine outlives make and holds no pipe of ours.
    # shellcheck disable=SC2016
    as_root sh -c 'log=$1; shift; setsid dockerd "$@" </dev/null >>"$log" 2>&1 &' \
        sh "$DOCKERD_LOG" "${DOCKERD_EXTRA[@]}"
    pid=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pid=$(dockerd_pids | tail -n 1)
        [ -n "$pid" ] && break
        sleep 0.2
    done
    [ -n "$pid" ] || {
        log_tail "$DOCKERD_LOG" >&2
        die "dockerd exited at once or did not start; see $DOCKERD_LOG"
    }
    wait_for_engine "dockerd (pid $pid)" "$DOCKERD_LOG" "$pid"
fi
report_ready
