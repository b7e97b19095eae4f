"""Minimal MCP clients for the load generator: Streamable HTTP and plain stdio.

Not the SDK: its own overhead would hide the bridges'. Each HTTP session is one
keep-alive connection; a POST is answered as JSON or as an SSE stream (both are
read whole, since the SDK servers end the stream after the response). The stdio
client writes JSON-RPC lines to `docker run -i` and matches answers by id, so
several sessions can share one server process, as they share one bridge.

Two protocol eras: `HttpSession` is the handshake era (initialize, then requests
under an Mcp-Session-Id); `StatelessClient` is 2026-07-28, where every request is
one POST carrying its protocol version and the client's capabilities in
`params._meta`, mirrored in headers, with no initialize and no session.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any, Optional, Sequence

from services.container_agent.bridge.http_common import VERSION_HEADER
from services.container_agent.bridge.modern import (
    META_CAPABILITIES,
    META_VERSION,
    METHOD_HEADER,
    MODERN_VERSIONS,
    NAME_HEADER,
    NAME_KEYS,
)

from .http_client import HttpConnection, Response

PROTOCOL_VERSION = "2025-06-18"
MODERN_VERSION = MODERN_VERSIONS[-1]  # 2026-07-28
CLIENT_INFO = {"name": "mcp-orchestrator-bench", "version": "1"}
ACCEPT = "application/json, text/event-stream"


class McpError(Exception):
    """An MCP exchange that did not succeed (HTTP status, JSON-RPC error, bad body)."""


def initialize_params() -> dict:
    return {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}


def modern_params(params: Optional[dict]) -> dict:
    """`params` with the `_meta` every 2026-07-28 request carries."""
    meta = {META_VERSION: MODERN_VERSION, META_CAPABILITIES: {}}
    return {**(params or {}), "_meta": meta}


def modern_headers(method: str, params: Optional[dict]) -> dict[str, str]:
    """The headers a 2026-07-28 POST mirrors its body in (Mcp-Name only for the methods
    that name something)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT,
        VERSION_HEADER: MODERN_VERSION,
        METHOD_HEADER: method,
    }
    key = NAME_KEYS.get(method)
    if key is not None and params and isinstance(params.get(key), str):
        headers[NAME_HEADER] = params[key]
    return headers


def message_from(response: Response, want_id: int) -> dict:
    """The JSON-RPC response with id `want_id` in a JSON or SSE body."""
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        for line in response.body.split(b"\n"):
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if isinstance(msg, dict) and msg.get("id") == want_id:
                    return msg
        raise McpError(f"no answer to request {want_id} in the SSE stream ({len(response.body)} bytes)")
    msg = json.loads(response.body)
    if isinstance(msg, list):
        for item in msg:
            if isinstance(item, dict) and item.get("id") == want_id:
                return item
    if isinstance(msg, dict) and msg.get("id") == want_id:
        return msg
    raise McpError(f"no answer to request {want_id}: {response.body[:200]!r}")


def result_of(msg: dict) -> Any:
    if "error" in msg:
        raise McpError(f"JSON-RPC error {msg['error'].get('code')}: {msg['error'].get('message')}")
    return msg.get("result")


def tool_result(name: str, result: Any) -> dict:
    """A tools/call result that succeeded; McpError for a tool error or a bad shape."""
    if not isinstance(result, dict) or result.get("isError"):
        raise McpError(f"tools/call {name} failed: {str(result)[:200]}")
    return result


