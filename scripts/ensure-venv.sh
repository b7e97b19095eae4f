#!/usr/bin/env bash
# Creates the project's virtual environment and installs the project into it
# (requirements.txt, then `pip install -e .` for the `mcp-orchestrator` command).
# With --test, also installs requirements-test.txt.
#
# pip runs only when those files changed since the last install: a digest of each
# set is kept in a stamp file inside the environment.
#
# Environment: PYTHON (default python3) makes the environment; VENV (default .venv).
set -euo pipefail
STEP=venv
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT_DIR/.venv}
with_test=0
case "${1:-}" in
"") ;;
--test) with_test=1 ;;
*) die "unknown argument '$1' (usage: ensure-venv.sh [--test])" ;;
esac

cd "$ROOT_DIR"

if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 9)' >/dev/null 2>&1; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON on PATH (set PYTHON=/path/to/python3)"
    "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null ||
        die "$PYTHON is $("$PYTHON" -V 2>&1); Python 3.9 or newer is needed (set PYTHON=...)"
    if [ -e "$VENV" ]; then
        say "$VENV does not work (its Python is gone or too old): making it again"
        rm -rf "$VENV"
    fi
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV" ||
        die "'$PYTHON -m venv' failed; on Debian install python3-venv (scripts/install-system.sh does)"
fi

# pip's output goes to a log that is shown only when pip fails: the steps stay readable.
pip() {
    local log status=0
    log=$(mktemp)
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        die "pip $* failed (exit status $status)"
    fi
    rm -f "$log"
}
python_version=$("$VENV/bin/python" -V 2>&1)

# install_if_changed NAME DIGEST COMMAND...: runs COMMAND when DIGEST differs from the stamp.
install_if_changed() {
    local name=$1 digest=$2
    shift 2
    local stamp="$VENV/.mcp-orchestrator-$name.sha256"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        say "$name dependencies up to date"
        return 0
    fi
    say "installing $name dependencies"
    local start=$SECONDS
    rm -f "$stamp"
    "$@"
    printf '%s\n' "$digest" >"$stamp"
    say "$name dependencies installed in $((SECONDS - start)) s"
}

install_runtime() {
    pip install -r requirements.txt
    pip install -e .
}
runtime_digest=$(printf '%s\n%s\n' "$python_version" "$(files_digest requirements.txt pyproject.toml)" | sha256sum | cut -d' ' -f1)
# The console script missing means someone removed it: install again.
[ -x "$VENV/bin/mcp-orchestrator" ] || rm -f "$VENV/.mcp-orchestrator-runtime.sha256"
install_if_changed runtime "$runtime_digest" install_runtime

if [ "$with_test" -eq 1 ]; then
    [ -f requirements-test.txt ] || die "requirements-test.txt is missing"
    test_digest=$(printf '%s\n%s\n' "$python_version" "$(files_digest requirements-test.txt)" | sha256sum | cut -d' ' -f1)
    install_if_changed test "$test_digest" pip install -r requirements-test.txt
fi
