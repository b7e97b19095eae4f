"""Fixtures shared by every test package.

Tests use a real Docker engine. Everything a test creates carries the label
TEST_LABEL (harness/labels.py) so that a crashed run can be cleaned up with one filter.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX_IMAGE = "mcp-orchestrator/busybox:test"
PYTHON_BASE_IMAGE = "mcp-orchestrator/python-base:bookworm"
TIME_SERVER_IMAGE = "mcp-orchestrator/mcp-server-time:latest"
CONFORMANCE_SERVER_IMAGE = "mcp-orchestrator/mcp-conformance-server:test"
SUMMARY_SECTIONS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # a CI run must not silently skip the real thing
        if os.environ.get("CI"):
            pytest.fail(f"no Docker engine answers: {exc}")
        pytest.skip(f"no Docker engine answers: {exc}")
    yield client
    client.close()


def ensure_image(client, tag: str, own_files: bool = False) -> None:
    """Build a locally made image on first use (scripts/build-images.sh knows how).
    `own_files`: an image built from this project's files, which the script also rebuilds
    when they changed since, so it is always asked."""
    import docker.errors

    if not own_files:
        try:
            client.images.get(tag)
            return
        except docker.errors.ImageNotFound:
            pass
    subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh"), tag], check=True)
    client.images.get(tag)


@pytest.fixture(scope="session")
def busybox_image(docker_client) -> str:
    ensure_image(docker_client, BUSYBOX_IMAGE)
    return BUSYBOX_IMAGE


@pytest.fixture(scope="session")
def time_server_image(docker_client) -> str:
    ensure_image(docker_client, TIME_SERVER_IMAGE)
    return TIME_SERVER_IMAGE


@pytest.fixture(scope="session")
def conformance_server_image(docker_client) -> str:
    ensure_image(docker_client, CONFORMANCE_SERVER_IMAGE, own_files=True)
    return CONFORMANCE_SERVER_IMAGE


@pytest.fixture(scope="session")
def swarm_rig(docker_client, time_server_image):
    """Three Swarm nodes on this machine (tests/harness/swarm_rig.py), all managers (the
    control plane runs on each: Raft keeps its quorum with one of them lost), with
    the time server's image loaded; built once for the tests that ask for it."""
    from tests.harness.swarm_rig import RigUnavailable, SwarmRig

    rig = SwarmRig(nodes=3, managers=3, log_dir=ROOT / "artifacts" / "swarm")
    try:
        rig.build(images=[time_server_image])
    except RigUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the swarm rig cannot be built: {exc}")
        pytest.skip(f"the swarm rig cannot be built: {exc}")
    yield rig
    rig.close()


@pytest.fixture
def unique_name() -> str:
    """A short name no other test (or parallel run) uses."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def terminal_summary(pytestconfig) -> list:
    """Append (title, text) to have it printed at the end of the run whatever the outcome:
    for a table that must be read even when its tests pass or are expected to fail."""
    return pytestconfig.stash.setdefault(SUMMARY_SECTIONS, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    for title, text in config.stash.get(SUMMARY_SECTIONS, []):
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(text)
