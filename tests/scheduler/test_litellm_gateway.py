"""LiteLLM Proxy, configured from `mcp-orchestrator litellm-config`, in front of bridges that
ask for a bearer token: real scheduler, agents, containers and a real LiteLLM process
(installed in .cache/litellm by scripts/ensure-litellm.sh)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.scheduler.support import ROOT, Orchestrator, docker_server, free_port_range, wait_for

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
    port = free_port_range(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ORCHESTRATOR_")}
    # The gateway's side holds the token in its own environment, as the snippet says.
    env.update(MCP_ORCHESTRATOR_TOKEN=TOKEN, LITELLM_LOCAL_MODEL_COST_MAP="True")
    log = open(folder / "litellm.log", "w+")
    proc = subprocess.Popen(
        [str(LITELLM), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def live() -> bool:
        assert proc.poll() is None, f"LiteLLM exited: {(folder / 'litellm.log').read_text()[-3000:]}"
        try:
            return raw(port, "GET", "/health/liveliness", {})[0] == 200
        except OSError:
            return False

    try:
        wait_for(live, 120, "LiteLLM to start")
        yield config, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


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
