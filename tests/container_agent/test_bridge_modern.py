"""MCP 2026-07-28 (stateless) through the bridge, in front of the time server (its SDK 2.x
speaks 2026-07-28 itself) and of scripted handshake-era servers: the official SDK client
pinned to 2026-07-28 and in auto mode, handshake-era sessions of a modern-only server,
and the spec's request checks over raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    initialize,
    post_mcp,
    serve_ready,
    sse_events,
)

mcp = pytest.importorskip("mcp")
from mcp.client.client import Client  # noqa: E402

from services.container_agent.bridge import modern  # noqa: E402
from tests.harness.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.docker

SID = "time"
TOOLS = {"get_current_time", "convert_time"}
V = "2026-07-28"


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, SID, containers.run(time_server_image))


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/mcp/{SID}/mcp"


def meta(**extra) -> dict:
    return {
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        **extra,
    }


def modern_post(port: int, method: str, params: dict, headers: dict | None = None, request_id=1):
    sent = {"MCP-Protocol-Version": V, "Mcp-Method": method, **(headers or {})}
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return post_mcp(port, SID, body, headers=sent)


@pytest.mark.parametrize("mode", [V, "auto"])
def test_the_sdk_client_lists_and_calls_tools_statelessly(port, mode):
    async def run():
        async with Client(url(port), mode=mode) as client:
            tools = await client.list_tools()
            assert {t.name for t in tools.tools} == TOOLS
            result = await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "12:30", "target_timezone": "Asia/Tokyo"}
            )
            assert result.is_error is False
            assert result.structured_content["target"]["datetime"][11:16] == "21:30"
            return client.server_info

    info = asyncio.run(asyncio.wait_for(run(), 60))
    if mode == "auto":  # it probed server/discover (a pinned client knows no server info)
        assert info is not None and info.name == "mcp-time"


def test_a_modern_server_is_spoken_to_in_its_own_era(bridge, port):
    # The time server runs the 2.x SDK: it answered the bridge's server/discover probe.
    assert bridge.health(SID).protocol_version == V
    reply = modern_post(port, "server/discover", {"_meta": meta()})
    assert reply.status == 200 and reply.header("mcp-session-id") is None
    result = reply.json()["result"]
    assert result["resultType"] == "complete" and result["supportedVersions"] == [V]
    assert "tools" in result["capabilities"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-time"
    assert result["ttlMs"] >= 0 and result["cacheScope"] in ("public", "private")


def test_discover_of_a_handshake_era_server_comes_from_its_initialize_result(bridge, containers, busybox_image):
    port = serve_ready(bridge, "legacy", containers.fake_server(busybox_image))
    assert bridge.health("legacy").protocol_version == "2025-06-18"  # the probe was refused: initialize
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}
    reply = post_mcp(port, "legacy", body, headers={"MCP-Protocol-Version": V, "Mcp-Method": "server/discover"})
    result = reply.json()["result"]
    assert result["supportedVersions"] == [V] and result["capabilities"]["tools"] == {"listChanged": True}
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"] == {"name": "fake", "version": "1.0"}
    # Its tools list may change (listChanged): a client must not keep it.
    assert result["ttlMs"] == 300000 and result["cacheScope"] == "public"


def test_results_are_modern_and_no_session_is_made(port):
    listed = modern_post(port, "tools/list", {"_meta": meta()})
    assert listed.status == 200 and listed.header("mcp-session-id") is None
    result = listed.json()["result"]
    assert result["resultType"] == "complete" and {t["name"] for t in result["tools"]} == TOOLS
    assert result["ttlMs"] >= 0 and result["cacheScope"] in ("public", "private")
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-time"
    called = modern_post(
        port,
        "tools/call",
        {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}, "_meta": meta()},
        headers={"Mcp-Name": "get_current_time"},
        request_id="call-1",
    )
    body = called.json()
    assert called.status == 200 and body["id"] == "call-1" and body["result"]["resultType"] == "complete"
    assert "ttlMs" not in body["result"]  # a tool call is not cacheable


def test_a_base64_name_header_is_decoded(port):
    encoded = "=?base64?" + base64.b64encode(b"get_current_time").decode() + "?="
    called = modern_post(
        port,
        "tools/call",
        {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}, "_meta": meta()},
        headers={"Mcp-Name": encoded},
    )
    assert called.status == 200 and "result" in called.json()


@pytest.mark.parametrize(
    "headers,params,status,code",
    [
        ({"MCP-Protocol-Version": "2025-06-18"}, {"_meta": meta()}, 400, modern.HEADER_MISMATCH),
        ({"Mcp-Method": "tools/call"}, {"_meta": meta()}, 400, modern.HEADER_MISMATCH),
        ({}, {"_meta": {k: v for k, v in meta().items() if "clientCapabilities" not in k}}, 400, -32602),
    ],
    ids=["version-header-differs", "method-header-differs", "no-client-capabilities"],
)
def test_requests_the_spec_refuses(port, headers, params, status, code):
    reply = modern_post(port, "tools/list", params, headers=headers)
    assert reply.status == status
    assert reply.json()["error"]["code"] == code and reply.json()["id"] == 1


def test_an_unsupported_version_names_the_supported_ones(port):
    reply = modern_post(
        port,
        "tools/list",
        {"_meta": meta(**{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})},
        headers={"MCP-Protocol-Version": "2099-01-01"},
    )
    error = reply.json()["error"]
    assert reply.status == 400 and error["code"] == modern.UNSUPPORTED_VERSION
    assert error["data"] == {"supported": [V], "requested": "2099-01-01"}


def test_a_name_header_that_differs_from_the_body_is_refused(port):
    reply = modern_post(
        port,
        "tools/call",
        {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}, "_meta": meta()},
        headers={"Mcp-Name": "convert_time"},
    )
    assert reply.status == 400 and reply.json()["error"]["code"] == modern.HEADER_MISMATCH


@pytest.mark.parametrize("method", ["ping", "logging/setLevel", "resources/subscribe", "initialize"])
def test_methods_removed_in_2026_are_not_found(port, method):
    reply = modern_post(port, method, {"_meta": meta()})
    assert reply.status == 404 and reply.json()["error"]["code"] == -32601


def test_batches_are_refused(port):
    body = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}}]
    reply = post_mcp(port, SID, body, headers={"MCP-Protocol-Version": V, "Mcp-Method": "tools/list"})
    assert reply.status == 400 and reply.json()["error"]["code"] == -32600


def test_handshake_era_sessions_are_served_by_a_modern_only_server(port):
    session = initialize(port, SID)
    listed = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
    assert listed.status == 200 and {t["name"] for t in listed.json()["result"]["tools"]} == TOOLS
    call = {"name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}}
    called = post_mcp(port, SID, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call}, session)
    assert called.json()["result"]["isError"] is False
    # What 2026-07-28 removed is answered by the bridge for the session.
    for n, (method, params) in enumerate([("ping", None), ("logging/setLevel", {"level": "warning"})], start=4):
        msg = {"jsonrpc": "2.0", "id": n, "method": method, **({"params": params} if params else {})}
        assert post_mcp(port, SID, msg, session).json() == {"jsonrpc": "2.0", "id": n, "result": {}}
    bad = {"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": "loud"}}
    assert post_mcp(port, SID, bad, session).json()["error"]["code"] == -32602
    assert modern_post(port, "tools/list", {"_meta": meta()}).json()["result"]["resultType"] == "complete"


@contextlib.contextmanager
def held_request(bridge, port: int, sid: str, method: str = "test/slow", **extra_meta):
    """A modern request the scripted server holds, on a raw connection closed at the end."""
    body = json.dumps({"jsonrpc": "2.0", "id": 5, "method": method, "params": {"_meta": meta(**extra_meta)}}).encode()
    head = (
        f"POST /mcp/{sid}/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {V}\r\nMcp-Method: {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    before = sum("slow request" in t for t in bridge.stderr_tail(sid, 200))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        wait_for(
            lambda: sum("slow request" in t for t in bridge.stderr_tail(sid, 200)) > before,
            15,
            "the request at the server",
        )
        yield


def test_closing_the_response_stream_cancels_the_request_upstream(bridge, containers, busybox_image):
    port = serve_ready(bridge, "fake", containers.fake_server(busybox_image))
    with held_request(bridge, port, "fake"):
        pass
    # The stream is closed: the server hears notifications/cancelled for the bridge's id.
    line = wait_for(
        lambda: next((t for t in bridge.stderr_tail("fake", 20) if t.startswith("cancelled:")), None),
        15,
        "notifications/cancelled at the server",
    )
    params = json.loads(line[len("cancelled: ") :])["params"]
    assert isinstance(params["requestId"], int) and "closed" in params["reason"]


def test_progress_tokens_reach_the_server_unchanged_unless_taken(bridge, containers, busybox_image):
    sid = "tokens"
    port = serve_ready(bridge, sid, containers.fake_server(busybox_image))
    session = initialize(port, sid)

    def progress(token, rid) -> None:
        request = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "test/progress",
            "params": {"_meta": {"progressToken": token}},
        }
        events = [json.loads(d) for _, d in sse_events(post_mcp(port, sid, request, session).body)]
        assert events[0]["params"]["progressToken"] == token  # the client always gets its own back

    def heard(text: str) -> int:
        return sum(text in t for t in bridge.stderr_tail(sid, 200))

    progress(2, 1)  # reaches the server as the client sent it (it once arrived as 700207779)
    wait_for(lambda: heard("progress token 2") == 1, 10, "token 2 at the server")
    with held_request(bridge, port, sid, progressToken=7):
        progress(7, 2)  # 7 is in use by the held request: the server gets one of the bridge's
        wait_for(lambda: heard('progress token "bridge-') == 1, 10, "a bridge token at the server")
        assert heard("progress token 7") == 0
    wait_for(
        lambda: any(t.startswith("cancelled:") for t in bridge.stderr_tail(sid, 50)), 15, "the held request to end"
    )
    progress(7, 3)  # free again
    wait_for(lambda: heard("progress token 7") == 1, 10, "token 7 at the server")


@pytest.mark.parametrize("asked,delivered", [("info", True), ("debug", True), ("error", False), (None, False)])
def test_log_messages_only_for_a_request_that_asks_at_or_below_their_level(
    bridge, containers, busybox_image, asked, delivered
):
    sid = "logs"
    port = serve_ready(bridge, sid, containers.fake_server(busybox_image))
    extra = {"io.modelcontextprotocol/logLevel": asked} if asked else {}
    reply = post_mcp(
        port,
        sid,
        {"jsonrpc": "2.0", "id": 4, "method": "test/log", "params": {"_meta": meta(**extra)}},
        headers={"MCP-Protocol-Version": V, "Mcp-Method": "test/log"},
    )
    assert reply.status == 200
    if reply.header("content-type").startswith("text/event-stream"):
        messages = [json.loads(d) for _, d in sse_events(reply.body)]
    else:
        messages = [reply.json()]
    logs = [m for m in messages if m.get("method") == "notifications/message"]
    assert bool(logs) is delivered
    assert messages[-1]["result"]["resultType"] == "complete"


def test_mirrored_tool_parameters_are_checked_against_their_headers(bridge, containers, busybox_image):
    sid = "params"
    tool = {
        "name": "execute_sql",
        "inputSchema": {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}, "query": {"type": "string"}},
        },
    }
    port = serve_ready(bridge, sid, containers.fake_server(busybox_image, tools=json.dumps([tool])))

    def call(headers: dict):
        params = {"name": "execute_sql", "arguments": {"region": "us-west1", "query": "SELECT 1"}, "_meta": meta()}
        sent = {"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": "execute_sql", **headers}
        return post_mcp(port, sid, {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": params}, headers=sent)

    for wrong in ({}, {"Mcp-Param-Region": "eu-west1"}):
        refused = call(wrong)
        assert refused.status == 400 and refused.json()["error"]["code"] == modern.HEADER_MISMATCH
    passed = call({"Mcp-Param-Region": "us-west1"})  # reaches the server (which knows no such call)
    assert passed.status == 200 and passed.json()["error"]["code"] == -32601
