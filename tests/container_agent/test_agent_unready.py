"""Health that tells the truth: a server that has not answered initialize is not ready.

The real container-agent process with a short `[bridge] initialize_timeout_seconds`, real
containers: one that reads its stdin and never answers, and slow starters. (The world,
agent and HTTP helpers are those of test_agent_containers.py.)
"""

from __future__ import annotations

import json
import time

import pytest
from test_agent_containers import FAKE_SERVER, World, health, http_call, mcp_call, mcp_session, world  # noqa: F401

from common.protocol import ContainerStatusQuery

pytestmark = pytest.mark.docker

MUTE_SCRIPT = "echo 'mute: waiting for a database that never comes' >&2; cat > /dev/null"


def with_initialize_timeout(world: World, seconds: float) -> None:
    world.settings.write_text(world.settings.read_text() + f"[bridge]\ninitialize_timeout_seconds = {seconds}\n")


def serve(world: World, sid: str, script: str) -> None:
    world.servers[sid] = {
        "command": "docker",
        "args": ["run", "-i", "--rm", "--init", "-e", "TOKEN", world.busybox, "sh", "-c", script],
        "env": {"TOKEN": world.secret},
    }
    world.write_config()


def health_body(port: int, sid: str) -> tuple[int, dict]:
    status, _, body = http_call(port, "GET", f"/mcp/{sid}/health")
    return status, json.loads(body)


def initialize_reply(port: int, sid: str) -> tuple[int, dict, float]:
    """A client's initialize: (HTTP status, body, seconds it took)."""
    begun = time.monotonic()
    status, _, body = http_call(
        port,
        "POST",
        f"/mcp/{sid}/mcp",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "agent-test", "version": "1"},
            },
        },
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    return status, json.loads(body), time.monotonic() - begun


def assert_not_ready(agent, port: int, sid: str, reason: str) -> None:
    assert health_body(port, sid) == (503, {"server": sid, "status": "failed", "reason": reason})
    info = agent.call("container.status", ContainerStatusQuery(sid)).containers[0]
    assert (info.state, info.bridge, info.bridge_reason) == ("running", "failed", reason)
    assert "mute: waiting for a database that never comes" in info.stderr_tail
    # A client is refused at once (-32000), never left waiting for an answer that
    # will not come; before the fix it got a session and its calls hung for 300 s.
    status, body, took = initialize_reply(port, sid)
    assert status == 503 and body["error"]["code"] == -32000, body
    assert reason in body["error"]["message"] and took < 1.0


def test_a_server_that_never_answers_initialize_is_not_ready(world):
    with_initialize_timeout(world, 1.5)
    sid = world.sid("mute")
    serve(world, sid, MUTE_SCRIPT)
    agent = world.agent()
    port = world.ports[1]
    info = agent.call("container.ensure", world.ensure_body(sid, port))
    assert info.state == "running"
    reason = "did not answer initialize within 1.5 s"
    failed = agent.event("container.bridge", sid, where=lambda m: m.body.bridge == "failed")
    assert failed.body.message == reason and failed.body.container_id == info.container_id
    assert_not_ready(agent, port, sid, reason)

    # The scheduler ensures it again while it is not served well: it stays not ready
    # (before the fix this re-served it "with assumed capabilities" and /health said 200).
    again = agent.call("container.ensure", world.ensure_body(sid, port))
    assert again.container_id == info.container_id and again.bridge == "failed"
    assert_not_ready(agent, port, sid, reason)

    # A restarted agent adopts it, and does not take its silence for a handshake.
    agent.stop()
    second = world.agent()
    second.event("container.bridge", sid, where=lambda m: m.body.bridge == "failed")
    assert_not_ready(second, port, sid, reason)
    assert world.inspect(info.container_id)["State"]["Status"] == "running"
    assert world.leaked() == []


def test_slow_starters_become_ready(world):
    with_initialize_timeout(world, 3)
    in_time, late = world.sid("slow"), world.sid("late")
    serve(world, in_time, f"sleep 1; {FAKE_SERVER}")
    serve(world, late, f"sleep 5; {FAKE_SERVER}")
    agent = world.agent()
    agent.call("container.ensure", world.ensure_body(in_time, world.ports[1]))
    agent.call("container.ensure", world.ensure_body(late, world.ports[2]))

    # Within the timeout: starting (503), then ready.
    assert agent.event("container.bridge", in_time).body.bridge == "up"
    assert health(world.ports[1], in_time) == 200
    session = mcp_session(world.ports[1], in_time)
    answer, _ = mcp_call(world.ports[1], in_time, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert "result" in answer

    # Past it: not ready with the reason, then ready when the answer comes after all.
    failed = agent.event("container.bridge", late, where=lambda m: m.body.bridge == "failed")
    assert failed.body.message == "did not answer initialize within 3 s"
    assert health(world.ports[2], late) == 503
    up = agent.event("container.bridge", late, where=lambda m: m.body.bridge == "up")
    assert up.ts > failed.ts
    assert health(world.ports[2], late) == 200
    info = agent.call("container.status", ContainerStatusQuery(late)).containers[0]
    assert (info.bridge, info.bridge_reason) == ("ready", "")
    session = mcp_session(world.ports[2], late)
    answer, _ = mcp_call(world.ports[2], late, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert "result" in answer
