"""When the container dies, hangs or never starts: fast errors, 503, and a way back."""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    http_request,
    initialize,
    post_mcp,
    serve_ready,
    start_bridge,
)

from services.container_agent.bridge import BridgeError
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.docker


def pending(bridge: RunningBridge, server_id: str) -> int:
    health = bridge.health(server_id)
    return health.pending_requests if health else -1


def test_docker_kill_fails_pending_requests_at_once_and_health_turns_503(
    bridge: RunningBridge, containers: Containers, busybox_image
):
    container = containers.fake_server(busybox_image)
    port = serve_ready(bridge, "killed", container)
    bridge.next_event("killed", "up")
    session = initialize(port, "killed")
    with ThreadPoolExecutor(4) as pool:
        waiting = [
            pool.submit(post_mcp, port, "killed", {"jsonrpc": "2.0", "id": n, "method": "test/slow"}, session)
            for n in range(3)
        ]
        wait_for(lambda: pending(bridge, "killed") == 3, what="three pending requests")
        container.kill()
        # The default request timeout is 300 s: an answer within 20 s is the container's death.
        for n, future in enumerate(waiting):
            answer = future.result(timeout=20)
            assert answer.status == 200
            body = answer.json()
            assert body["id"] == n and body["error"]["code"] == -32000
            assert "MCP server 'killed' is unavailable" in body["error"]["message"]

    event = bridge.next_event("killed", "down")
    assert event.container_id == container.id
    health = http_request(port, "GET", "/mcp/killed/health")
    assert health.status == 503
    assert health.json()["status"] == "down" and health.json()["reason"]
    assert bridge.health("killed").state == "down"

    # Until it is served again, MCP requests get 503 with a JSON-RPC error body.
    reply = post_mcp(port, "killed", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, session)
    assert reply.status == 503 and reply.json()["error"]["code"] == -32000
    reply = post_mcp(port, "killed", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert reply.status == 503
    assert http_request(port, "GET", "/mcp/killed/sse").status == 503

    # A new container on the same port: served again, and the HTTP session carries over.
    replacement = containers.fake_server(busybox_image)
    assert serve_ready(bridge, "killed", replacement, port) == port
    assert bridge.next_event("killed", "up").container_id == replacement.id
    assert http_request(port, "GET", "/mcp/killed/health").status == 200
    reply = post_mcp(port, "killed", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert reply.status == 200 and reply.json()["result"] == {"tools": []}
    bridge.unserve("killed")


def test_a_server_that_exits_reports_down_and_keeps_its_stderr(
    bridge: RunningBridge, containers: Containers, busybox_image
):
    container = containers.fake_server(busybox_image)
    port = serve_ready(bridge, "exits", container)
    session = initialize(port, "exits")
    reply = post_mcp(port, "exits", {"jsonrpc": "2.0", "id": "x", "method": "test/exit"}, session)
    assert reply.json()["error"]["code"] == -32000
    assert bridge.next_event("exits", "down").reason
    assert container.wait(timeout=30)["StatusCode"] == 3
    assert "fake server: exiting with 3" in bridge.stderr_tail("exits", 5)
    assert http_request(port, "GET", "/mcp/exits/health").status == 503
    bridge.unserve("exits")


def test_a_server_that_never_initializes_is_not_ready(docker_client, containers: Containers, busybox_image):
    slow = start_bridge(docker_client, initialize_timeout_seconds=1.0)
    try:
        container = containers.run(busybox_image, ["sh", "-c", "cat > /dev/null"])
        port = slow.serve("mute", 0, container.id)
        assert slow.wait_ready("mute", 30) is False
        event = slow.next_event("mute", "failed")
        assert event.reason == "did not answer initialize within 1 s"
        assert slow.health("mute").state == "failed"
        health = http_request(port, "GET", "/mcp/mute/health")
        assert health.status == 503
        assert health.json() == {"server": "mute", "status": "failed", "reason": event.reason}
        reply = post_mcp(port, "mute", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
        assert reply.status == 503 and event.reason in reply.json()["error"]["message"]
        # Restarted (a new run, silent again): while it starts, clients are not held.
        slow.serve("mute", port, containers.run(busybox_image, ["sh", "-c", "cat > /dev/null"]).id)
        assert slow.health("mute").state == "starting"
        begun = time.monotonic()
        reply = post_mcp(port, "mute", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
        assert reply.status == 503 and reply.json()["error"]["code"] == -32000
        assert time.monotonic() - begun < 0.5
        assert slow.next_event("mute", "failed").reason == event.reason
    finally:
        slow.thread.stop()
    # Adopted by a restarted agent, its silence is still no handshake.
    second = start_bridge(docker_client, initialize_timeout_seconds=1.0)
    try:
        assert second.serve("mute", port, container.id, adopted=True) == port
        assert second.wait_ready("mute", 30) is False
        assert second.next_event("mute", "failed").reason == event.reason
        assert http_request(port, "GET", "/mcp/mute/health").status == 503
    finally:
        second.thread.stop()


def test_serve_errors_are_clear(bridge: RunningBridge, containers: Containers, busybox_image):
    port = serve_ready(bridge, "first", containers.fake_server(busybox_image))
    try:
        with pytest.raises(BridgeError, match=f"port {port} is already serving first"):
            bridge.serve("second", port, containers.fake_server(busybox_image).id)
        with pytest.raises(BridgeError, match="does not exist"):
            bridge.serve("ghost", 0, "f" * 64)
        assert bridge.health("ghost").state == "down"
        ghost_port = bridge.health("ghost").port
        assert http_request(ghost_port, "GET", "/mcp/ghost/health").status == 503
        with pytest.raises(BridgeError, match="invalid server id"):
            bridge.serve("a/b", 0, "x")
    finally:
        bridge.unserve("first")
        bridge.unserve("ghost")


def test_unserve_fails_pending_requests_and_closes_the_port(
    bridge: RunningBridge, containers: Containers, busybox_image
):
    port = serve_ready(bridge, "going", containers.fake_server(busybox_image))
    session = initialize(port, "going")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(post_mcp, port, "going", {"jsonrpc": "2.0", "id": 1, "method": "test/slow"}, session)
        wait_for(lambda: pending(bridge, "going") == 1, what="a pending request")
        assert bridge.unserve("going") is True
        body = waiting.result(timeout=20).json()
        assert body["error"]["code"] == -32000
    assert bridge.health("going") is None
    assert bridge.unserve("going") is False
    with pytest.raises(ConnectionRefusedError):
        http_request(port, "GET", "/mcp/going/health")


def test_a_restarted_agent_adopts_the_running_container(
    docker_client, containers: Containers, time_server_image, busybox_image
):
    time_server = containers.run(time_server_image)
    strict = containers.fake_server(busybox_image, strict=True)
    first = start_bridge(docker_client)
    try:
        time_port = serve_ready(first, "adopt-time", time_server)
        strict_port = serve_ready(first, "adopt-strict", strict)
    finally:
        first.thread.stop()  # the agent process goes away; the containers keep running

    second = start_bridge(docker_client)
    try:
        assert second.serve("adopt-time", time_port, time_server.id, adopted=True) == time_port
        assert second.serve("adopt-strict", strict_port, strict.id, adopted=True) == strict_port
        assert second.wait_ready("adopt-time", 30) and second.wait_ready("adopt-strict", 30)

        session = initialize(time_port, "adopt-time")
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {
                "name": "convert_time",
                "arguments": {"source_timezone": "UTC", "time": "08:15", "target_timezone": "Asia/Tokyo"},
            },
        }
        body = post_mcp(time_port, "adopt-time", call, session).json()
        assert body["result"]["structuredContent"]["target"]["datetime"][11:16] == "17:15"

        # A server that refuses a second initialize is served anyway.
        assert second.health("adopt-strict").reason == "adopted without a new handshake"
        session = initialize(strict_port, "adopt-strict")
        reply = post_mcp(strict_port, "adopt-strict", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
        assert reply.json() == {"jsonrpc": "2.0", "id": 2, "result": {"tools": []}}
        for container in (time_server, strict):
            container.reload()
            assert container.status == "running" and container.attrs["RestartCount"] == 0
    finally:
        second.thread.stop()


def test_a_stop_answers_the_next_request_of_an_idle_connection_then_closes_it(
    docker_client, containers: Containers, busybox_image
):
    """A keep-alive connection must not outlive the sessions (a request on it after they
    end would get 404 where the next process would have served it), nor be closed under
    a request the client is sending on it (which would fail unanswered): while the stop
    drains, its next request is answered with `Connection: close`; a quiet one is closed
    after a grace, before the sessions end."""
    stopping = start_bridge(docker_client, drain_seconds=5.0)
    stopper = None
    try:
        port = serve_ready(stopping, "stopping", containers.fake_server(busybox_image))
        session = initialize(port, "stopping")
        busy, quiet = (http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(2))
        for connection in (busy, quiet):
            connection.request("GET", "/mcp/stopping/health")
            assert connection.getresponse().read() and connection.sock is not None  # kept alive
        with ThreadPoolExecutor(2) as pool:
            slow = {"jsonrpc": "2.0", "id": 1, "method": "test/slow"}
            waiting = pool.submit(post_mcp, port, "stopping", slow, session)
            wait_for(lambda: pending(stopping, "stopping") == 1, what="a pending request")
            stopper = pool.submit(stopping.thread.stop)
            wait_for(lambda: stopping.thread.bridge._stopping, what="the stop to begin")
            busy.request("GET", "/mcp/stopping/health")
            answer = busy.getresponse()
            assert answer.status == 200 and answer.getheader("Connection") == "close"
            answer.read()
            assert not stopper.done(), "the drain still waits for the request in flight"
            assert waiting.result(timeout=20).json()["error"]["code"] == -32000  # after drain_seconds
            quiet.sock.settimeout(5)
            assert quiet.sock.recv(1) == b""  # closed by the stop, not reset by the end of it
            stopper.result(timeout=20)
        busy.close()
        quiet.close()
    finally:
        if stopper is None:
            stopping.thread.stop()
