"""The reference time server (mcp-server-time from PyPI) driven through the bridge by the
official MCP Python SDK client, over Streamable HTTP and over legacy HTTP+SSE."""

from __future__ import annotations

import asyncio
import datetime as dt

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
)

from tests.harness.waiting import wait_for

mcp = pytest.importorskip("mcp")
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from services.container_agent.bridge.versions import KNOWN_VERSIONS  # noqa: E402

pytestmark = pytest.mark.docker

SID = "time"
TOOLS = {"get_current_time", "convert_time"}


@pytest.fixture(scope="module")
def time_server(containers: Containers, time_server_image):
    return containers.run(time_server_image)


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, time_server) -> int:
    return serve_ready(bridge, SID, time_server)


def expected_tokyo(hhmm: str) -> str:
    """What convert_time answers for HH:MM UTC in Asia/Tokyo (UTC+9, no DST)."""
    hour, minute = map(int, hhmm.split(":"))
    return f"{(hour + 9) % 24:02d}:{minute:02d}"


def check_conversion(result, hhmm: str) -> None:
    assert result.is_error is False
    data = result.structured_content
    assert data["source"]["timezone"] == "UTC" and data["target"]["timezone"] == "Asia/Tokyo"
    assert data["source"]["datetime"][11:16] == hhmm
    assert data["target"]["datetime"][11:16] == expected_tokyo(hhmm)
    assert data["time_difference"] == "+9.0h"


async def convert(session: ClientSession, hhmm: str):
    return await session.call_tool(
        "convert_time", {"source_timezone": "UTC", "time": hhmm, "target_timezone": "Asia/Tokyo"}
    )


def test_streamable_http_with_the_sdk(port):
    url = f"http://127.0.0.1:{port}/mcp/{SID}/mcp"

    async def run() -> None:
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "mcp-time"
                assert init.protocol_version in KNOWN_VERSIONS
                tools = await session.list_tools()
                assert {t.name for t in tools.tools} == TOOLS
                check_conversion(await convert(session, "12:30"), "12:30")
                now = await session.call_tool("get_current_time", {"timezone": "Etc/UTC"})
                stamp = dt.datetime.fromisoformat(now.structured_content["datetime"])
                assert abs((stamp - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 300
                bad = await session.call_tool("get_current_time", {"timezone": "Not/AZone"})
                assert bad.is_error is True
                await session.send_ping()

    asyncio.run(run())


def test_legacy_sse_with_the_sdk(port):
    url = f"http://127.0.0.1:{port}/mcp/{SID}/sse"

    async def run() -> None:
        async with sse_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "mcp-time"
                tools = await session.list_tools()
                assert {t.name for t in tools.tools} == TOOLS
                check_conversion(await convert(session, "23:45"), "23:45")

    asyncio.run(run())


def test_the_high_level_client_falls_back_from_its_discovery_probe(port):
    # mcp.Client probes `server/discover` (2026 era) first; the bridge speaks the
    # handshake era, and the client must fall back to initialize.
    url = f"http://127.0.0.1:{port}/mcp/{SID}/mcp"

    async def run() -> None:
        async with mcp.Client(url) as client:
            tools = await client.list_tools()
            assert {t.name for t in tools.tools} == TOOLS
            check_conversion(
                await client.call_tool(
                    "convert_time", {"source_timezone": "UTC", "time": "01:02", "target_timezone": "Asia/Tokyo"}
                ),
                "01:02",
            )

    asyncio.run(run())


def test_32_concurrent_sessions_on_one_container(bridge: RunningBridge, port, time_server, docker_client):
    before = docker_client.api.inspect_container(time_server.id)
    url = f"http://127.0.0.1:{port}/mcp/{SID}/mcp"
    calls_per_session = 4

    async def one_client(n: int) -> list[str]:
        checked = []
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                for k in range(calls_per_session):
                    minute = (n * calls_per_session + k) % 60
                    hhmm = f"{n % 24:02d}:{minute:02d}"
                    check_conversion(await convert(session, hhmm), hhmm)
                    checked.append(hhmm)
        return checked  # leaving the context sends DELETE

    async def run() -> list[list[str]]:
        return await asyncio.gather(*(one_client(n) for n in range(32)))

    results = asyncio.run(run())
    assert sum(len(r) for r in results) == 32 * calls_per_session
    after = docker_client.api.inspect_container(time_server.id)
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"] and after["State"]["Running"]
    assert after["RestartCount"] == before["RestartCount"] == 0
    wait_for(lambda: bridge.health(SID).sessions == 0, what="every session to be deleted")
    assert bridge.health(SID).pending_requests == 0


def test_litellm_pattern_initialize_one_call_delete(bridge: RunningBridge, port):
    for n in range(20):
        session = initialize(port, SID, request_id=n)
        hhmm = f"{n:02d}:{n:02d}"
        call = {
            "jsonrpc": "2.0",
            "id": n + 1000,
            "method": "tools/call",
            "params": {
                "name": "convert_time",
                "arguments": {"source_timezone": "UTC", "time": hhmm, "target_timezone": "Asia/Tokyo"},
            },
        }
        reply = post_mcp(port, SID, call, session, headers={"MCP-Protocol-Version": "2025-06-18"})
        assert reply.status == 200 and reply.header("Content-Type") == "application/json"
        body = reply.json()
        assert body["id"] == n + 1000
        assert body["result"]["structuredContent"]["target"]["datetime"][11:16] == expected_tokyo(hhmm)
        gone = http_request(port, "DELETE", f"/mcp/{SID}/mcp", headers={"Mcp-Session-Id": session})
        assert gone.status == 204
    assert bridge.health(SID).sessions == 0
