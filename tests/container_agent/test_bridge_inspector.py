"""The MCP Inspector CLI (TypeScript SDK client) lists and calls tools through the bridge.

Installed under .cache/node by:
    npm install --prefix .cache/node --no-audit --no-fund @modelcontextprotocol/inspector
(on Node 20 npm picks 0.15.0, the last release whose engines allow Node < 22).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    bridge,
    containers,
    serve_ready,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "mcp-inspector"
INSTALL = "npm install --prefix .cache/node --no-audit --no-fund @modelcontextprotocol/inspector"


@pytest.fixture(scope="module")
def inspector() -> str:
    if not INSPECTOR.exists():
        message = f"the MCP Inspector is not installed: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(INSPECTOR)


@pytest.fixture(scope="module")
def port(bridge: RunningBridge, containers: Containers, time_server_image) -> int:
    return serve_ready(bridge, "inspected", containers.run(time_server_image))


def run_cli(inspector: str, *args: str) -> dict:
    done = subprocess.run(
        [inspector, "--cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("transport, endpoint", [("http", "mcp"), ("sse", "sse")])
def test_inspector_lists_the_tools(inspector, port, transport, endpoint):
    url = f"http://127.0.0.1:{port}/mcp/inspected/{endpoint}"
    listed = run_cli(inspector, url, "--transport", transport, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == {"get_current_time", "convert_time"}


def test_inspector_calls_a_tool(inspector, port):
    url = f"http://127.0.0.1:{port}/mcp/inspected/mcp"
    result = run_cli(
        inspector,
        url,
        "--transport",
        "http",
        "--method",
        "tools/call",
        "--tool-name",
        "convert_time",
        "--tool-arg",
        "source_timezone=UTC",
        "time=10:00",
        "target_timezone=Asia/Tokyo",
    )
    assert result["structuredContent"]["target"]["datetime"][11:16] == "19:00"
