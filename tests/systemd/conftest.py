"""The systemd tests: unit files checked by systemd-analyze, then the real thing in a
container booted with systemd as PID 1 (select them with `-m systemd`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SYSTEMD_IMAGE = "mcp-orchestrator/debian-systemd:bookworm"
UNIT_DIR = ROOT / "systemd"
SERVICES = ("container-agent", "alb-agent", "scheduler", "dashboard")
UNITS = tuple(f"mcp-orchestrator-{name}.service" for name in SERVICES)
TARGET = "mcp-orchestrator.target"
# The wheels `make install` installs from inside the container (it has no network).
WHEELHOUSE = ROOT / ".cache" / "wheels" / "orchestrator"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "systemd: runs the systemd units for real (systemd-analyze; a container booted with systemd)"
    )


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """requirements.txt and the build backend as wheels for the container's Python (3.11)
    and architecture, downloaded on the host; the cache is used when PyPI is not reachable."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    import platform

    arch = platform.machine()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--platform",
            f"manylinux_2_17_{arch}",
            "--platform",
            f"manylinux2014_{arch}",
            "--platform",
            "any",
            "-d",
            str(WHEELHOUSE),
            "-r",
            str(ROOT / "requirements.txt"),
            "setuptools>=68",
            "wheel",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 and not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"could not download the wheels for the install:\n{result.stderr[-2000:]}")
    return WHEELHOUSE
