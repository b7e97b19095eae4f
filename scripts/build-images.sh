#!/usr/bin/env bash
# Builds the images the tests and the examples use, locally (no registry), each only
# when its tag is absent (or was built from older files of this project), in dependency order.
#
#   build-images.sh [--rebuild] [IMAGE...]
#
# IMAGE is a tag or a short name; none means all of them:
#   busybox         mcp-orchestrator/busybox:test             FROM scratch + Debian's static busybox
#   python-base     mcp-orchestrator/python-base:bookworm     debootstrap'd Debian with python3 + pip
#   time            mcp-orchestrator/mcp-server-time:latest   the reference time server (PyPI), on python-base
#   conformance     mcp-orchestrator/mcp-conformance-server:test
#                                                             the server the MCP conformance suite tests
#                                                             (images/conformance-server/, the mcp 1.x SDK),
#                                                             on python-base; rebuilt when its files change
#   debian-systemd  mcp-orchestrator/debian-systemd:bookworm  debootstrap'd Debian that boots systemd as
#                                                             PID 1 (tests/systemd: `make install` inside)
#
# --rebuild (or REBUILD=1) builds the named images even when present.
# BUSYBOX_IMAGE, PYTHON_BASE_IMAGE, TIME_SERVER_IMAGE, CONFORMANCE_SERVER_IMAGE, SYSTEMD_IMAGE
# override the tags (to try a build without touching the images in use). DEBIAN_MIRROR
# overrides the mirror debootstrap uses (default: the host's own Debian mirror). Wheels are
# cached in .cache/wheels/.
set -euo pipefail
STEP=images
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUSYBOX_IMAGE=${BUSYBOX_IMAGE:-mcp-orchestrator/busybox:test}
PYTHON_BASE_IMAGE=${PYTHON_BASE_IMAGE:-mcp-orchestrator/python-base:bookworm}
TIME_SERVER_IMAGE=${TIME_SERVER_IMAGE:-mcp-orchestrator/mcp-server-time:latest}
CONFORMANCE_SERVER_IMAGE=${CONFORMANCE_SERVER_IMAGE:-mcp-orchestrator/mcp-conformance-server:test}
SYSTEMD_IMAGE=${SYSTEMD_IMAGE:-mcp-orchestrator/debian-systemd:bookworm}
REBUILD=${REBUILD:-0}
CACHE_DIR="$ROOT_DIR/.cache"
# Image labels are inherited by every container made from the image: keep them to the
# OCI keys so they never look like the orchestrator's own container labels.
SOURCE_LABEL="org.opencontainers.image.source=local-build"

# The conformance server's SDK: the newest 1.x release. A 1.x server is a handshake-era
# server (it answers initialize, never server/discover); a 2.x stdio server locks its
# connection to the 2026-07-28 revision when it is probed with server/discover.
CONFORMANCE_SDK="mcp==1.30.0"

ALL=(busybox python-base time conformance debian-systemd)

# Temporary build contexts and root filesystems, removed however the script ends.
TMP_PATHS=()
ROOT_TMP_PATHS=()
cleanup() {
    [ ${#TMP_PATHS[@]} -eq 0 ] || rm -rf "${TMP_PATHS[@]}"
    [ ${#ROOT_TMP_PATHS[@]} -eq 0 ] || as_root rm -rf --one-file-system "${ROOT_TMP_PATHS[@]}"
}
trap cleanup EXIT

tag_of() {
    case "$1" in
    busybox) echo "$BUSYBOX_IMAGE" ;;
    python-base) echo "$PYTHON_BASE_IMAGE" ;;
    time) echo "$TIME_SERVER_IMAGE" ;;
    conformance) echo "$CONFORMANCE_SERVER_IMAGE" ;;
    debian-systemd) echo "$SYSTEMD_IMAGE" ;;
    esac
}

deps_of() {
    case "$1" in
    time | conformance) echo python-base ;;
    esac
}

# name_of TAG-OR-NAME: the short name, or nothing when unknown.
name_of() {
    local n
    for n in "${ALL[@]}"; do
        if [ "$1" = "$n" ] || [ "$1" = "$(tag_of "$n")" ]; then
            echo "$n"
            return 0
        fi
    done
    return 1
}

present() { docker image inspect "$1" >/dev/null 2>&1; }

# revision_of NAME: for an image built from this project's own files, a digest of those
# files and of its pins (kept in the image's revision label); nothing for the others.
revision_of() {
    case "$1" in
    conformance)
        {
            files_digest "$ROOT_DIR/images/conformance-server/Dockerfile" "$ROOT_DIR/images/conformance-server/server.py"
            echo "$CONFORMANCE_SDK"
        } | sha256sum | cut -c1-16
        ;;
    esac
}

