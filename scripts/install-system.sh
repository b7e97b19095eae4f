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

# busybox-static: the tiny test image is FROM scratch and needs a static /bin/busybox.
# debootstrap: builds the Python base image without a registry.
wanted=(busybox-static debootstrap ca-certificates)
# iproute2, iptables: the test swarm's nodes (network namespaces on a bridge).
wanted+=(iproute2 iptables)

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

ensure_debian_packages "${wanted[@]}"
