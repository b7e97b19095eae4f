"""The real orchestrator behind the dashboard: scheduler, container-agent and alb-agent
processes with real containers (tests/scheduler/support.py runs them), plus the
dashboard process of the same cluster."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

from tests.dashboard.processes import PASSWORD, wait_until_answers
from tests.harness.processes import Process
from tests.harness.servers import ECHO_SERVER, docker_server, echo_server

CANARY = "canary-" + uuid.uuid4().hex
STDERR_MARKER = "stderr-marker-" + uuid.uuid4().hex[:8]


@dataclass
class RealWorld:
    orch: Any  # tests.scheduler.support.Orchestrator
    talker: str  # writes STDERR_MARKER to stderr; its env value is CANARY
    quiet: str
    boom: str  # exits at once with code 3: crash-looping

    @property
    def port(self) -> int:
        """The dashboard's."""
        return self.orch.dashboard_port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/monitor"

    def start_dashboard(self) -> Process:
        """The dashboard (again), once it answers."""
        proc = self.orch.start("dashboard")
        wait_until_answers(proc, self.port, 30)
        return proc


@contextlib.contextmanager
def real_world(docker_client: Any, busybox_image: str) -> Iterator[RealWorld]:
    from tests.scheduler.support import Orchestrator

    orch = Orchestrator(docker_client, interval=5, settings={"dashboard": {"password": PASSWORD}})
    prefix = "d" + uuid.uuid4().hex[:6]  # container names are global
    world = RealWorld(orch, f"{prefix}-talker", f"{prefix}-quiet", f"{prefix}-boom")
    # The talker writes to stderr for every message it reads too, so that its stderr
    # tail has lines written while the bridge is attached.
    loop = "while IFS= read -r line; do"
    assert loop in ECHO_SERVER
    talking = ECHO_SERVER.replace(loop, f"{loop} echo {STDERR_MARKER} >&2;", 1)
    talker = docker_server(
        busybox_image, "sh", "-c", f"echo {STDERR_MARKER} >&2; {talking}", env={"NAME": CANARY}, init=True
    )
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