# up_to_date NAME TAG: the image TAG was built from the current files (always true for the
# images built from upstream packages only).
up_to_date() {
    local want have
    want=$(revision_of "$1")
    [ -n "$want" ] || return 0
    have=$(docker image inspect -f '{{ index .Config.Labels "org.opencontainers.image.revision" }}' "$2" 2>/dev/null) ||
        return 1
    [ "$have" = "$want" ]
}

# --- the builds -------------------------------------------------------------

build_busybox() {
    local tag=$1 ctx busybox_bin=/bin/busybox
    [ -x "$busybox_bin" ] || die "no $busybox_bin: install busybox-static (scripts/install-system.sh)"
    # A dynamically linked busybox cannot run in a FROM scratch image.
    if LC_ALL=C ldd "$busybox_bin" 2>&1 | grep -q '=>'; then
        die "$busybox_bin is dynamically linked: install busybox-static instead of busybox"
    fi
    ctx=$(mktemp -d)
    TMP_PATHS+=("$ctx")
    cp "$busybox_bin" "$ctx/busybox"
    cp "$ROOT_DIR/images/busybox/Dockerfile" "$ctx/Dockerfile"
    docker_build "$tag" "$ctx" --label "org.opencontainers.image.title=busybox"
}

# The host's Debian mirror, so a machine behind its own mirror keeps using it.
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local uri
    uri=$(
        {
            grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
            grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                sed -E 's/\[[^]]*\]//' | awk '{print $2}'
        } | grep -vE 'security|updates|backports' | grep -E '/debian/?$' | head -n 1
    ) || true
    echo "${uri:-http://deb.debian.org/debian}"
}

# debootstrap_rootfs TAG DIR-VAR PACKAGES: a minbase bookworm root filesystem with the
# comma-separated PACKAGES in a fresh directory under /var/tmp (removed at exit), its
# path stored in the variable named DIR-VAR.
debootstrap_rootfs() {
    local tag=$1 packages=$3 rootfs mirror
    command -v debootstrap >/dev/null 2>&1 ||
        die "no debootstrap: install it (scripts/install-system.sh)"
    mirror=$(debian_mirror)
    # /var/tmp: a disk-backed place where device nodes and executables are allowed.
    rootfs=$(as_root mktemp -d /var/tmp/mcp-rootfs.XXXXXX)
    ROOT_TMP_PATHS+=("$rootfs")
    say "$tag: debootstrap bookworm from $mirror (about a minute)"
    local log="$rootfs.log"
    ROOT_TMP_PATHS+=("$log")
    if ! as_root debootstrap --variant=minbase --include="$packages" \
        bookworm "$rootfs" "$mirror" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "$tag: debootstrap failed; set DEBIAN_MIRROR to a reachable mirror if $mirror is not"
    fi
    # Package caches are dead weight in an image.
    # The glob is expanded as root: the directory is not readable by others.
    # shellcheck disable=SC2016
    as_root sh -c 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' sh "$rootfs"
    printf -v "$2" '%s' "$rootfs"
}

build_python_base() {
    local tag=$1 dir
    debootstrap_rootfs "$tag" dir python3-minimal,python3-pip
    say "$tag: importing the root filesystem"
    as_root tar --numeric-owner -C "$dir" -c . | docker import \
        --change "LABEL $SOURCE_LABEL" \
        --change "LABEL org.opencontainers.image.title=python-base" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'CMD ["python3"]' \
        - "$tag" >/dev/null
}

# Debian with systemd as PID 1, for running the units for real: python3-venv, make and
# procps (/bin/kill for ExecReload) are what the install needs; the Python packages come
# from a wheelhouse mounted at run time (containers have no network).
build_debian_systemd() {
    local tag=$1 dir
    debootstrap_rootfs "$tag" dir systemd,systemd-sysv,dbus,python3-minimal,python3-venv,make,procps
    # Units that have nothing to do in a container and only slow the boot down or fail.
    # shellcheck disable=SC2016
    as_root sh -c 'for u in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
            e2scrub_all.timer fstrim.timer getty@tty1.service; do
        ln -sf /dev/null "$1/etc/systemd/system/$u"; done' sh "$dir"
    say "$tag: importing the root filesystem"
    as_root tar --numeric-owner -C "$dir" -c . | docker import \
        --change "LABEL $SOURCE_LABEL" \
        --change "LABEL org.opencontainers.image.title=debian-systemd" \
        --change "ENV container=docker" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change 'CMD ["/lib/systemd/systemd"]' \
        - "$tag" >/dev/null
}

