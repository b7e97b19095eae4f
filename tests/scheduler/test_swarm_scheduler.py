"""The orchestrator with `[cluster] engine = swarm`, against a real three-node swarm
(tests/harness/swarm_rig.py): the configuration becomes Swarm services, each with its
replicas on different nodes, and the scheduler's status says how many run and where;
the container-agent of every node (in the node's network namespace, on its engine)
serves the node's local replica, so official SDK clients of both eras call tools
through every node that runs one; a change of replicas scales, a hand stop scales to
zero and a start back, a server left out of the configuration loses its service, and
a flag a service cannot express is refused for its server only."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
import requests
from mcp.client.client import Client

from common import container_labels, curve
from common.swarm_service import ServicePolicy
from services.scheduler.swarm_services import SwarmServices
from tests.harness.call_loop import CallLoop, failures_since
from tests.harness.lb_standin import LoadBalancer
from tests.harness.processes import clean_env
from tests.harness.servers import initialize_request
from tests.harness.waiting import wait_for
from tests.scheduler.support import Orchestrator

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.swarm]


def time_server(image: str, *extra: str, replicas=None) -> dict:
    entry = {"command": "docker", "args": ["run", "-i", "--rm", *extra, image]}
    if replicas is not None:
        entry["orchestrator"] = {"replicas": replicas}
    return entry


@pytest.fixture
def swarm_orch(docker_client, swarm_rig, tmp_path):
    keys = tmp_path / "keys"
    curve.create_keys(keys)
    cluster = {"engine": "swarm", "update_delay_seconds": 0.5, "update_monitor_seconds": 2, "keys_dir": keys}
    orch = Orchestrator(
        docker_client, settings={"cluster": cluster}, env=clean_env(DOCKER_HOST=swarm_rig.manager.socket)
    )
    services = SwarmServices(swarm_rig.manager.client(), orch.cluster, ServicePolicy())
    try:
        yield orch, services, keys
    finally:
        orch.close()
        for state in services.observe().values():
            swarm_rig.manager.client().api.remove_service(state.service_id)


def replicas_of(orch: Orchestrator, sid: str, running: int):
    """The server's published state once `running` replicas run, else None."""
    s = orch.servers().get(sid)
    if not s or s.get("replicas_running") != running or s.get("replicas") != running:
        return None
    return s if (s["status"] == "running") == (running > 0) else None


def call_through(node_address: str, port: int, sid: str, mode: str) -> str:
    """An official SDK client's tools/call through one node's bridge: the text."""

    async def call() -> str:
        async with Client(f"http://{node_address}:{port}/mcp/{sid}/mcp", mode=mode) as client:
            result = await client.call_tool("get_current_time", {"timezone": "Etc/UTC"})
            assert result.is_error is False, result
            return result.content[0].text

    return asyncio.run(asyncio.wait_for(call(), 60))


def test_the_configuration_runs_as_swarm_services_over_the_nodes(swarm_orch, swarm_rig, time_server_image):
    orch, services, keys = swarm_orch
    orch.write_config(
        {
            "clock": time_server(time_server_image, replicas=2),
            "paris": time_server(time_server_image, "-e", "TZ=Europe/Paris"),  # [cluster] default_replicas: 2
            "priv": time_server(time_server_image, "--privileged"),
        }
    )
    started = time.monotonic()
    orch.start("alb-agent")
    orch.start("scheduler")
    # The ALB knows each host of the swarm as an EC2 instance: each node's agent says which.
    instances = dict(
        zip(
            (n.name for n in swarm_rig.nodes),
            wait_for(lambda: orch.new_instances(3), 30, "instances", ignoring=(AssertionError,)),
        )
    )
    per_node = {name: {"aws": {"instance_id": iid}} for name, iid in instances.items()}
    cluster = {"cluster": {"engine": "swarm", "keys_dir": keys}}
    with orch.node_agents(swarm_rig, cluster, per_node) as agents:
        run_and_serve(orch, services, swarm_rig, agents, started)
        routed_to_serving_nodes(orch, instances)
        sessions_follow_their_owner(orch, swarm_rig, instances)
        moves_under_load(orch, swarm_rig, instances, time_server_image, agents)
        change_and_remove(orch, services, time_server_image)


