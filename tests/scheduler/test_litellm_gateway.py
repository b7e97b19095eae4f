"""LiteLLM Proxy, configured from `mcp-orchestrator litellm-config`, in front of bridges that
ask for a bearer token: real scheduler, agents, containers and a real LiteLLM process
(installed in .cache/litellm by scripts/ensure-litellm.sh)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.harness.ports import free_port
from tests.harness.processes import ROOT, Process, clean_env
from tests.harness.servers import docker_server
from tests.harness.waiting import wait_for
from tests.scheduler.support import Orchestrator

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LITELLM = ROOT / ".cache" / "litellm" / "bin" / "litellm"
TOKEN = "tok-" + uuid.uuid4().hex
CLOCK = "lt" + uuid.uuid4().hex[:6] + "-clock"
MASTER_KEY = "sk-test-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def orch(docker_client, time_server_image):
    if not LITELLM.exists():
        message = "LiteLLM is not installed: scripts/ensure-litellm.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    o = Orchestrator(docker_client)
    o.env["MCP_ORCHESTRATOR_BRIDGE_TOKENS"] = TOKEN
    o.write_config({CLOCK: docker_server(time_server_image)})
    o.start_all()
    yield o
    o.close()


def raw(port: int, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def litellm(orch, tmp_path_factory):
    orch.wait_converged({CLOCK})
    snippet = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "litellm-config",
            "--settings",
            str(orch.settings),
            "--config",
            str(orch.config),
        ],
        cwd=ROOT,
        env=orch.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert snippet.returncode == 0, snippet.stderr
    assert TOKEN not in snippet.stdout
    config = yaml.safe_load(snippet.stdout)
    config["general_settings"] = {"master_key": MASTER_KEY}
    folder: Path = tmp_path_factory.mktemp("litellm")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    # The gateway's side holds the token in its own environment, as the snippet says.
    env = clean_env(MCP_ORCHESTRATOR_TOKEN=TOKEN, LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = Process(
        "litellm",
        [str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        folder / "litellm.log",
        env=env,
        cwd=folder,
        whole_group=True,
    )

    def live() -> bool:
        assert proc.alive(), f"LiteLLM exited: {proc.output()[-3000:]}"
        try:
            return raw(port, "GET", "/health/liveliness", {})[0] == 200
        except OSError:
            return False

    try:
        wait_for(live, 120, "LiteLLM to start")
        yield config, port
    finally:
        proc.stop()


def gateway(port: int, method: str, path: str, payload=None) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            method,
            path,
            body=json.dumps(payload) if payload is not None else None,
            headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:500])
        return json.loads(body)
    finally:
        conn.close()


def test_the_snippet_names_the_token_variable(litellm):
    config, _ = litellm
    entry = config["mcp_servers"][CLOCK.replace("-", "_")]
    assert entry["auth_type"] == "bearer_token"
    assert entry["auth_value"] == "os.environ/MCP_ORCHESTRATOR_TOKEN"


def test_without_the_token_the_bridge_refuses_both_transports(orch):
    port = orch.servers()[CLOCK]["host_port"]
    init = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "x", "version": "1"},
            },
        }
    ).encode()
    status, headers = raw(
        port,
        "POST",
        f"/mcp/{CLOCK}/mcp",
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        init,
    )
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert raw(port, "GET", f"/mcp/{CLOCK}/sse", {"Accept": "text/event-stream"})[0] == 401
    assert raw(port, "GET", f"/mcp/{CLOCK}/health", {})[0] == 200


def test_litellm_lists_and_calls_the_tools(litellm):
    config, port = litellm
    name = CLOCK.replace("-", "_")

    def tools() -> list:
        return gateway(port, "GET", "/v1/mcp/tools").get("tools") or []

    listed = wait_for(tools, 60, "LiteLLM to list the server's tools")
    assert any(t["name"].endswith("get_current_time") for t in listed), listed
    result = gateway(
        port,
        "POST",
        "/mcp-rest/tools/call",
        {"server_id": name, "name": "get_current_time", "arguments": {"timezone": "Etc/UTC"}},
    )
    assert result.get("isError") is False, result
    assert "Etc/UTC" in json.dumps(result)
