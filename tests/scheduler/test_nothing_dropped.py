"""Nothing dropped on one host: under a client calling a tool every 50 ms, a `docker kill`
of the server fails only the calls that were in flight when the bridge lost it; the
calls that come while the orchestrator restarts it wait (`[bridge]
restart_wait_seconds`) and are served."""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import time
import uuid
from datetime import datetime

import pytest

from tests.harness.call_loop import CallLoop, failures_since, in_flight
from tests.harness.labels import TEST_LABEL
from tests.harness.processes import Process
from tests.harness.servers import docker_server
from tests.harness.waiting import wait_for
from tests.scheduler.support import Orchestrator

pytest.importorskip("mcp.client.client")

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CLOCK = "k" + uuid.uuid4().hex[:6] + "-clock"
TIME_ARGS = {"timezone": "UTC"}
CLI = [sys.executable, "-m", "services.cli"]
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@pytest.fixture(scope="module")
def orch(docker_client, time_server_image):
    o = Orchestrator(docker_client)
    o.write_config({CLOCK: docker_server(time_server_image)})
    o.start_all()
    yield o
    o.close()


def bridge_lost_it_at(orch: Orchestrator, after: float) -> float:
    """When the container-agent's bridge saw the server's stdio end (its log line)."""
    for line in orch.output("container-agent").splitlines():
        found = _LOG_TIME.match(line)
        if found and f"server {CLOCK}: stdio closed" in line:
            moment = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if moment >= after - 1:
                return moment
    raise AssertionError("the container-agent never logged the server's stdio closing")


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_killed_server_fails_only_the_calls_in_flight(orch, docker_client, mode):
    servers = orch.wait_converged({CLOCK})
    port, restarts = servers[CLOCK]["host_port"], servers[CLOCK]["restarts"]
    loop = CallLoop(f"http://127.0.0.1:{port}/mcp/{CLOCK}/mcp", "get_current_time", TIME_ARGS, mode=mode).start()
    try:
        wait_for(lambda: loop.successes_after(0) >= 5 or loop.problem, 60, "the loop's first calls")
        assert not loop.problem, loop.problem
        killed = time.time()
        docker_client.containers.get(orch.container_ids()[CLOCK]).kill()
        wait_for(lambda: orch.servers()[CLOCK]["restarts"] > restarts, 30, "the restart to be seen")
        wait_for(
            lambda: loop.successes_after(killed) >= 5 or loop.problem,
            60,
            "calls to succeed again",
            explain=lambda: f"{loop.problem} {[c.error for c in loop.calls[-3:]]}",
        )
        assert not loop.problem, loop.problem
    finally:
        calls = loop.stop()
    lost = bridge_lost_it_at(orch, killed)
    outstanding = in_flight(calls, killed, lost)
    failed = failures_since(calls, killed)
    back = min(c.ended for c in calls if c.ok and c.started > lost)
    print(
        f"\n{mode}: {len(calls)} calls, killed at +0, the bridge lost the server at +{lost - killed:.3f} s, "
        f"{outstanding} call(s) in flight then, {len(failed)} failed, served again after {back - killed:.2f} s"
    )
    assert len(failed) <= outstanding, [f.error for f in failed]


@pytest.fixture
def launched(docker_client, time_server_image):
    """`mcp-orchestrator run` (the launcher and its children) on one time server."""
    o = Orchestrator(docker_client)
    sid = f"{o.cluster}-clock"
    o.write_config({sid: docker_server(time_server_image)})
    proc = Process(
        "launcher",
        [
            *CLI,
            "run",
            "--no-dashboard",
            "--settings",
            str(o.settings),
            "--config",
            str(o.config),
            "--container-label",
            f"{TEST_LABEL}=1",
        ],
        o.dir / "launcher.log",
        env=o.env,
    )
    try:
        yield o, proc, sid
    finally:
        if proc.alive():
            proc.signal(signal.SIGINT)
            try:
                proc.wait(60)
            except Exception:
                proc.kill9()
        o.close()


def refusals(calls) -> int:
    return sum(1 for c in calls if not c.ok and "refused" in c.error.lower())


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_a_killed_container_agent_under_run_refuses_no_connection(launched, mode, how):
    orch, proc, sid = launched
    servers = orch.wait_converged({sid}, timeout=120)
    port = servers[sid]["host_port"]
    loop = CallLoop(f"http://127.0.0.1:{port}/mcp/{sid}/mcp", "get_current_time", TIME_ARGS, mode=mode).start()
    try:
        wait_for(lambda: loop.successes_after(0) >= 5 or loop.problem, 60, "the loop's first calls")
        assert not loop.problem, loop.problem
        agent = int(re.findall(r"started container-agent \(pid (\d+)\)", proc.output())[-1])
        dying = os.pidfd_open(agent)
        killed = time.time()
        # SIGTERM: it stops taking connections, lets the calls in flight finish, and
        # the next process takes the waiting ones.
        os.kill(agent, signal.SIGKILL if how == "kill -9" else signal.SIGTERM)
        # A pidfd turns readable once the process has exited, after the kernel closed
        # its sockets: until then a request sent on a kept-alive connection of the
        # killed process is lost with it (the client sees the reset, not a refusal).
        assert select.select([dying], [], [], 60)[0], "the container-agent never exited"
        dead = time.time()
        os.close(dying)
        wait_for(lambda: len(re.findall(r"started container-agent", proc.output())) == 2, 30, "the agent's restart")
        wait_for(
            lambda: loop.successes_after(killed) >= 5 or loop.problem,
            90,
            "calls to succeed again",
            explain=lambda: f"{loop.problem} {[c.error for c in loop.calls[-3:]]}",
        )
        assert not loop.problem, loop.problem
    finally:
        calls = loop.stop()
    outstanding = in_flight(calls, killed, dead) if how == "kill -9" else 0  # a stop fails nothing
    failed = failures_since(calls, killed)
    back = min(c.ended for c in calls if c.ok and c.started > killed)
    print(
        f"\nrun, {how}, {mode}: {len(calls)} calls, {in_flight(calls, killed, killed)} in flight at the signal, "
        f"{in_flight(calls, killed, dead)} while the process was dying ({(dead - killed) * 1000:.1f} ms), "
        f"{len(failed)} failed "
        f"({refusals(failed)} connection refusals), served again after {back - killed:.2f} s, "
        f"{loop.reconnects} reconnection(s) of the client"
    )
    assert refusals(failed) == 0, [f.error for f in failed]
    assert len(failed) <= outstanding, [f.error for f in failed]
