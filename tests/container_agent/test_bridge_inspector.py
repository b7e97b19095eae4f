"""The MCP Inspector CLI 2.x (a TypeScript SDK client we did not write) through the bridge, in
each protocol era it offers (`--protocol-era`): `legacy` (the initialize handshake), `modern`
(2026-07-28, stateless, after server/discover) and `auto` (it probes server/discover and
takes the modern era when offered, as the bridge does).

The time server lists and calls tools; it offers no resources or prompts, so reading a
resource and getting a prompt go to the conformance test server. The legacy HTTP+SSE
transport is tested in the legacy and auto eras: 2026-07-28 is not spoken over it, and
the Inspector refuses the modern era there before it sends anything.

Installed under .cache/node by scripts/ensure-node-tools.sh, with the Node.js 22 it needs.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    NodeTool,
    RunningBridge,
    bridge,
    containers,
    node_tool,
    serve_ready,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ERAS = ["legacy", "auto", "modern"]
# A 2026-07-28 result names its server in _meta; a handshake-era result does not.
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
ERA_REACHED = {"legacy": "legacy", "auto": "modern", "modern": "modern"}


@pytest.fixture(scope="module")
def inspector(tmp_path_factory) -> NodeTool:
    # It keeps a catalog and a client config under ~/.mcp-inspector: a home of its own.
    return node_tool("mcp-inspector", HOME=str(tmp_path_factory.mktemp("inspector-home")))


@pytest.fixture(scope="module")
def time_port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, "inspected", containers.run(time_server_image))


@pytest.fixture(scope="module")
def conformance_port(bridge: RunningBridge, containers: Containers, conformance_server_image) -> int:
    return serve_ready(bridge, "conf", containers.run(conformance_server_image))


def run_cli(inspector: NodeTool, url: str, era: str, *args: str) -> dict:
    done = subprocess.run(
        [inspector.path, "--cli", url, "--protocol-era", era, "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=inspector.env,
    )
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    answer = json.loads(done.stdout)
    assert "error" not in answer, answer["error"]
    return answer["result"]


def era_of(result: dict) -> str:
    """Which era a result of the (handshake-era) conformance server came back in: the
    bridge adds serverInfo to results of 2026-07-28 requests only."""
    return "modern" if SERVER_INFO in (result.get("_meta") or {}) else "legacy"


@pytest.mark.parametrize(
    "transport, endpoint, era",
    [("http", "mcp", era) for era in ERAS] + [("sse", "sse", "legacy"), ("sse", "sse", "auto")],
)
def test_inspector_lists_the_tools(inspector, time_port, transport, endpoint, era):
    url = f"http://127.0.0.1:{time_port}/mcp/inspected/{endpoint}"
    listed = run_cli(inspector, url, era, "--transport", transport, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == {"get_current_time", "convert_time"}


@pytest.mark.parametrize("era", ERAS)
def test_inspector_calls_a_tool(inspector, time_port, era):
    result = run_cli(
        inspector,
        f"http://127.0.0.1:{time_port}/mcp/inspected/mcp",
        era,
        "--method",
        "tools/call",
        "--tool-name",
        "convert_time",
        "--tool-arg",
        "source_timezone=UTC",
        "time=10:00",
        "target_timezone=Asia/Tokyo",
    )
    assert result["isError"] is False
    assert result["structuredContent"]["target"]["datetime"][11:16] == "19:00"
    # The era reached is told on the conformance server (below): the time server speaks
    # 2026-07-28 itself, so its results carry serverInfo in either era.


@pytest.mark.parametrize("era", ERAS)
def test_inspector_reads_resources(inspector, conformance_port, era):
    url = f"http://127.0.0.1:{conformance_port}/mcp/conf/mcp"
    listed = run_cli(inspector, url, era, "--method", "resources/list")
    assert "test://static-text" in {r["uri"] for r in listed["resources"]}
    text = run_cli(inspector, url, era, "--method", "resources/read", "--uri", "test://static-text")
    assert text["contents"] == [
        {
            "uri": "test://static-text",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }
    ]
    assert era_of(text) == ERA_REACHED[era]
    templated = run_cli(inspector, url, era, "--method", "resources/read", "--uri", "test://template/42/data")
    assert json.loads(templated["contents"][0]["text"])["data"] == "Data for ID: 42"


@pytest.mark.parametrize("era", ERAS)
def test_inspector_gets_a_prompt(inspector, conformance_port, era):
    url = f"http://127.0.0.1:{conformance_port}/mcp/conf/mcp"
    listed = run_cli(inspector, url, era, "--method", "prompts/list")
    assert "test_prompt_with_arguments" in {p["name"] for p in listed["prompts"]}
    prompt = run_cli(
        inspector,
        url,
        era,
        "--method",
        "prompts/get",
        "--prompt-name",
        "test_prompt_with_arguments",
        "--prompt-args",
        "arg1=hello",
        "arg2=world",
    )
    assert prompt["messages"] == [
        {"role": "user", "content": {"type": "text", "text": "Prompt with arguments: arg1='hello', arg2='world'"}}
    ]
    assert era_of(prompt) == ERA_REACHED[era]