def run_and_serve(orch: Orchestrator, services: SwarmServices, swarm_rig, agents: dict, started: float) -> None:
    by_name = {n.name: n for n in swarm_rig.nodes}
    for sid in ("clock", "paris"):
        s = wait_for(lambda: replicas_of(orch, sid, 2), 120, f"{sid}: 2 replicas running", explain=orch.diagnosis)
        names = {n.name for n in swarm_rig.nodes}
        assert len(set(s["nodes"])) == 2 and set(s["nodes"]) <= names, s["nodes"]
        assert s["host_port"] and s["spec_hash"]
    print(f"\n2 servers x 2 replicas running {time.monotonic() - started:.1f} s after the scheduler started")
    # The flag a service cannot express: that server refused, the others run.
    state = orch.status()
    assert any("--privileged cannot be used with [cluster] engine = swarm" in e for e in state["config"]["errors"])
    assert set(services.observe()) == {"clock", "paris"}
    ports = {sid: s["host_port"] for sid, s in orch.servers().items() if sid != "priv"}
    assert {sid: s.host_port for sid, s in services.observe().items()} == ports
    # Every node that runs a replica serves it, in both eras, at the same port.
    for sid, port in ports.items():
        for name in orch.servers()[sid]["nodes"]:
            for mode in ("2026-07-28", "legacy"):
                text = wait_for(
                    lambda: call_through(by_name[name].address, port, sid, mode),
                    60,
                    f"{sid} served by {name} ({mode})",
                    # A replica that is still initializing: no need to ask 20 times a second.
                    interval=0.5,
                    ignoring=(Exception,),
                    explain=lambda: agents[name].output("container-agent", 30),
                )
                assert '"timezone"' in text or "Etc/UTC" in text, text
    # A host without a replica answers 503 at once on the server's port, /health included.
    for sid, port in ports.items():
        for node in swarm_rig.nodes:
            if node.name in orch.servers()[sid]["nodes"]:
                continue
            url = f"http://{node.address}:{port}/mcp/{sid}/health"
            # (A Response is falsy when its status is an error: wrapped in a tuple.)
            (health,) = wait_for(
                lambda: (r := requests.get(url, timeout=5)).status_code == 503 and (r,),
                30,
                f"{sid}'s /health on {node.name}, which runs no replica",
                ignoring=(requests.RequestException,),
            )
            assert health.json()["reason"] == "no replica of this server runs on this host"
            started = time.monotonic()
            call = requests.post(
                f"http://{node.address}:{port}/mcp/{sid}/mcp",
                json=initialize_request(1, "test"),
                headers={"Accept": "application/json, text/event-stream"},
                timeout=10,
            )
            assert call.status_code == 503 and time.monotonic() - started < 2, call.text


def routed_to_serving_nodes(orch: Orchestrator, instances: dict[str, str]) -> None:
    """Each server's target group holds exactly the instances of the nodes serving it;
    the scheduler's state (the dashboard's Nodes view) lists every node and what it serves."""
    cluster = orch.status()["cluster"]
    assert cluster["engine"] == "swarm"
    assert {n["hostname"]: n["instance_id"] for n in cluster["nodes"]} == instances
    assert all(n["reachable"] and n["state"] == "ready" for n in cluster["nodes"])
    for sid in ("clock", "paris"):
        serving = {n["hostname"] for n in cluster["nodes"] if sid in n["serves"]}
        assert serving == set(orch.servers()[sid]["served_by"])
    for sid in ("clock", "paris"):
        s = orch.servers()[sid]
        assert sorted(s["served_by"]) == sorted(s["nodes"])
        want = {instances[name] for name in s["nodes"]}
        wait_for(
            lambda: orch.target_instances(sid) == want,
            30,
            f"{sid}'s target group to hold {sorted(want)}",
            explain=lambda: f"{orch.target_instances(sid)}\n{orch.diagnosis()}",
        )
        route = next(r for r in orch.status()["routing"]["routes"] if r["server_id"] == sid)
        assert set(route["targets"]) == want
        # Sticky (lb_cookie): a handshake-era session stays on the host that holds it.
        elbv2 = orch.aws("elbv2")
        attributes = {
            a["Key"]: a["Value"]
            for a in elbv2.describe_target_group_attributes(TargetGroupArn=route["target_group_arn"])["Attributes"]
        }
        assert attributes["stickiness.enabled"] == "true" and attributes["stickiness.type"] == "lb_cookie"


