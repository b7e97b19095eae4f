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

# True when the Debian package is installed.
deb_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# Installs those of the given Debian packages that are missing (apt-get update only
# then), as root or through sudo; says so when all are present.
ensure_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 ||
        die "no dpkg-query: these scripts know Debian and Ubuntu only; install by hand: $*"
    local pkg missing=()
    for pkg in "$@"; do
        deb_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages present: $*"
        return 0
    fi
    say "installing missing Debian packages: ${missing[*]}"
    if ! is_root && ! command -v sudo >/dev/null 2>&1; then
        die "not root and no sudo; run as root, then retry: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
        deb_installed "$pkg" || die "package $pkg is still not installed after apt-get install"
    done
    say "installed: ${missing[*]}"
}
