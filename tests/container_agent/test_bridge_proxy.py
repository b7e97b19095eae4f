"""Reverse-proxy mode: servers that speak HTTP inside their container.

The container's port is published on 127.0.0.1 (tests stay on loopback); in
production the agent passes the container's own address.
"""

from __future__ import annotations

import asyncio

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    SseStream,
    bridge,
    containers,
    http_request,
)

from tests.harness.waiting import wait_for

mcp = pytest.importorskip("mcp")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

pytestmark = pytest.mark.docker

STATIC_SITE = (
    "mkdir -p /www/sub && echo hello > /www/hello.txt && echo subindex > /www/sub/index.html"
    " && exec httpd -f -p 8080 -h /www"
)

# A small MCP server over HTTP, written with the SDK installed in the time server image.
HTTP_MCP_SERVER = """
import sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("echo-http")


@server.tool()
def echo(text: str) -> str:
    \"\"\"Echo the text back.\"\"\"
    return "echo:" + text


server.run(sys.argv[1], host="0.0.0.0", port=8000)
"""


def published_port(container, inner: str) -> int:
    def lookup():
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(inner) or []
        return int(bindings[0]["HostPort"]) if bindings else None

    return wait_for(lookup, what=f"{inner} to be published")


def answers(port: int, path: str) -> bool:
    try:
        return http_request(port, "GET", path, timeout=5).status < 500
    except OSError:
        return False


def test_static_http_server_behind_the_prefix(bridge: RunningBridge, containers: Containers, busybox_image):
    container = containers.run(busybox_image, ["sh", "-c", STATIC_SITE], ports={"8080/tcp": ("127.0.0.1", None)})
    inner = published_port(container, "8080/tcp")
    port = bridge.serve_http("static", 0, "127.0.0.1", inner)
    try:
        wait_for(lambda: answers(port, "/mcp/static/hello.txt"), what="httpd to answer")
        reply = http_request(port, "GET", "/mcp/static/hello.txt?x=1")
        assert reply.status == 200 and reply.body == b"hello\n"
        # httpd redirects /sub to /sub/: followed inside, never shown to the client.
        reply = http_request(port, "GET", "/mcp/static/sub")
        assert reply.status == 200 and reply.body == b"subindex\n"
        assert http_request(port, "GET", "/mcp/static/missing").status == 404
        assert http_request(port, "GET", "/mcp/other/hello.txt").status == 404
        health = http_request(port, "GET", "/mcp/static/health")
        assert health.status == 200 and health.json()["status"] == "ready"

        bridge.mark_down("static", "container exited")
        reply = http_request(port, "GET", "/mcp/static/hello.txt")
        assert reply.status == 503 and "container exited" in reply.json()["error"]["message"]
        assert http_request(port, "GET", "/mcp/static/health").status == 503

        assert bridge.serve_http("static", port, "127.0.0.1", inner) == port
        assert http_request(port, "GET", "/mcp/static/hello.txt").status == 200
        container.remove(force=True)
        health = http_request(port, "GET", "/mcp/static/health")
        assert health.status == 503 and "no HTTP answer" in health.json()["reason"]
        reply = http_request(port, "GET", "/mcp/static/hello.txt")
        assert reply.status == 503 and reply.json()["error"]["code"] == -32000
    finally:
        bridge.unserve("static")


@pytest.fixture(scope="module")
def http_mcp(containers: Containers, time_server_image):
    def start(transport: str) -> int:
        container = containers.run(
            time_server_image,
            ["-c", HTTP_MCP_SERVER, transport],
            entrypoint=["python3"],
            ports={"8000/tcp": ("127.0.0.1", None)},
        )
        return published_port(container, "8000/tcp")

    return start


def test_streamable_http_server_through_the_proxy(bridge: RunningBridge, http_mcp):
    inner = http_mcp("streamable-http")
    port = bridge.serve_http("web", 0, "127.0.0.1", inner)
    try:
        wait_for(lambda: http_request(port, "GET", "/mcp/web/health").status == 200, what="the server to answer")
        url = f"http://127.0.0.1:{port}/mcp/web/mcp"

        async def run() -> None:
            async with streamable_http_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.server_info.name == "echo-http"
                    assert [t.name for t in (await session.list_tools()).tools] == ["echo"]
                    result = await session.call_tool("echo", {"text": "through the proxy"})
                    assert result.content[0].text == "echo:through the proxy"

        asyncio.run(run())
    finally:
        bridge.unserve("web")


def test_legacy_sse_server_through_the_proxy(bridge: RunningBridge, http_mcp):
    inner = http_mcp("sse")
    port = bridge.serve_http("websse", 0, "127.0.0.1", inner)
    try:
        wait_for(lambda: http_request(port, "GET", "/mcp/websse/health").status == 200, what="the server to answer")
        stream = SseStream(port, "/mcp/websse/sse")
        try:
            event, endpoint = stream.next_event()
            assert event == "endpoint" and endpoint.startswith("/mcp/websse/messages/?session_id=")
        finally:
            stream.close()

        async def run() -> None:
            async with sse_client(f"http://127.0.0.1:{port}/mcp/websse/sse") as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool("echo", {"text": "legacy"})
                    assert result.content[0].text == "echo:legacy"

        asyncio.run(run())
    finally:
        bridge.unserve("websse")