def sessions_follow_their_owner(orch: Orchestrator, rig, instances: dict[str, str]) -> None:
    """A handshake-era SDK session whose requests a load balancer sends to both serving
    nodes in turn (no stickiness): the node that does not hold it forwards them to the
    one that does. With that node drained, the session's next request gets 404 and the
    client initializes again, on a node that serves."""
    address = {instances[n.name]: n.address for n in rig.nodes}
    port = orch.servers()["clock"]["host_port"]
    by_owner = {n.node_id[:12]: n for n in rig.nodes}
    url_path = "/mcp/clock/mcp"

    def registered() -> list[tuple[str, int]]:
        return sorted((address[i], port) for i in orch.target_instances("clock"))

    async def call(client: Client) -> None:
        result = await asyncio.wait_for(client.call_tool("get_current_time", {"timezone": "Etc/UTC"}), 30)
        assert result.is_error is False, result

    async def alternating() -> None:
        async with Client(lb.url + url_path, mode="legacy") as client:
            for _ in range(6):
                await call(client)

    async def across_drain() -> tuple[Any, str]:
        """The owner drained under a live session: (the error of its first failed call, or
        None when the client initialized again by itself; the drained node's name)."""
        async with Client(lb.url + url_path, mode="legacy") as client:
            await call(client)
            owner = by_owner[lb.session_ids[-1].split(".")[3]]
            await asyncio.to_thread(rig.manager.docker, "node", "update", "--availability", "drain", owner.node_id)
            first = len(lb.session_ids)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(lb.session_ids) == first:
                try:
                    await call(client)  # forwarded to the owner while its replica stops
                except Exception as exc:
                    return exc, owner.name
                await asyncio.sleep(0.2)
            return None, owner.name

    with LoadBalancer(registered) as lb:
        wait_for(lambda: len(lb._targets) == 2, 30, "both serving nodes as targets")
        asyncio.run(asyncio.wait_for(alternating(), 90))
        assert len(lb.sent) == 2 and min(lb.sent.values()) >= 3, lb.sent  # both nodes answered the session
        assert len(lb.session_ids) == 1 and lb.statuses.keys() <= {200, 202, 204}, (lb.session_ids, lb.statuses)
        error, drained = asyncio.run(asyncio.wait_for(across_drain(), 150))
        try:
            assert lb.statuses.get(404), lb.statuses  # the session's owner was gone: 404
            wait_for(
                lambda: instances[drained] not in orch.target_instances("clock"),
                60,
                f"{drained} out of clock's target group",
            )
            if error is not None:  # the client did not initialize again by itself: a new one does
                asyncio.run(asyncio.wait_for(alternating(), 90))
            again = lb.session_ids[-1]
            assert again != lb.session_ids[0] and by_owner[again.split(".")[3]].name != drained
            print(
                f"\nsession of {drained} after its drain: 404, then a new session on {by_owner[again.split('.')[3]].name}"
            )
        finally:
            node = next(n for n in rig.nodes if n.name == drained)
            rig.manager.docker("node", "update", "--availability", "active", node.node_id)
    wait_for(lambda: replicas_of(orch, "clock", 2), 120, "clock on two nodes again", explain=orch.diagnosis)
    wait_for(lambda: len(orch.target_instances("clock")) == 2, 60, "clock's two targets again")


