"""The official Python SDK client in each of its modes (`legacy`, `auto`, `2026-07-28`)
through the bridge, in front of a handshake-era server (the conformance test server,
SDK 1.x) and of a 2026-07-28 one (the time server, SDK 2.x): tools, resources and
prompts, and in 2026-07-28 mode no session at all."""

from __future__ import annotations

import asyncio

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    serve_ready,
)

pytest.importorskip("mcp.client.client")

from mcp.client.client import Client  # noqa: E402

pytestmark = pytest.mark.docker

MODES = ("legacy", "auto", "2026-07-28")


@pytest.fixture(scope="module")
def conf_port(bridge: RunningBridge, containers: Containers, conformance_server_image) -> int:
    return serve_ready(bridge, "conf-sdk", containers.run(conformance_server_image))


@pytest.fixture(scope="module")
def time_port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, "time-sdk", containers.run(time_server_image))


@pytest.mark.parametrize("mode", MODES)
def test_tools_resources_and_prompts_of_a_handshake_era_server(bridge, conf_port, mode):
    sessions_before = bridge.health("conf-sdk").sessions

    async def run():
        async with Client(f"http://127.0.0.1:{conf_port}/mcp/conf-sdk/mcp", mode=mode) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "test_simple_text" in tools
            called = await client.call_tool("test_simple_text", {})
            assert called.content[0].text == "This is a simple text response for testing."
            read = await client.read_resource("test://static-text")
            assert read.contents[0].text == "This is the content of the static text resource."
            prompt = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
            assert prompt.messages[0].content.text == "Prompt with arguments: arg1='a', arg2='b'"
            if mode == "2026-07-28":
                # Within a 2026-07-28 client's life the bridge made no session for it.
                assert bridge.health("conf-sdk").sessions == sessions_before

    asyncio.run(asyncio.wait_for(run(), 60))


@pytest.mark.parametrize("mode", MODES)
def test_a_2026_era_server_serves_every_mode(time_port, mode):
    async def run():
        async with Client(f"http://127.0.0.1:{time_port}/mcp/time-sdk/mcp", mode=mode) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"get_current_time", "convert_time"}
            called = await client.call_tool(
                "convert_time", {"source_timezone": "UTC", "time": "08:00", "target_timezone": "Asia/Tokyo"}
            )
            assert called.is_error is False and called.structured_content["target"]["datetime"][11:16] == "17:00"

    asyncio.run(asyncio.wait_for(run(), 60))
