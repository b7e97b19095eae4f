"""Sessions that follow their owner ([cluster] engine = swarm; bridge/owner.py), with two
real bridges standing for two hosts: each bound to its own loopback address (127.0.0.2,
127.0.0.3) at the same port, each serving its own time-server container, both signing
session ids with one cluster key. A request of a session made on one is answered through
the other by forwarding, in both transports, streams included; a forged owner, a host
that left and a host whose replica is gone all give the transport's 404."""

from __future__ import annotations

import json
import socket

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    SseStream,
    containers,
    http_request,
    post_mcp,
    start_bridge,
)

from services.container_agent.bridge.owner import FORWARDED_BY
from tests.harness.waiting import wait_for

pytestmark = pytest.mark.docker

SID = "time"
KEY = b"k" * 32  # the cluster's session key, the same on both hosts
A, B = "nodeaaaaaaaa", "nodebbbbbbbb"
HOSTS = {A: "127.0.0.2", B: "127.0.0.3"}
CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}},
}


def free_port_on_both() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind((HOSTS[A], 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind((HOSTS[B], port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on both addresses")


@pytest.fixture(scope="module")
def hosts(docker_client, containers: Containers, time_server_image):
    port = free_port_on_both()
    bridges: dict[str, RunningBridge] = {}
    try:
        for node, address in HOSTS.items():
            bridges[node] = start_bridge(docker_client, node=node, session_key=KEY, bind_host=address)
            bridges[node].serve(SID, port, containers.run(time_server_image).id)
            assert bridges[node].wait_ready(SID, 60), bridges[node].health(SID)
            bridges[node].set_peers(dict(HOSTS))
        yield port, bridges
    finally:
        for running in bridges.values():
            running.thread.stop()


def post(port: int, node: str, message, session=None, **kw):
    return post_mcp(port, SID, message, session, host=HOSTS[node], **kw)


def initialize_on(port: int, node: str) -> str:
    reply = post(
        port,
        node,
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert reply.status == 200, reply
    session = reply.header("Mcp-Session-Id")
    assert session and session.split(".")[3] == node  # the id names its owner
    return session


def result_text(reply) -> str:
    body = reply.json() if reply.header("content-type").startswith("application/json") else None
    if body is None:
        from bridge_support import sse_events

        body = json.loads(sse_events(reply.body)[-1][1])
    return body["result"]["content"][0]["text"]


def test_a_session_made_on_one_host_is_answered_through_the_other(hosts):
    port, bridges = hosts
    session = initialize_on(port, A)
    assert post(port, B, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session).status == 202
    for node in (B, A, B):
        reply = post(port, node, CALL, session)
        assert reply.status == 200, reply
        assert "Etc/UTC" in result_text(reply) or "timezone" in result_text(reply)
    # Only A holds it: B forwarded and keeps nothing.
    assert bridges[A].health(SID).sessions >= 1
    assert session not in [s.id for s in bridges[B].thread.bridge._servers[SID].sessions.all()]
    # The standing GET stream, opened through B, is A's: it streams back through B.
    stream = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": session}, host=HOSTS[B])
    try:
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert stream.next_comment().startswith(": keep-alive")
    finally:
        stream.close()
    # DELETE through B ends it on A.
    ended = http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers={"Mcp-Session-Id": session}, host=HOSTS[B])
    assert ended.status == 204, ended
    assert post(port, A, CALL, session).status == 404


def test_the_legacy_sse_transport_posts_through_another_host(hosts):
    port, _ = hosts
    stream = SseStream(port, f"/mcp/{SID}/sse", host=HOSTS[A])
    try:
        name, endpoint = stream.next_event()
        assert name == "endpoint" and "sessionId=" in endpoint
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"Content-Type": "application/json"}
        for message in (init, {"jsonrpc": "2.0", "method": "notifications/initialized"}, CALL):
            reply = http_request(port, "POST", endpoint, message, headers, host=HOSTS[B])
            assert reply.status == 202, reply
        answers = [json.loads(stream.next_event()[1]) for _ in range(2)]
        assert [a["id"] for a in answers] == [1, 7] and "content" in answers[1]["result"]
    finally:
        stream.close()


def test_a_forged_or_orphaned_session_gets_404_and_nothing_is_forwarded(hosts):
    port, bridges = hosts
    session = initialize_on(port, A)
    forged = session.replace(A, B)  # names B, but the signature is A's
    reply = post(port, A, CALL, forged)
    assert reply.status == 404 and reply.json()["error"]["message"].startswith("Session not found")
    # A client cannot make B skip the owner: a "forwarded" request is answered where it lands.
    reply = post(port, B, CALL, session, headers={FORWARDED_BY: "x"})
    assert reply.status == 404, reply
    # The owner left the swarm: nowhere to forward.
    bridges[B].set_peers({B: HOSTS[B]})
    try:
        reply = post(port, B, CALL, session)
        assert reply.status == 404 and "has left the swarm" in reply.json()["error"]["message"]
    finally:
        bridges[B].set_peers(dict(HOSTS))
    assert post(port, B, CALL, session).status == 200  # back


def test_a_session_whose_owner_no_longer_runs_a_replica_gets_404(hosts, docker_client, containers, time_server_image):
    port, bridges = hosts
    session = initialize_on(port, A)
    bridges[A].mark_down(SID, "the task was stopped")
    try:
        for node in (A, B):
            reply = post(port, node, CALL, session)
            assert reply.status == 404, reply
            assert "no longer runs a replica" in reply.json()["error"]["message"]
        # A new session, on the host that serves, works.
        fresh = initialize_on(port, B)
        assert post(port, B, CALL, fresh).status == 200
    finally:
        bridges[A].serve(SID, port, containers.run(time_server_image).id)
        wait_for(lambda: bridges[A].wait_ready(SID, 5), 60, "A serving again")