def moves_under_load(orch: Orchestrator, rig, instances: dict[str, str], image: str, agents: dict) -> None:
    """Under two clients calling through a load balancer that routes to the registered
    targets (2026-07-28 calls, and handshake-era sessions of one call each, as LiteLLM
    makes them): a rolling update of the server's spec and a drain of a node drop
    nothing (each stopping replica leaves the target group, finishes what is in flight,
    then goes); a node's dockerd killed fails only what was in flight there, and the
    target group follows within seconds."""
    address = {instances[n.name]: n.address for n in rig.nodes}
    port = orch.servers()["clock"]["host_port"]
    by_name = {n.name: n for n in rig.nodes}

    def registered() -> list[tuple[str, int]]:
        return sorted((address[i], port) for i in orch.target_instances("clock"))

    with LoadBalancer(registered) as lb:
        args = (lb.url + "/mcp/clock/mcp", "get_current_time", {"timezone": "Etc/UTC"})
        loops = [
            CallLoop(*args, mode="2026-07-28").start(),
            CallLoop(*args, mode="legacy", fresh_sessions=True, period=0.1).start(),
        ]
        try:
            for loop in loops:
                wait_for(lambda: loop.successes_after(0) >= 10, 60, "calls through the load balancer")
            rolling_update_drops_nothing(orch, rig, loops, image)
            for how in ("drain", "dockerd killed"):
                # A node that serves clock other than the manager (whose engine is the scheduler's).
                serving = orch.servers()["clock"]["served_by"]
                node = next(by_name[n] for n in serving if by_name[n] is not rig.manager)
                moment = time.time()
                if how == "drain":
                    rig.manager.docker("node", "update", "--availability", "drain", node.node_id)
                else:
                    rig.kill_daemon(node)
                gone = wait_for(
                    lambda: instances[node.name] not in orch.target_instances("clock") and time.time(),
                    60,
                    f"{node.name} out of clock's target group ({how})",
                    explain=orch.diagnosis,
                )
                back = wait_for(
                    lambda: len(orch.target_instances("clock")) == 2 and time.time(),
                    120,
                    f"clock's second replica registered on another node ({how})",
                    explain=lambda: f"{orch.target_instances('clock')}\n{orch.diagnosis()}",
                )
                for loop in loops:
                    wait_for(lambda: loop.successes_after(back) >= 10, 60, f"calls after the move ({how})")
                failed = report(
                    loops,
                    moment,
                    f"{how} of {node.name}: out of the target group after "
                    f"{gone - moment:.1f} s, the new replica registered after {back - moment:.1f} s",
                )
                if how == "drain":
                    assert not failed, f"calls failed during the drain: {failed[:3]}"
                    # Let go by its node's agent once drained, not killed by Swarm at the end of its grace.
                    log = wait_for(
                        lambda: (
                            (text := agents[node.name].output("container-agent"))
                            and "drained: stopping" in text
                            and text
                        ),
                        60,
                        f"{node.name}'s agent to let the drained replica go",
                    )
                    print(re.findall(r"server clock: drained in [0-9.]+ s", log)[-1:])
                for loop in loops:  # a crash fails what was in flight on the node, nothing after
                    late = [c for c in loop.calls if not c.ok and c.started >= back + 0.5]
                    assert not late, f"calls failed after the target group followed: {late[:3]}"
                assert instances[node.name] not in orch.target_instances("clock")
                if how == "drain":
                    rig.manager.docker("node", "update", "--availability", "active", node.node_id)
                else:
                    rig.restart_daemon(node)
        finally:
            for loop in loops:
                loop.stop()
    print(f"load balancer: {lb.sent}")


