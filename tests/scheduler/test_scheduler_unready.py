"""A server that never answers initialize, end to end: real scheduler, container-agent and
alb-agent processes, real Docker. It is not ready (503, the reason shown), MCP requests
fail fast, and the scheduler restarts it with the crash back-off and shows it as
crash-looping; a slow starter that answers within the timeout is served.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid

import pytest

from tests.harness.servers import docker_server, echo_server
from tests.harness.waiting import wait_for
from tests.scheduler.mcp_http import McpError, call_tool
from tests.scheduler.support import Orchestrator

pytestmark = [pytest.mark.docker, pytest.mark.slow]

P = "u" + uuid.uuid4().hex[:6]  # container names are global: ids unique to this run
MUTE, SLOW = f"{P}-mute", f"{P}-slow"
INIT_TIMEOUT = 3
# Reads its stdin and never answers: the shape of a server stuck before its handshake.
MUTE_SCRIPT = "echo 'mute: waiting for a database that never comes' >&2; cat > /dev/null"


def health(port: int, server_id: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", f"/mcp/{server_id}/health")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def slow_starter(busybox: str) -> dict:
    """The echo server, after a pause shorter than the initialize timeout."""
    entry = echo_server(busybox, "slow")
    script = entry["args"][-1]
    entry["args"][-1] = f"sleep 1; {script}"
    return entry


@pytest.fixture(scope="module")
def orch(docker_client, busybox_image):
    o = Orchestrator(docker_client, settings={"bridge": {"initialize_timeout_seconds": INIT_TIMEOUT}})
    mute = docker_server(busybox_image, "sh", "-c", MUTE_SCRIPT, init=True)
    o.write_config({MUTE: mute, SLOW: slow_starter(busybox_image)})
    o.start_all()
    yield o
    o.close()


def test_a_slow_starter_that_answers_in_time_is_served(orch):
    servers = orch.wait_converged({SLOW})
    result = call_tool(servers[SLOW]["host_port"], SLOW, "anything", {})
    assert result["content"][0]["text"] == "slow"
    assert servers[SLOW]["restarts"] == 0


def test_a_server_that_never_initializes_crash_loops_with_its_reason(orch, docker_client):
    seen: list[float] = []
    started: set[str] = set()

    def growing():
        s = orch.servers().get(MUTE) or {}
        container = orch.containers().get(MUTE)
        if container is not None:
            started.add(container.attrs["State"]["StartedAt"])
        if s.get("status") == "crash-looping" and s.get("backoff_seconds"):
            if not seen or s["backoff_seconds"] > seen[-1]:
                seen.append(s["backoff_seconds"])
        return len(seen) >= 3 and s

    mute = wait_for(growing, 120, "a crash loop with a growing back-off", explain=orch.diagnosis)
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert mute["failures"] >= 3 and mute["restarts"] >= 3
    assert f"did not answer initialize within {INIT_TIMEOUT} s" in mute["last_error"]
    assert any("never comes" in line for line in mute["stderr_tail"])
    assert mute["next_restart_at"] is not None
    assert len(started) >= 3  # the same container, restarted each time

    # Its port answers and says why it is not ready; MCP requests fail at once.
    port = mute["host_port"]
    reason = f"did not answer initialize within {INIT_TIMEOUT} s"
    wait_for(
        lambda: health(port, MUTE) == (503, {"server": MUTE, "status": "failed", "reason": reason}),
        60,
        "/health to say why the server is not ready",
    )
    begun = time.monotonic()
    with pytest.raises(McpError, match="-32000") as failed:
        call_tool(port, MUTE, "anything", {}, timeout=30)
    assert time.monotonic() - begun < 2, "the request waited instead of failing at once"
    assert reason in str(failed.value)

    # The crash is an event with its reason, and the healthy server is untouched.
    events = orch.request("snapshot.get").state["events"]
    assert any(
        e.get("server_id") == MUTE and e.get("code") == "crash" and "did not answer initialize" in e.get("message", "")
        for e in events
    )
    assert orch.servers()[SLOW]["status"] == "running"
