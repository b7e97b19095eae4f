"""One formatting and import style across the tree: `ruff check` and `ruff format --check`
(configured in pyproject.toml) pass. Fix with `.venv/bin/ruff check --fix . && .venv/bin/ruff format .`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(args):
    if not RUFF.exists():
        pytest.fail(f"ruff is not installed in {RUFF.parent}: scripts/ensure-venv.sh --test installs it")
    done = subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
