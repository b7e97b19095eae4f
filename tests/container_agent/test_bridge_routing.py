"""One stdio session shared by many HTTP sessions: what goes where.

The scripted busybox MCP server (bridge_support.FAKE_SERVER) sends progress,
list-changed notifications, garbage and server-to-client requests on demand.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    ACCEPT_BOTH,
    Containers,
    RunningBridge,
    SseStream,
    bridge,
    containers,
    http_request,
    initialize,
    post_mcp,
    serve_ready,
    sse_events,
    start_bridge,
)

from tests.harness.waiting import wait_for

pytestmark = pytest.mark.docker

SID = "route"


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, busybox_image) -> int:
    return serve_ready(bridge, SID, containers.fake_server(busybox_image))


@pytest.fixture
def pool():
    with ThreadPoolExecutor(4) as executor:
        yield executor


def inflight(bridge: RunningBridge, server_id: str, n: int) -> bool:
    health = bridge.health(server_id)
    return health is not None and health.pending_requests == n


def test_progress_goes_to_the_stream_of_its_request(port):
    session = initialize(port, SID)
    request = {"jsonrpc": "2.0", "id": "p1", "method": "test/progress", "params": {"_meta": {"progressToken": "tok-A"}}}
    reply = post_mcp(port, SID, request, session)
    assert reply.status == 200 and reply.header("Content-Type") == "text/event-stream"
    events = [json.loads(data) for _, data in sse_events(reply.body)]
    assert events == [
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": "tok-A", "progress": 1, "total": 2},
        },
        {"jsonrpc": "2.0", "id": "p1", "result": {"done": True}},
    ]


def test_progress_for_a_json_only_client_takes_its_standing_stream(port):
    session = initialize(port, SID)
    stream = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": session})
    try:
        request = {"jsonrpc": "2.0", "id": 9, "method": "test/progress", "params": {"_meta": {"progressToken": 42}}}
        reply = post_mcp(port, SID, request, session, headers={"Accept": "application/json"})
        assert reply.status == 200 and reply.json() == {"jsonrpc": "2.0", "id": 9, "result": {"done": True}}
        event, data = stream.next_event()
        assert json.loads(data)["params"]["progressToken"] == 42
    finally:
        stream.close()


def test_list_changed_reaches_every_open_stream(port):
    listeners = [initialize(port, SID) for _ in range(3)]
    caller = initialize(port, SID)
    streams = [SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": s}) for s in listeners]
    legacy = SseStream(port, f"/mcp/{SID}/sse")
    try:
        assert all(s.status == 200 for s in streams)
        legacy.next_event()  # endpoint
        reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "test/broadcast"}, caller)
        assert reply.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        for stream in streams + [legacy]:
            assert stream.next_event() == ("message", '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}')
    finally:
        for stream in streams + [legacy]:
            stream.close()


def test_concurrent_sessions_with_the_same_ids_get_their_own_answers(port, pool):
    sessions = [initialize(port, SID) for _ in range(8)]

    def call(session: str, n: int):
        return post_mcp(
            port,
            SID,
            {"jsonrpc": "2.0", "id": 1, "method": "test/progress", "params": {"_meta": {"progressToken": 1}}},
            session,
            headers={"Accept": "text/event-stream", "X-N": str(n)},
        )

    replies = list(pool.map(call, sessions, range(8)))
    for reply in replies:
        events = [json.loads(d) for _, d in sse_events(reply.body)]
        assert events[0]["params"]["progressToken"] == 1
        assert events[-1] == {"jsonrpc": "2.0", "id": 1, "result": {"done": True}}


def test_non_json_stdout_is_logged_and_skipped(port, caplog):
    session = initialize(port, SID)
    with caplog.at_level(logging.WARNING, logger="services.container_agent.bridge"):
        reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "g", "method": "test/garbage"}, session)
    # The answer puts its id last: re-addressed by the parsing path.
    assert reply.json() == {"jsonrpc": "2.0", "id": "g", "result": {"after": "garbage"}}
    assert any(
        "route" in r.getMessage() and "non-JSON" in r.getMessage() and "21 bytes" in r.getMessage()
        for r in caplog.records
    )
    assert not any("this line is not JSON" in r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


def test_a_server_request_a_client_did_not_declare_is_refused(port):
    session = initialize(port, SID)  # no sampling capability
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "ask-0", "method": "test/ask"}, session)
    error = reply.json()["result"]["reply"]["error"]  # what the server got back
    assert error["code"] == -32601 and "did not declare sampling" in error["message"]


def test_server_request_goes_to_the_only_client_that_can_answer(port):
    session = initialize(port, SID, capabilities={"sampling": {}})
    call = SseStream(
        port,
        f"/mcp/{SID}/mcp",
        {"Mcp-Session-Id": session, "Content-Type": "application/json", "Accept": ACCEPT_BOTH},
        method="POST",
        body={"jsonrpc": "2.0", "id": "ask-1", "method": "test/ask"},
    )
    try:
        assert call.status == 200 and call.headers["content-type"] == "text/event-stream"
        event, data = call.next_event()
        asked = json.loads(data)
        assert asked["method"] == "sampling/createMessage" and asked["id"] == "srv-1"
        answer = {
            "jsonrpc": "2.0",
            "id": "srv-1",
            "result": {"role": "assistant", "model": "m", "content": {"type": "text", "text": "hi"}},
        }
        assert post_mcp(port, SID, answer, session).status == 202
        event, data = call.next_event()
        final = json.loads(data)
        assert final["id"] == "ask-1"
        assert final["result"]["reply"] == answer
    finally:
        call.close()


def test_server_request_with_several_possible_clients_is_refused(bridge: RunningBridge, port, pool):
    busy = initialize(port, SID)
    waiting = pool.submit(post_mcp, port, SID, {"jsonrpc": "2.0", "id": "s", "method": "test/slow"}, busy)
    wait_for(lambda: inflight(bridge, SID, 1), what="the slow request to be pending")
    asker = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "a", "method": "test/ask"}, asker)
    refused = reply.json()["result"]["reply"]
    assert refused["id"] == "srv-1" and refused["error"]["code"] == -32601
    assert "cannot route sampling/createMessage" in refused["error"]["message"]
    # Ending the busy session fails its pending request at once.
    assert http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers={"Mcp-Session-Id": busy}).status == 204
    ended = waiting.result(timeout=20).json()
    assert ended["id"] == "s" and ended["error"]["code"] == -32000
    assert "terminated the session" in ended["error"]["message"]


def test_server_ping_is_answered_by_the_bridge(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 3, "method": "test/ping-bridge"}, session)
    assert reply.json()["result"]["reply"] == {"jsonrpc": "2.0", "id": "srv-ping", "result": {}}


def test_client_cancellation_ends_the_request(bridge: RunningBridge, port, pool):
    session = initialize(port, SID)
    waiting = pool.submit(post_mcp, port, SID, {"jsonrpc": "2.0", "id": 77, "method": "test/slow"}, session)
    wait_for(lambda: inflight(bridge, SID, 1), what="the slow request to be pending")
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77, "reason": "user"}}
    assert post_mcp(port, SID, cancel, session).status == 202
    answer = waiting.result(timeout=20).json()
    assert answer["id"] == 77 and answer["error"]["code"] == -32800
    assert inflight(bridge, SID, 0)
    # The server got the cancellation under the id the bridge gave the request.
    line = wait_for(
        lambda: [t for t in bridge.stderr_tail(SID, 20) if t.startswith("cancelled:") and '"user"' in t],
        what="the server to see the cancellation",
    )[-1]
    forwarded = json.loads(line[len("cancelled: ") :])
    assert forwarded["params"]["reason"] == "user"
    assert isinstance(forwarded["params"]["requestId"], int) and forwarded["params"]["requestId"] != 77


def test_stderr_lines_are_kept(bridge: RunningBridge, port):
    session = initialize(port, SID)
    post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "test/stderr"}, session)
    wait_for(lambda: "fake server: a line on stderr" in bridge.stderr_tail(SID, 10), what="the stderr line")


def test_a_new_get_stream_replaces_the_old_one_and_delete_ends_it(port):
    session = initialize(port, SID)
    first = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": session})
    second = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": session})
    try:
        with pytest.raises(EOFError):
            first.next_event()
        assert http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers={"Mcp-Session-Id": session}).status == 204
        with pytest.raises(EOFError):
            second.next_event()
    finally:
        first.close()
        second.close()


# --- timing behaviour, on bridges with short settings ----------------------------------------


def test_timeouts_keepalives_and_expiry(docker_client, containers: Containers, busybox_image):
    quick = start_bridge(
        docker_client, request_timeout_seconds=1.0, sse_keepalive_seconds=0.2, session_idle_timeout_seconds=1.0
    )
    try:
        port = serve_ready(quick, "quick", containers.fake_server(busybox_image))
        session = initialize(port, "quick")

        # A request the server never answers: a JSON-RPC error, not a hang.
        reply = post_mcp(
            port,
            "quick",
            {"jsonrpc": "2.0", "id": "t", "method": "test/slow"},
            session,
            headers={"Accept": "application/json"},
        )
        assert reply.status == 200
        assert reply.json() == {
            "jsonrpc": "2.0",
            "id": "t",
            "error": {"code": -32001, "message": "MCP server 'quick' did not answer test/slow within 1 s"},
        }

        # A client that takes SSE sees a long call turn into a stream with keep-alives.
        reply = post_mcp(port, "quick", {"jsonrpc": "2.0", "id": "u", "method": "test/slow"}, session)
        assert reply.header("Content-Type") == "text/event-stream"
        assert b": keep-alive\n\n" in reply.body
        assert json.loads(sse_events(reply.body)[-1][1])["error"]["code"] == -32001

        # An idle GET stream gets comment lines.
        stream = SseStream(port, "/mcp/quick/mcp", {"Mcp-Session-Id": session})
        try:
            assert stream.next_comment() == ": keep-alive"
            assert stream.next_comment() == ": keep-alive"
        finally:
            stream.close()

        # Sessions left alone expire (watched in the table: a request would keep them alive).
        idle = initialize(port, "quick")
        wait_for(lambda: quick.health("quick").sessions == 0, timeout=30, what="idle sessions to expire")
        reply = post_mcp(port, "quick", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, idle)
        assert reply.status == 404 and "session not found" in reply.json()["error"]["message"].lower()
    finally:
        quick.thread.stop()


def test_list_answers_are_shared_until_the_server_says_the_list_changed(bridge, port):
    """tools/list without params reaches the server once for all sessions; a
    list_changed notification makes the next one go to the server again."""

    def reached_server() -> int:
        return sum("tools/list answered" in line for line in bridge.stderr_tail(SID, 200))

    def list_tools(session: str, rid: int, params=None) -> None:
        msg = {"jsonrpc": "2.0", "id": rid, "method": "tools/list"}
        if params is not None:
            msg["params"] = params
        reply = post_mcp(port, SID, msg, session)
        assert reply.json() == {"jsonrpc": "2.0", "id": rid, "result": {"tools": []}}

    def settle(expected_at_least: int) -> int:
        # stderr lines arrive in order: once the last marker is seen, all are
        wait_for(lambda: reached_server() >= expected_at_least, timeout=20)
        return reached_server()

    a, b = initialize(port, SID), initialize(port, SID)
    start = reached_server()
    list_tools(a, 1)
    list_tools(b, 2)
    list_tools(a, 3)
    list_tools(b, 4, params={"cursor": "page-2"})  # a cursor always goes to the server
    seen = settle(start + 1)
    assert seen - start in (1, 2), "the three plain lists reached the server more than once"

    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 5, "method": "test/broadcast"}, a)
    assert reply.json()["result"] == {}
    list_tools(b, 6)  # the list changed: asked again
    list_tools(a, 7)  # and cached again
    list_tools(b, 8, params={"cursor": "page-2"})
    assert settle(seen + 2) == seen + 2


def test_a_log_message_reaches_only_the_client_whose_call_produced_it(port):
    bystander, caller = initialize(port, SID), initialize(port, SID)
    stream = SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": bystander})
    try:
        reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "L", "method": "test/log"}, caller)
        events = [json.loads(data) for _, data in sse_events(reply.body)]
        assert events[0]["method"] == "notifications/message" and events[-1] == {
            "jsonrpc": "2.0",
            "id": "L",
            "result": {},
        }
        # The bystander's stream gets the next broadcast, and never the caller's log.
        post_mcp(port, SID, {"jsonrpc": "2.0", "id": 2, "method": "test/broadcast"}, caller)
        assert stream.next_event() == ("message", '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}')
    finally:
        stream.close()


def test_nothing_of_one_clients_calls_reaches_another(port):
    """Two clients share the server's one stdio session. Everything one of them causes
    (its result, its progress, its log message, the update of the resource it alone
    subscribed) reaches it alone: the other's standing stream gets nothing of it, and
    its first message is the next list change, which is everyone's."""
    mine, other = initialize(port, SID), initialize(port, SID)
    streams = {s: SseStream(port, f"/mcp/{SID}/mcp", {"Mcp-Session-Id": s}) for s in (mine, other)}
    try:
        subscribe = {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": "file:///a"}}
        assert post_mcp(port, SID, subscribe, mine).json()["result"] == {}
        logged = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 2, "method": "test/log"}, mine)
        assert json.loads(sse_events(logged.body)[0][1])["method"] == "notifications/message"
        progress = {"jsonrpc": "2.0", "id": 3, "method": "test/progress", "params": {"_meta": {"progressToken": 9}}}
        events = [json.loads(d) for _, d in sse_events(post_mcp(port, SID, progress, mine).body)]
        assert events[0]["params"]["progressToken"] == 9 and events[-1]["id"] == 3
        assert post_mcp(port, SID, {"jsonrpc": "2.0", "id": 4, "method": "test/update"}, mine).status == 200
        update = json.loads(streams[mine].next_event()[1])
        assert update == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "file:///a"},
        }
        post_mcp(port, SID, {"jsonrpc": "2.0", "id": 5, "method": "test/broadcast"}, other)
        for session in (other, mine):
            assert json.loads(streams[session].next_event()[1])["method"] == "notifications/tools/list_changed"
    finally:
        for stream in streams.values():
            stream.close()
