#!/usr/bin/env bash
# Installs the Debian packages that `make run` and `make test` need, and only those
# that are missing: on a machine that has them all this takes a fraction of a second
# and never runs `apt-get update`.
#
# Environment: PYTHON (default python3) is the interpreter the virtual environment
# will be made from; VENV (default .venv) is where it lives.
set -euo pipefail
STEP=system
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT_DIR/.venv}

command -v dpkg-query >/dev/null 2>&1 ||
    die "no dpkg-query: this script knows Debian and Ubuntu only; install by hand: a Docker engine, a static busybox, debootstrap, python3 with venv"

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# busybox-static: the tiny test image is FROM scratch and needs a static /bin/busybox.
# debootstrap: builds the Python base image without a registry.
wanted=(busybox-static debootstrap ca-certificates)

# The engine: Debian's docker.io, unless a Docker engine is installed some other way
# (docker-ce from Docker's own packages conflicts with docker.io) or one already answers.
if ! dockerd_installed && ! docker_answers; then
    wanted+=(docker.io)
fi
# With AppArmor on in the kernel, dockerd needs apparmor_parser to start containers.
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" = "Y" ]; then
    wanted+=(apparmor)
fi
# Debian ships ensurepip (needed by `python3 -m venv`) in python3-venv.
if ! "$VENV/bin/python" -c '' >/dev/null 2>&1 &&
    ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    wanted+=(python3-venv)
fi

missing=()
for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages present: ${wanted[*]}"
    exit 0
fi

say "installing missing Debian packages: ${missing[*]}"
install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if ! is_root && ! command -v sudo >/dev/null 2>&1; then
    die "not root and no sudo; run this as root, then retry: $install_cmd"
fi
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

for pkg in "${missing[@]}"; do
    installed "$pkg" || die "package $pkg is still not installed after apt-get install"
done
say "installed: ${missing[*]}"
