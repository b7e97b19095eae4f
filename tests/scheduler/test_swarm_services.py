"""The servers as Swarm services on a real three-node swarm (tests/harness/swarm_rig.py):
the definition made from a server's `docker run` args is what the engine runs, the
replicas land on different nodes, each node's own engine attaches to its local task's
stdio and speaks MCP with it, a spec change rolls out start-first, scaling alone
restarts nothing, and removal leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from common import container_labels as ours
from common.config import load_server
from common.swarm_service import ServicePolicy
from services.container_agent.stdio import attach
from services.scheduler.diff import Want
from services.scheduler.swarm_plan import plan_services
from services.scheduler.swarm_services import SwarmServices
from tests.harness.servers import initialize_request
from tests.harness.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.swarm]

CLUSTER = "swarmtest"
PORT = 8123


def server(image: str, *extra: str):
    entry = {"command": "docker", "args": ["run", "-i", "--rm", *extra, image]}
    config, _, issues = load_server("clock", entry, base_dir=Path("."), environ={}, port_range=(8000, 9000))
    assert config is not None, issues
    return config


def mcp_initialize(node, container_id: str) -> dict:
    """An MCP initialize through the node's own engine: the answer's result."""

    async def talk() -> dict:
        lines: asyncio.Queue = asyncio.Queue()
        stdio = await attach(
            node.client().api,
            container_id,
            on_stdout_line=lines.put_nowait,
            on_stderr_line=lambda _: None,
            on_closed=lambda _: None,
        )
        try:
            hello = initialize_request(1, "swarm-test")
            stdio.write(json.dumps(hello).encode() + b"\n")
            while True:
                msg = json.loads(await asyncio.wait_for(lines.get(), 30))
                if msg.get("id") == 1:
                    return msg["result"]
        finally:
            stdio.close()

    return asyncio.run(talk())


def local_containers(node, server_id: str) -> list:
    found = node.client().containers.list(
        filters={"label": [f"{ours.SERVER_ID}={server_id}", f"{ours.CLUSTER}={CLUSTER}"]}
    )
    return found


def converge(services: SwarmServices, config, replicas: int, state=None) -> list[str]:
    """Plan the server's service against `state` and carry the steps out: their actions."""
    want = Want(server_id="clock", spec_hash=config.spec_hash, host_port=PORT)
    steps = plan_services({"clock": want}, {"clock": replicas}, {"clock": state} if state else {})
    room = sum(1 for n in services.nodes() if n.available)
    for step in steps:
        services.carry_out(step, config, PORT, state, room)
    return [step.action for step in steps]


def test_a_server_runs_as_a_replicated_service_spread_over_the_nodes(swarm_rig, time_server_image):
    # No container-agent runs here to drain a stopping replica: no drain time.
    policy = ServicePolicy(
        replicas=2, max_per_node=1, update_delay_seconds=0.5, update_monitor_seconds=2, drain_seconds=0
    )
    services = SwarmServices(swarm_rig.manager.client(), CLUSTER, policy)
    clock = server(time_server_image)
    nodes = services.nodes()
    assert [(n.hostname, n.address, n.zone, n.available) for n in nodes] == [
        (node.name, node.address, node.zone, True) for node in swarm_rig.nodes
    ]
    assert sum(n.leader for n in nodes) == 1
    started = time.monotonic()
    try:
        assert converge(services, clock, 2) == ["create"]
        state = wait_for(
            lambda: (s := services.observe().get("clock")) is not None and s.running == 2 and s,
            120,
            "two running replicas",
            explain=lambda: str(services.observe()),
        )
        print(f"\n2 replicas running {time.monotonic() - started:.1f} s after the service was created")
        assert state.desired == 2 and state.host_port == PORT and state.spec_hash == clock.spec_hash
        assert len(set(state.nodes)) == 2, "at most one replica per node"
        # Each node that runs a replica sees it through its own engine, and can speak MCP with it.
        for node_id in state.nodes:
            node = swarm_rig.node_by_id(node_id)
            [container] = local_containers(node, "clock")
            assert container.attrs["Config"]["OpenStdin"] and not container.attrs["Config"]["Tty"]
            result = mcp_initialize(node, container.id)
            assert result["serverInfo"]["name"] == "mcp-time"
        idle = next(n for n in swarm_rig.nodes if n.node_id not in state.nodes)
        assert local_containers(idle, "clock") == []

        # A spec change with a node to spare rolls out start-first.
        changed = server(time_server_image, "-e", "TZ=UTC")
        assert changed.spec_hash != clock.spec_hash
        state = rolled_out(swarm_rig, services, changed, 2, state, "start-first", "TZ=UTC")
        # Scaling alone changes no running task.
        before = set(state.nodes)
        assert converge(services, changed, 3, state) == ["scale"]
        state = wait_for(lambda: (s := services.observe()["clock"]).running == 3 and s, 120, "three replicas")
        assert before <= set(state.nodes) and len(set(state.nodes)) == 3
        assert converge(services, changed, 3, state) == []
        # With one replica on every node there is no room for a new task first: stop-first.
        paris = server(time_server_image, "-e", "TZ=Europe/Paris")
        state = rolled_out(swarm_rig, services, paris, 3, state, "stop-first", "TZ=Europe/Paris")
    finally:
        for sid, state in services.observe().items():
            for step in plan_services({}, {}, {sid: state}):
                services.carry_out(step, None, None, state, 0)
    wait_for(lambda: all(not local_containers(n, "clock") for n in swarm_rig.nodes), 60, "the tasks to go")
    assert services.observe() == {}


def rolled_out(rig, services: SwarmServices, new, replicas: int, state, order: str, env: str):
    """Apply a changed spec; wait until every task runs it. The new state."""
    started = time.monotonic()
    assert converge(services, new, replicas, state) == ["update"]
    inspected = services.client.api.inspect_service(state.service_id)["Spec"]
    assert inspected["UpdateConfig"]["Order"] == order

    def runs_the_new_spec(s) -> bool:
        """Every replica's container has the new environment (the service's own update
        state is empty for a moment after the change, before Swarm starts rolling)."""
        containers = [c for node_id in s.nodes for c in local_containers(rig.node_by_id(node_id), "clock")]
        return len(containers) == replicas and all(env in c.attrs["Config"]["Env"] for c in containers)

    state = wait_for(
        lambda: (
            (s := services.observe()["clock"]).spec_hash == new.spec_hash
            and s.update in ("completed", "")
            and s.running == replicas
            and runs_the_new_spec(s)
            and s
        ),
        180,
        f"the {order} rolling update to complete",
        explain=lambda: str(services.observe().get("clock")),
    )
    print(f"{order} update of {replicas} replica(s) done in {time.monotonic() - started:.1f} s")
    return state
