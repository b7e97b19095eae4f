"""The bridge's HTTP surface on a real container: every bad input with its status and error body.

The server behind is the scripted busybox MCP server (bridge_support.FAKE_SERVER).
"""

from __future__ import annotations

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
)

pytestmark = pytest.mark.docker

SID = "fake"


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, busybox_image) -> int:
    return serve_ready(bridge, SID, containers.fake_server(busybox_image))


def assert_error(reply, status: int, code: int, words: str) -> dict:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.header("Content-Type").startswith("application/json")
    body = reply.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == code, body
    assert words.lower() in body["error"]["message"].lower(), body
    return body


# --- the happy path in raw HTTP ----------------------------------------------------


def test_initialize_call_delete(port):
    reply = post_mcp(
        port,
        SID,
        {"jsonrpc": "2.0", "id": "init-1", "method": "initialize", "params": {"protocolVersion": "2025-03-26"}},
    )
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    session = reply.header("Mcp-Session-Id")
    assert session and session.isascii() and len(session) >= 32
    result = reply.json()
    assert result["id"] == "init-1"
    assert result["result"]["protocolVersion"] == "2025-03-26"
    assert result["result"]["serverInfo"] == {"name": "fake", "version": "1.0"}

    call = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}, session)
    assert call.status == 200 and call.json() == {"jsonrpc": "2.0", "id": 7, "result": {"tools": []}}

    gone = http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers={"Mcp-Session-Id": session})
    assert gone.status == 204 and gone.body == b""
    after = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}, session)
    assert_error(after, 404, -32000, "session not found")


def test_protocol_version_is_negotiated(port):
    def version(asked):
        reply = post_mcp(
            port, SID, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": asked}}
        )
        return reply.json()["result"]["protocolVersion"]

    assert version("2024-11-05") == "2024-11-05"
    assert version("2025-06-18") == "2025-06-18"
    assert version("2025-11-25") == "2025-06-18"  # the fake server speaks 2025-06-18
    assert version("1999-01-01") == "2025-06-18"


def test_notifications_and_responses_get_202(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}, session)
    assert reply.status == 202 and reply.body == b""
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "nobody-asked", "result": {}}, session)
    assert reply.status == 202


def test_a_batch_is_answered_as_an_array(port):
    session = initialize(port, SID)
    reply = post_mcp(
        port,
        SID,
        [
            {"jsonrpc": "2.0", "id": "a", "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}},
            {"jsonrpc": "2.0", "id": "b", "method": "tools/list"},
            {"jsonrpc": "2.0", "id": "c"},
        ],
        session,
    )
    assert reply.status == 200
    answers = {a["id"]: a for a in reply.json()}
    assert answers["a"]["result"] == {} and answers["b"]["result"] == {"tools": []}
    assert answers["c"]["error"]["code"] == -32600


def test_sse_only_client_gets_a_stream(port):
    session = initialize(port, SID)
    reply = post_mcp(
        port, SID, {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, session, headers={"Accept": "text/event-stream"}
    )
    assert reply.status == 200 and reply.header("Content-Type") == "text/event-stream"
    assert sse_events(reply.body) == [("message", '{"jsonrpc":"2.0","id":5,"result":{"tools":[]}}')]


def test_trailing_slash_is_the_same_endpoint_and_nothing_redirects(port):
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, headers={})
    assert reply.status == 200
    slash = http_request(
        port,
        "POST",
        f"/mcp/{SID}/mcp/",
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        {"Content-Type": "application/json", "Accept": ACCEPT_BOTH},
    )
    assert slash.status == 200
    for path in (f"/mcp/{SID}", f"/mcp/{SID}/", "/mcp", "/", f"/mcp/{SID}/mcp/x"):
        assert http_request(port, "GET", path).status == 404, path


# --- session errors ---------------------------------------------------------------------


def test_request_without_session_is_400(port):
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert_error(reply, 400, -32000, "Mcp-Session-Id")
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert_error(reply, 400, -32000, "Mcp-Session-Id")
    stream = http_request(port, "GET", f"/mcp/{SID}/mcp", headers={"Accept": "text/event-stream"})
    assert_error(stream, 400, -32000, "Mcp-Session-Id")
    delete = http_request(port, "DELETE", f"/mcp/{SID}/mcp")
    assert_error(delete, 400, -32000, "Mcp-Session-Id")


def test_unknown_session_is_404(port):
    unknown = {"Mcp-Session-Id": "0123456789abcdef0123456789abcdef"}
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=unknown)
    assert assert_error(reply, 404, -32000, "session not found")["id"] == 1  # the body was read: its id comes back
    without = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "q", "method": "tools/list"})
    assert assert_error(without, 400, -32000, "Mcp-Session-Id")["id"] == "q"
    stream = http_request(port, "GET", f"/mcp/{SID}/mcp", headers={"Accept": "text/event-stream", **unknown})
    assert_error(stream, 404, -32000, "session not found")
    delete = http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers=unknown)
    assert_error(delete, 404, -32000, "session not found")