class HttpSession:
    """One MCP session over Streamable HTTP at http://host:port{path}."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 60.0) -> None:
        self.conn = HttpConnection(host, port, timeout)
        self.path = path
        self.session_id: Optional[str] = None
        self.protocol_version = PROTOCOL_VERSION
        self._ids = itertools.count(1)
        self._headers = {"Content-Type": "application/json", "Accept": ACCEPT}

    async def _post(self, payload: bytes) -> Response:
        return await self.conn.request("POST", self.path, self._headers, payload)

    async def initialize(self) -> dict:
        rid = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": initialize_params()}).encode()
        response = await self._post(body)
        if response.status != 200:
            raise McpError(f"initialize: HTTP {response.status}: {response.body[:200]!r}")
        result = result_of(message_from(response, rid))
        self.session_id = response.headers.get("mcp-session-id")
        self.protocol_version = result.get("protocolVersion", PROTOCOL_VERSION)
        if self.session_id:
            self._headers["Mcp-Session-Id"] = self.session_id
        self._headers["MCP-Protocol-Version"] = self.protocol_version
        done = await self._post(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        if done.status not in (200, 202, 204):
            raise McpError(f"notifications/initialized: HTTP {done.status}: {done.body[:200]!r}")
        return result

    async def request(self, method: str, params: Optional[dict] = None) -> Any:
        rid = next(self._ids)
        message: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        response = await self._post(json.dumps(message).encode())
        if response.status != 200:
            raise McpError(f"{method}: HTTP {response.status}: {response.body[:200]!r}")
        return result_of(message_from(response, rid))

    async def call_tool(self, name: str, arguments: dict) -> Any:
        return tool_result(name, await self.request("tools/call", {"name": name, "arguments": arguments}))

    async def delete(self) -> int:
        """End the session (DELETE); the HTTP status (405 for servers that do not allow it)."""
        if not self.session_id:
            return 0
        response = await self.conn.request("DELETE", self.path, self._headers)
        return response.status

    def close(self) -> None:
        self.conn.close()


class StatelessClient:
    """A 2026-07-28 client of http://host:port{path}: each request one POST, on one
    keep-alive connection (as a client's connection pool keeps it), with no session."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 60.0) -> None:
        self.conn = HttpConnection(host, port, timeout)
        self.path = path
        self._ids = itertools.count(1)

    async def request(self, method: str, params: Optional[dict] = None) -> Any:
        rid = next(self._ids)
        message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": modern_params(params)}
        response = await self.conn.request(
            "POST", self.path, modern_headers(method, params), json.dumps(message).encode()
        )
        if response.status != 200:
            raise McpError(f"{method} ({MODERN_VERSION}): HTTP {response.status}: {response.body[:200]!r}")
        return result_of(message_from(response, rid))

    async def call_tool(self, name: str, arguments: dict) -> Any:
        return tool_result(name, await self.request("tools/call", {"name": name, "arguments": arguments}))

    async def delete(self) -> int:
        return 0  # no session to end

    def close(self) -> None:
        self.conn.close()


class StdioServer:
    """`docker run -i --rm ...` (or any command) spoken to line by line; requests by id."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader: Optional[asyncio.Task] = None
        self.stderr_tail: list[bytes] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        self._reader = asyncio.ensure_future(self._read())
        self._errs = asyncio.ensure_future(self._read_stderr())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        while True:
            line = await stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and type(msg.get("id")) is int and ("result" in msg or "error" in msg):
                future = self._pending.pop(msg["id"], None)
                if future is not None and not future.done():
                    future.set_result(msg)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    McpError(
                        "the server closed its stdout: " + b" | ".join(self.stderr_tail[-3:]).decode(errors="replace")
                    )
                )
        self._pending.clear()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-20:]

    def _send(self, message: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: Optional[dict] = None, timeout: float = 60.0) -> Any:
        rid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        message: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)
        try:
            msg = await asyncio.wait_for(future, timeout) if timeout else await future
        finally:
            self._pending.pop(rid, None)
        return result_of(msg)

    async def initialize(self, timeout: float = 60.0) -> dict:
        result = await self.request("initialize", initialize_params(), timeout=timeout)
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    async def call_tool(self, name: str, arguments: dict, modern: bool = False) -> Any:
        """tools/call; `modern`: as a 2026-07-28 request (its `_meta`, no session needed)."""
        params = {"name": name, "arguments": arguments}
        # No wait_for: one task less per call on the floor we measure against.
        result = await self.request("tools/call", modern_params(params) if modern else params, timeout=0)
        return tool_result(name, result)

    async def close(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()  # EOF: the server exits, `--rm` removes its container
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        for task in (self._reader, self._errs):
            if task is not None:
                task.cancel()
        self.proc = None
