# shellcheck shell=bash
# Helpers shared by the scripts in this folder. Sourced, never run on its own.
# The sourcing script sets STEP (the short name printed in front of every line).

# shellcheck disable=SC2034  # used by the sourcing scripts
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEP=${STEP:-setup}

say() { printf '[%s] %s\n' "$STEP" "$*"; }
warn() { printf '[%s] warning: %s\n' "$STEP" "$*" >&2; }
die() {
    printf '[%s] error: %s\n' "$STEP" "$*" >&2
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as root: directly, through sudo, or stops with the exact command
# the user has to run themselves.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "this step needs root and sudo is not installed; run as root: $*"
    fi
}

# True when a Docker engine answers the CLI (the CLI negotiates the API version,
# so a newer CLI works against Debian's 20.10 engine).
docker_answers() {
    command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1
}

# True when dockerd is installed (non-root users often lack /usr/sbin on PATH).
dockerd_installed() {
    command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ]
}

# A stable digest of the given files' contents (missing files count as empty).
files_digest() {
    local f
    for f in "$@"; do
        printf '%s\n' "${f##*/}"
        if [ -f "$f" ]; then cat "$f"; fi
    done | sha256sum | cut -d' ' -f1
}