# The wheels of a PyPI package (a name, or a requirement such as mcp==1.30.0) for the
# image's Python (3.11, this machine's arch), downloaded on the host into
# .cache/wheels/NAME (mcp-1.30.0 for that requirement); the cache is reused when the index
# cannot be reached. The folder's path is left in WHEELS.
download_wheels() {
    local package=$1 dest py arch log
    dest="$CACHE_DIR/wheels/${package//==/-}"
    WHEELS=$dest
    py="$ROOT_DIR/.venv/bin/python"
    [ -x "$py" ] || py=python3
    arch=$(uname -m)
    mkdir -p "$dest"
    log=$(mktemp)
    TMP_PATHS+=("$log")
    say "downloading wheels of $package into ${dest#"$ROOT_DIR"/}"
    if ! "$py" -m pip download --disable-pip-version-check -q --only-binary=:all: \
        --python-version 3.11 --implementation cp \
        --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" --platform any \
        -d "$dest" "$package" >"$log" 2>&1; then
        if compgen -G "$dest/*.whl" >/dev/null; then
            warn "pip download of $package failed: using the cached wheels in $dest"
        else
            tail -n 20 "$log" >&2
            die "could not download the wheels of $package (is PyPI reachable?)"
        fi
    fi
}

build_time() {
    local tag=$1 ctx
    download_wheels mcp-server-time
    ctx=$(mktemp -d)
    TMP_PATHS+=("$ctx")
    cp "$ROOT_DIR/examples/servers/time/Dockerfile" "$ctx/Dockerfile"
    cp -r "$WHEELS" "$ctx/wheels"
    docker_build "$tag" "$ctx" --build-arg "BASE_IMAGE=$PYTHON_BASE_IMAGE" \
        --label "org.opencontainers.image.title=mcp-server-time"
    check_mcp_server "$tag"
}

build_conformance() {
    local tag=$1 ctx
    download_wheels "$CONFORMANCE_SDK"
    ctx=$(mktemp -d)
    TMP_PATHS+=("$ctx")
    cp "$ROOT_DIR/images/conformance-server/Dockerfile" "$ROOT_DIR/images/conformance-server/server.py" "$ctx/"
    cp -r "$WHEELS" "$ctx/wheels"
    docker_build "$tag" "$ctx" --build-arg "BASE_IMAGE=$PYTHON_BASE_IMAGE" \
        --label "org.opencontainers.image.title=mcp-conformance-server" \
        --label "org.opencontainers.image.revision=$(revision_of conformance)"
    check_mcp_server "$tag"
}

check_mcp_server() {
    local tag=$1
    say "$tag: checking that it answers MCP over docker run -i"
    if ! python3 "$ROOT_DIR/scripts/check-mcp-server.py" "$tag" | sed "s/^/[$STEP] /"; then
        docker rmi "$tag" >/dev/null 2>&1 || true
        die "$tag does not answer MCP initialize; the image was removed"
    fi
}

docker_build() {
    local tag=$1 ctx=$2 log
    shift 2
    log=$(mktemp)
    TMP_PATHS+=("$log")
    # The legacy builder talks to any engine; BuildKit may be absent with Debian's engine.
    if ! DOCKER_BUILDKIT=0 docker build --label "$SOURCE_LABEL" "$@" -t "$tag" "$ctx" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "docker build of $tag failed"
    fi
}

# --- which images, in which order ------------------------------------------

requested=()
for arg in "$@"; do
    case "$arg" in
    --rebuild) REBUILD=1 ;;
    -h | --help)
        # The comment block at the top is the usage.
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 0
        ;;
    *)
        name=$(name_of "$arg") ||
            die "unknown image '$arg'; known: $(for n in "${ALL[@]}"; do printf '%s (%s) ' "$n" "$(tag_of "$n")"; done)"
        requested+=("$name")
        ;;
    esac
done
[ ${#requested[@]} -gt 0 ] || requested=("${ALL[@]}")

# Dependencies first; each name once.
plan=()
add_to_plan() {
    local dep p
    for dep in $(deps_of "$1"); do add_to_plan "$dep"; done
    for p in "${plan[@]+"${plan[@]}"}"; do [ "$p" = "$1" ] && return 0; done
    plan+=("$1")
}
for name in "${requested[@]}"; do add_to_plan "$name"; done

is_requested() {
    local r
    for r in "${requested[@]}"; do [ "$r" = "$1" ] && return 0; done
    return 1
}

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH"
docker_answers || die "no Docker engine answers (scripts/ensure-docker.sh starts one)"

# Tests and make may build at the same time: one build at a time, then look again.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/build-images.lock"
flock 9

for name in "${plan[@]}"; do
    tag=$(tag_of "$name")
    # A dependency is rebuilt only when asked for by name (or when its files changed).
    if present "$tag" && up_to_date "$name" "$tag" && ! { [ "$REBUILD" = 1 ] && is_requested "$name"; }; then
        say "$tag: present"
        continue
    fi
    if present "$tag" && ! up_to_date "$name" "$tag"; then
        say "$tag: built from older files: rebuilding"
    else
        say "$tag: building"
    fi
    start=$SECONDS
    "build_${name//-/_}" "$tag"
    say "$tag: built in $((SECONDS - start)) s"
done
