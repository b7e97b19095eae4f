"""The real orchestrator behind the dashboard: scheduler, container-agent and alb-agent
processes with real containers (tests/scheduler/support.py runs them), plus the
dashboard process pointed at them."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.dashboard.processes import PASSWORD, DashboardUser, Proc, clean_env, free_port, start_dashboard, wait_for

CANARY = "canary-" + uuid.uuid4().hex
STDERR_MARKER = "stderr-marker-" + uuid.uuid4().hex[:8]


@dataclass
class RealWorld:
    orch: Any  # tests.scheduler.support.Orchestrator
    talker: str  # writes STDERR_MARKER to stderr; its env value is CANARY
    quiet: str
    boom: str  # exits at once with code 3: crash-looping
    port: int  # the dashboard's

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/monitor"

    def start_dashboard(self, name: str = "dashboard") -> Proc:
        return start_dashboard_for(
            self.orch.dir,
            self.orch.settings,
            self.port,
            name=name,
            MCP_ORCHESTRATOR_DASHBOARD_HOST="127.0.0.1",
            MCP_ORCHESTRATOR_DASHBOARD_PORT=str(self.port),
            MCP_ORCHESTRATOR_DASHBOARD_PASSWORD=PASSWORD,
        )


def start_dashboard_for(directory: Path, settings: Path, port: int, name: str = "dashboard", **env: str) -> Proc:
    proc = start_dashboard(directory, settings, name=name, env=clean_env(**env))
    user = DashboardUser(port)
    wait_for(lambda: user.answers() or (not proc.alive() and pytest.fail(proc.output())), 30, "the dashboard to answer")
    return proc


@contextlib.contextmanager
def real_world(docker_client: Any, busybox_image: str) -> Iterator[RealWorld]:
    from tests.scheduler.support import ECHO_SERVER, Orchestrator, docker_server, echo_server

    orch = Orchestrator(docker_client, interval=5)
    prefix = "d" + uuid.uuid4().hex[:6]  # container names are global
    world = RealWorld(orch, f"{prefix}-talker", f"{prefix}-quiet", f"{prefix}-boom", free_port())
    # The talker writes to stderr for every message it reads too, so that its stderr
    # tail has lines written while the bridge is attached.
    loop = "while IFS= read -r line; do"
    assert loop in ECHO_SERVER
    talking = ECHO_SERVER.replace(loop, f"{loop} echo {STDERR_MARKER} >&2;", 1)
    talker = docker_server(busybox_image, "sh", "-c", f"echo {STDERR_MARKER} >&2; {talking}", env={"NAME": CANARY})
    talker["args"].insert(1, "--init")
    orch.write_config(
        {
            world.talker: talker,
            world.quiet: echo_server(busybox_image, "quiet"),
            world.boom: docker_server(busybox_image, "sh", "-c", "echo boom >&2; exit 3"),
        }
    )
    try:
        orch.start_all()
        orch.wait_converged({world.talker, world.quiet}, timeout=120)
        yield world
    finally:
        orch.close()
