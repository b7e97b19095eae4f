#!/usr/bin/env bash
# Installs LiteLLM Proxy, the LLM gateway our users put in front of the bridges, into a
# virtual environment of its own under .cache/litellm (never into .venv: it pins its own
# versions of the MCP SDK and much else). The tests drive it as a real client of the
# bridges. Re-runs pip only when the pinned version (or the interpreter) changes.
#
# Environment: PYTHON (default python3) makes the venv.
set -euo pipefail
STEP=litellm
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-python3}
VENV_DIR="$ROOT_DIR/.cache/litellm"
PIN="litellm[proxy]>=1.100,<2"
STAMP="$VENV_DIR/.installed"

want="$PIN $("$PYTHON" --version 2>&1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV_DIR/bin/litellm" ]; then
    say "present: $PIN"
    exit 0
fi
say "pip install '$PIN' into .cache/litellm (about a minute)"
log=$(mktemp)
if ! { "$PYTHON" -m venv "$VENV_DIR" && "$VENV_DIR/bin/pip" install -q --disable-pip-version-check "$PIN"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "installing LiteLLM failed (output above)"
fi
rm -f "$log"
printf '%s' "$want" >"$STAMP"
say "installed: $("$VENV_DIR/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: /litellm /p')"