def test_legacy_session_is_not_a_streamable_session(port):
    stream = SseStream(port, f"/mcp/{SID}/sse")
    try:
        event, endpoint = stream.next_event()
        legacy_id = endpoint.split("sessionId=")[1]
        reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, legacy_id)
        assert_error(reply, 404, -32000, "session not found")
    finally:
        stream.close()


# --- malformed input -----------------------------------------------------------------------


def test_malformed_json_is_a_parse_error(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, b'{"jsonrpc": "2.0", "id": 1, "method": ', session)
    body = assert_error(reply, 400, -32700, "parse error")
    assert body["id"] is None
    reply = post_mcp(port, SID, b"\xff\xfe not utf-8", session)
    assert_error(reply, 400, -32700, "parse error")


def test_invalid_messages_are_invalid_requests(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "1.0", "id": 3, "method": "x"}, session)
    body = assert_error(reply, 400, -32600, "invalid request")
    assert body["id"] == 3
    reply = post_mcp(port, SID, [], session)
    assert_error(reply, 400, -32600, "empty batch")
    reply = post_mcp(port, SID, b'"just a string"', session)
    assert_error(reply, 400, -32600, "must be an object")
    reply = post_mcp(port, SID, [{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}], session)
    assert_error(reply, 400, -32600, "batch")


def test_unknown_method_comes_back_from_the_server(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": "m", "method": "no/such"}, session)
    assert reply.status == 200
    assert reply.json() == {"jsonrpc": "2.0", "id": "m", "error": {"code": -32601, "message": "no such method"}}


def test_body_over_the_limit_is_413(docker_client, containers: Containers, busybox_image):
    from bridge_support import start_bridge

    small = start_bridge(docker_client, max_body_bytes=1024)
    try:
        port = serve_ready(small, "tiny", containers.fake_server(busybox_image))
        session = initialize(port, "tiny")
        big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"arguments": {"text": "x" * 2000}}}
        assert_error(post_mcp(port, "tiny", big, session), 413, -32600, "1024 bytes")
        # Without Content-Length (chunked), the limit holds as the body streams in.
        chunks = (b'{"pad":"' + b"x" * 600 + b'"', b',"more":"' + b"y" * 600 + b'"}')
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/mcp/tiny/mcp",
            body=iter(chunks),
            headers={"Content-Type": "application/json", "Mcp-Session-Id": session},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        conn.close()
        stream = SseStream(port, "/mcp/tiny/sse")
        try:
            _, endpoint = stream.next_event()
            assert_error(http_request(port, "POST", endpoint, big), 413, -32600, "1024 bytes")
        finally:
            stream.close()
    finally:
        small.thread.stop()


def test_wrong_content_type_is_415(port):
    session = initialize(port, SID)
    reply = post_mcp(
        port, SID, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session, headers={"Content-Type": "text/plain"}
    )
    assert_error(reply, 415, -32000, "application/json")


def test_unacceptable_accept_is_406(port):
    session = initialize(port, SID)
    reply = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session, headers={"Accept": "text/html"})
    assert_error(reply, 406, -32000, "Not Acceptable")
    stream = http_request(
        port, "GET", f"/mcp/{SID}/mcp", headers={"Accept": "application/json", "Mcp-Session-Id": session}
    )
    assert_error(stream, 406, -32000, "text/event-stream")


def test_unsupported_protocol_version_header_is_400(port):
    session = initialize(port, SID)
    for bad in ("1900-01-01", "not-a-version"):
        reply = post_mcp(
            port, SID, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, session, headers={"MCP-Protocol-Version": bad}
        )
        assert_error(reply, 400, -32000, "MCP-Protocol-Version")
    ok = post_mcp(
        port,
        SID,
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        session,
        headers={"MCP-Protocol-Version": "2025-06-18"},
    )
    assert ok.status == 200


def test_unsupported_methods_are_405(port):
    for method in ("PUT", "PATCH"):
        reply = http_request(port, method, f"/mcp/{SID}/mcp", b"{}")
        body = assert_error(reply, 405, -32000, "Method Not Allowed")
        assert reply.header("Allow") == "GET, POST, DELETE", body
    assert http_request(port, "POST", f"/mcp/{SID}/sse", b"{}").status == 405
    assert http_request(port, "POST", f"/mcp/{SID}/sse").header("Allow") == "GET"
    assert http_request(port, "GET", f"/mcp/{SID}/messages").header("Allow") == "POST"
    assert http_request(port, "POST", f"/mcp/{SID}/health").status == 405


def test_disallowed_origin_is_403(port):
    reply = post_mcp(
        port,
        SID,
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        headers={"Origin": "http://evil.example"},
    )
    assert_error(reply, 403, -32000, "Origin")
    assert http_request(port, "GET", f"/mcp/{SID}/sse", headers={"Origin": "http://evil.example"}).status == 403