def report(loops: list, moment: float, what: str) -> list:
    """Print what each loop saw since `moment`; the failed calls of all."""
    failed_all = []
    for loop in loops:
        calls = [c for c in loop.calls if c.started >= moment]
        failed = failures_since(loop.calls, moment)
        failed_all += failed
        kind = "handshake sessions" if loop.fresh_sessions else loop.mode
        errors = ", ".join(sorted({f.error for f in failed}))[:300]
        print(f"\n{what}: {kind}: {len(failed)} of {len(calls)} calls failed {errors}")
    return failed_all


def rolling_update_drops_nothing(orch: Orchestrator, rig, loops: list, image: str) -> None:
    """The server's spec changed: Swarm replaces each replica (start-first), and every
    replica it stops is drained first: no call fails."""
    services = SwarmServices(rig.manager.client(), orch.cluster, ServicePolicy())
    before = services.observe()["clock"]
    assert before.update == ""  # its first update: "completed" below is this one's
    moment = time.time()
    orch.write_config(
        {
            "clock": time_server(image, "-e", "ROLLED=1", replicas=2),
            "paris": time_server(image, "-e", "TZ=Europe/Paris"),
            "priv": time_server(image, "--privileged"),
        }
    )
    wait_for(
        lambda: (
            (s := services.observe()["clock"]).spec_hash != before.spec_hash
            and s.update == "completed"
            and s.running == 2
        ),
        180,
        "clock's rolling update done",
        explain=lambda: f"{services.observe().get('clock')}\n{orch.diagnosis()}",
    )
    wait_for(lambda: len(orch.target_instances("clock")) == 2, 60, "clock's two targets after the update")

    def containers() -> int:
        labels = [f"{container_labels.SERVER_ID}=clock", f"{container_labels.CLUSTER}={orch.cluster}"]
        return sum(len(n.client().containers.list(filters={"label": labels})) for n in rig.nodes)

    # Swarm says done when the new replicas run: the old ones may still be draining.
    wait_for(lambda: containers() == 2, 120, "the old replicas drained and gone")
    done = time.time()
    for loop in loops:
        wait_for(lambda: loop.successes_after(done) >= 10, 60, "calls after the update")
    failed = report(loops, moment, f"rolling update of clock ({done - moment:.1f} s)")
    assert not failed, f"calls failed during the rolling update: {failed[:3]}"


def change_and_remove(orch: Orchestrator, services: SwarmServices, time_server_image: str) -> None:
    ports = {sid: s["host_port"] for sid, s in orch.servers().items() if sid != "priv"}
    # Replicas changed: scaled, the port and the running tasks kept.
    settled = wait_for(
        lambda: (s := replicas_of(orch, "clock", 2)) and len(s["nodes"]) == 2 and s,
        60,
        "clock settled on two nodes",
        explain=orch.diagnosis,
    )
    clock_nodes = set(settled["nodes"])
    orch.write_config(
        {
            "clock": time_server(time_server_image, "-e", "ROLLED=1", replicas=3),  # the rolled spec: a scale only
            "paris": time_server(time_server_image, "-e", "TZ=Europe/Paris"),
        }
    )
    s = wait_for(lambda: replicas_of(orch, "clock", 3), 120, "clock scaled to 3", explain=orch.diagnosis)
    assert clock_nodes < set(s["nodes"]) and s["host_port"] == ports["clock"]

    # A hand stop scales to 0 and stays; a start brings the replicas back.
    orch.action("stop", "clock")
    s = wait_for(lambda: replicas_of(orch, "clock", 0), 60, "clock stopped", explain=orch.diagnosis)
    assert s["status"] == "stopped" and s["stopped_by_hand"]
    orch.action("start", "clock")
    wait_for(lambda: replicas_of(orch, "clock", 3), 120, "clock started again", explain=orch.diagnosis)

    # Out of the configuration: its service goes, the other stays.
    orch.write_config({"paris": time_server(time_server_image, "-e", "TZ=Europe/Paris")})
    wait_for(lambda: set(services.observe()) == {"paris"}, 60, "clock's service removed", explain=orch.diagnosis)
    wait_for(lambda: "clock" not in orch.servers(), 30, "clock gone from the status")
    assert replicas_of(orch, "paris", 2)
