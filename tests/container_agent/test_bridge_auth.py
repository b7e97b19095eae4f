"""Bearer tokens on the MCP endpoints: attacked as an unauthenticated client would, on both
transports, and used by the official SDK client as an authorised one would."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    SseStream,
    containers,
    http_request,
    post_mcp,
    serve_ready,
    start_bridge,
)

from common.mcp_auth import parse_tokens
from tests.harness.waiting import wait_for

mcp = pytest.importorskip("mcp")
import httpx2  # noqa: E402  (the SDK's own HTTP client)
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

pytestmark = pytest.mark.docker

EVERYWHERE = "tok-everywhere-0123456789abcdef"
OLD = "tok-being-rotated-out-0123456789"
OWN = "tok-only-for-time-0123456789abcd"
OTHER = "tok-only-for-other-0123456789abc"
TOKENS = f"{EVERYWHERE}, {OLD}, time:{OWN}, other:{OTHER}"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_current_time", "arguments": {}}}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secured(docker_client, containers: Containers, time_server_image):
    running = start_bridge(docker_client, token_set=parse_tokens(TOKENS))
    port = serve_ready(running, "time", containers.run(time_server_image))
    yield running, port
    running.thread.stop()


def assert_refused(reply, invalid: bool) -> None:
    assert reply.status == 401, reply
    challenge = reply.header("WWW-Authenticate")
    assert challenge.startswith('Bearer realm="mcp-orchestrator"')
    assert ('error="invalid_token"' in challenge) is invalid
    assert reply.json()["error"]["message"].startswith("Unauthorized")


def test_unauthenticated_calls_are_refused_on_every_endpoint(secured):
    _, port = secured
    assert_refused(post_mcp(port, "time", INIT), invalid=False)
    assert_refused(post_mcp(port, "time", CALL, session="whatever"), invalid=False)
    assert_refused(http_request(port, "GET", "/mcp/time/mcp", headers={"Accept": "text/event-stream"}), False)
    assert_refused(http_request(port, "DELETE", "/mcp/time/mcp", headers={"Mcp-Session-Id": "x"}), False)
    assert_refused(http_request(port, "GET", "/mcp/time/sse", headers={"Accept": "text/event-stream"}), False)
    assert_refused(
        http_request(port, "POST", "/mcp/time/messages?sessionId=x", CALL, {"Content-Type": "application/json"}), False
    )


def test_a_stateless_era_request_is_refused_before_anything_else(secured):
    _, port = secured
    discover = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "server/discover",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        },
    }
    reply = post_mcp(port, "time", discover, headers={"MCP-Protocol-Version": "2026-07-28"})
    assert_refused(reply, invalid=False)


def test_wrong_tokens_are_refused(secured):
    _, port = secured
    for header in (f"Bearer {OTHER}", f"Bearer {EVERYWHERE[:-1]}", f"Basic {EVERYWHERE}", "Bearer", EVERYWHERE):
        assert_refused(post_mcp(port, "time", INIT, headers={"Authorization": header}), invalid=True)


def test_health_stays_open_for_the_load_balancer(secured):
    _, port = secured
    reply = http_request(port, "GET", "/mcp/time/health")
    assert reply.status == 200 and reply.json()["status"] == "ready"


def test_every_valid_token_opens_its_servers(secured):
    _, port = secured
    for token in (EVERYWHERE, OLD, OWN):  # rotation: old and new are valid at once
        reply = post_mcp(port, "time", INIT, headers=bearer(token))
        assert reply.status == 200, reply
        session = reply.header("Mcp-Session-Id")
        call = post_mcp(port, "time", CALL, session=session, headers=bearer(token))
        assert call.status == 200 and "result" in call.json(), call
        # A session is no capability: without the token its id opens nothing.
        assert_refused(post_mcp(port, "time", CALL, session=session), invalid=False)


def test_the_official_sdk_client_with_a_token_on_both_transports(secured):
    _, port = secured
    base = f"http://127.0.0.1:{port}/mcp/time"

    async def streamable() -> set:
        async with httpx2.AsyncClient(headers=bearer(OWN)) as http:
            async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return {t.name for t in (await session.list_tools()).tools}

    async def legacy() -> bool:
        async with sse_client(f"{base}/sse", headers=bearer(EVERYWHERE)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("get_current_time", {"timezone": "Etc/UTC"})
                return result.is_error is False

    assert "get_current_time" in asyncio.run(streamable())
    assert asyncio.run(legacy())


def test_the_sdk_client_without_a_token_is_refused(secured):
    _, port = secured

    async def run() -> None:
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp/time/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()

    with pytest.raises(BaseException) as failure:
        asyncio.run(run())
    assert "401" in repr(failure.value) or "Unauthorized" in repr(failure.value)


# A tiny HTTP server that answers with the request headers it received.
ECHO_HEADERS = """
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(self.headers)).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def test_a_reverse_proxied_server_never_sees_the_bridge_token(secured, containers: Containers, time_server_image):
    running, _ = secured
    inner = containers.run(
        time_server_image, ["python3", "-c", ECHO_HEADERS], entrypoint=[], ports={"8080/tcp": ("127.0.0.1", None)}
    )

    def published() -> int:
        inner.reload()
        bindings = inner.attrs["NetworkSettings"]["Ports"].get("8080/tcp") or []
        return int(bindings[0]["HostPort"]) if bindings else 0

    inner_port = wait_for(published, what="the echo server's port")
    port = running.serve_http("echo", 0, "127.0.0.1", inner_port)
    assert_refused(http_request(port, "GET", "/mcp/echo/x"), invalid=False)

    def seen() -> dict:
        try:
            reply = http_request(port, "GET", "/mcp/echo/x", headers={**bearer(EVERYWHERE), "X-Probe": "1"}, timeout=5)
        except OSError:
            return {}
        return json.loads(reply.body) if reply.status == 200 else {}

    headers = {k.lower(): v for k, v in wait_for(seen, what="the echo server to answer").items()}
    assert headers.get("x-probe") == "1"
    assert "authorization" not in headers
    running.unserve("echo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