def test_allowed_origin_gets_cors_headers(docker_client, containers: Containers, busybox_image):
    from bridge_support import start_bridge

    open_bridge = start_bridge(docker_client, allowed_origins="http://localhost:6274")
    try:
        port = serve_ready(open_bridge, "cors", containers.fake_server(busybox_image))
        origin = {"Origin": "http://localhost:6274"}
        pre = http_request(port, "OPTIONS", "/mcp/cors/mcp", headers=origin)
        assert pre.status == 204
        assert pre.header("Access-Control-Allow-Origin") == "http://localhost:6274"
        assert "Mcp-Session-Id" in pre.header("Access-Control-Allow-Headers")
        reply = post_mcp(
            port, "cors", {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, headers=origin
        )
        assert reply.status == 200
        assert reply.header("Access-Control-Allow-Origin") == "http://localhost:6274"
        assert "Mcp-Session-Id" in reply.header("Access-Control-Expose-Headers")
        other = post_mcp(
            port, "cors", {"jsonrpc": "2.0", "id": 1, "method": "initialize"}, headers={"Origin": "http://x.example"}
        )
        assert other.status == 403
    finally:
        open_bridge.thread.stop()


# --- paths and health ---------------------------------------------------------------------------


def test_paths_of_other_servers_and_unknown_paths_are_404(bridge: RunningBridge, port, containers, busybox_image):
    other_port = serve_ready(bridge, "other", containers.fake_server(busybox_image))
    try:
        # Each port serves only its own prefix.
        assert http_request(port, "GET", "/mcp/other/health").status == 404
        assert http_request(other_port, "GET", f"/mcp/{SID}/health").status == 404
        assert http_request(other_port, "GET", "/mcp/other/health").status == 200
        for path in (
            "/mcp/fake/nothing",
            "/mcp/fake/mcp/extra",
            "/health",
            "/mcp/fake/../other/health",
            "/favicon.ico",
        ):
            reply = http_request(port, "GET", path)
            assert reply.status == 404, path
            assert reply.json()["error"]["code"] == -32000
    finally:
        bridge.unserve("other")
    with pytest.raises(ConnectionRefusedError):
        http_request(other_port, "GET", "/mcp/other/health")


def test_health_is_200_when_initialized(port):
    reply = http_request(port, "GET", f"/mcp/{SID}/health")
    assert reply.status == 200 and reply.json() == {"server": SID, "status": "ready"}
    assert http_request(port, "HEAD", f"/mcp/{SID}/health").status == 200


# --- legacy HTTP+SSE ---------------------------------------------------------------------------


def test_legacy_sse_session(port):
    stream = SseStream(port, f"/mcp/{SID}/sse")
    try:
        assert stream.status == 200 and stream.headers["content-type"] == "text/event-stream"
        event, endpoint = stream.next_event()
        assert event == "endpoint"
        assert endpoint.startswith(f"/mcp/{SID}/messages?sessionId=")
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05"}}
        reply = http_request(port, "POST", endpoint, init, {"Content-Type": "application/json"})
        assert reply.status == 202
        event, data = stream.next_event()
        assert event == "message"
        assert '"protocolVersion":"2024-11-05"' in data and '"id":1' in data
        reply = http_request(port, "POST", endpoint, {"jsonrpc": "2.0", "id": "t", "method": "tools/list"})
        assert reply.status == 202
        assert stream.next_event() == ("message", '{"jsonrpc":"2.0","id":"t","result":{"tools":[]}}')
        # Bad input on the legacy POST.
        assert_error(http_request(port, "POST", endpoint, b"{not json"), 400, -32700, "parse error")
        assert_error(http_request(port, "POST", endpoint, {"id": 1}), 400, -32600, "invalid request")
        assert_error(http_request(port, "POST", f"/mcp/{SID}/messages", b"{}"), 400, -32000, "sessionId")
        assert_error(
            http_request(port, "POST", f"/mcp/{SID}/messages?sessionId=nope", b"{}"), 404, -32000, "session not found"
        )
    finally:
        stream.close()


def test_deeply_nested_json_is_a_parse_error_on_every_transport(port):
    deep = "[" * 30000 + "]" * 30000
    session = initialize(port, SID)
    assert_error(post_mcp(port, SID, deep, session), 400, -32700, "nested too deeply")
    stream = SseStream(port, f"/mcp/{SID}/sse")
    try:
        _, endpoint = stream.next_event()
        reply = http_request(port, "POST", endpoint, deep, {"Content-Type": "application/json"})
        assert_error(reply, 400, -32700, "nested too deeply")
    finally:
        stream.close()


def test_a_foreign_host_is_refused_on_a_loopback_bridge(port):
    # DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1.
    refused = http_request(port, "GET", f"/mcp/{SID}/health", headers={"Host": f"evil.example:{port}"})
    assert_error(refused, 421, -32000, "Host")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert http_request(port, "GET", f"/mcp/{SID}/health", headers={"Host": host}).status == 200
