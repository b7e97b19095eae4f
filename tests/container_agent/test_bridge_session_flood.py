"""A session flood from one address: it holds 64 streams open and sends 10,000 initialize
requests (answered from the bridge's cache, so they cost the attacker little). Legitimate
sessions from another address stay alive, and new ones are accepted."""

from __future__ import annotations

import http.client
import json

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    ACCEPT_BOTH,
    Containers,
    SseStream,
    containers,
    initialize,
    post_mcp,
    serve_ready,
    start_bridge,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SID = "fake"
FLOOD = 10_000
HELD_STREAMS = 64
INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "flood", "version": "1"},
        },
    }
)
HEADERS = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}


@pytest.fixture
def port(docker_client, containers: Containers, busybox_image):
    running = start_bridge(docker_client)
    yield serve_ready(running, SID, containers.fake_server(busybox_image))
    running.thread.stop()


def attacker(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.2", 0))


def attacker_session(conn: http.client.HTTPConnection) -> str:
    conn.request("POST", f"/mcp/{SID}/mcp", INIT, HEADERS)
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 200
    return reply.getheader("Mcp-Session-Id")


def test_a_session_flood_leaves_other_clients_served(port):
    legit = [initialize(port, SID) for _ in range(5)]
    conn = attacker(port)
    held = []
    try:
        for _ in range(HELD_STREAMS):
            stream = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": attacker_session(conn)})
            held.append(stream)
        statuses: dict[int, int] = {}
        for _ in range(FLOOD):
            conn.request("POST", f"/mcp/{SID}/mcp", INIT, HEADERS)
            reply = conn.getresponse()
            reply.read()
            statuses[reply.status] = statuses.get(reply.status, 0) + 1
        print(f"the flood's answers by status: {statuses}")
        # Every legitimate session still works, and a new one is made.
        for session in legit + [initialize(port, SID)]:
            call = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, session)
            assert call.status == 200 and "result" in call.json(), call
    finally:
        conn.close()
        for stream in held:
            stream.close()
