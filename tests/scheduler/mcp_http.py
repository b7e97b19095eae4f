"""A minimal MCP client over plain HTTP (Streamable HTTP, JSON or SSE answers)."""

from __future__ import annotations

import http.client
import json
from typing import Any, Optional

ACCEPT = "application/json, text/event-stream"
PROTOCOL_VERSION = "2025-06-18"


class McpError(Exception):
    pass


def _post(port: int, path: str, payload: dict, session: Optional[str], timeout: float) -> tuple[int, dict, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "MCP-Protocol-Version": PROTOCOL_VERSION}
        if session:
            headers["Mcp-Session-Id"] = session
        conn.request("POST", path, body=json.dumps(payload), headers=headers)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def _message(headers: dict, body: str) -> Any:
    if headers.get("content-type", "").startswith("text/event-stream"):
        for line in body.splitlines():
            if line.startswith("data:"):
                data = json.loads(line[5:].strip())
                if "id" in data:
                    return data
        raise McpError(f"no answer in the event stream: {body[:200]!r}")
    return json.loads(body)


def call_tool(port: int, server_id: str, tool: str, arguments: dict, timeout: float = 10.0) -> Any:
    """initialize, notifications/initialized, tools/call: the call's result."""
    path = f"/mcp/{server_id}/mcp"
    status, headers, body = _post(
        port,
        path,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "scheduler-tests", "version": "1"},
            },
        },
        None,
        timeout,
    )
    if status != 200:
        raise McpError(f"initialize: HTTP {status}: {body[:200]}")
    session = headers.get("mcp-session-id")
    _post(port, path, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session, timeout)
    status, headers, body = _post(
        port,
        path,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
        session,
        timeout,
    )
    if status != 200:
        raise McpError(f"tools/call: HTTP {status}: {body[:200]}")
    answer = _message(headers, body)
    if "error" in answer:
        raise McpError(f"tools/call: {answer['error']}")
    return answer["result"]


def try_call(port: int, server_id: str, tool: str, arguments: dict) -> Optional[Any]:
    try:
        return call_tool(port, server_id, tool, arguments, timeout=5.0)
    except (OSError, McpError, ValueError):
        return None
