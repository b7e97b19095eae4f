"""Helpers for the bridge tests: containers to serve, a running bridge, plain HTTP.

Imported by the test_bridge*.py modules (fixtures are re-exported there).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from services.container_agent.bridge import BridgeConfig, BridgeEvent, BridgeThread
from tests.harness.labels import TEST_LABEL

# A scripted stdio MCP server in busybox sh: answers initialize, and test methods
# that make it misbehave on purpose (never answer, send progress, broadcast, print
# garbage, ask the client something, write to stderr, exit). Ids are echoed from
# the request line, so it works with the ids the bridge assigns.
FAKE_SERVER = r"""
while IFS= read -r line; do
  id=$(echo "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      if [ -n "$STRICT" ] && [ -e /.initialized ]; then
        echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"error\":{\"code\":-32600,\"message\":\"already initialized\"}}"
        continue
      fi
      touch /.initialized
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{\"listChanged\":true},\"resources\":{\"subscribe\":true}},\"serverInfo\":{\"name\":\"fake\",\"version\":\"1.0\"}}}" ;;
    *'"method":"notifications/cancelled"'*)
      echo "cancelled: $line" >&2 ;;
    *'"method":"notifications/'*) ;;
    *'"method":"test/slow"'*)
      echo "fake server: slow request $id" >&2 ;;
    *'"method":"test/progress"'*)
      tok=$(echo "$line" | sed -n 's/.*"progressToken":\("[^"]*"\|[0-9][0-9]*\).*/\1/p')
      echo "fake server: progress token $tok" >&2
      echo "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":$tok,\"progress\":1,\"total\":2}}"
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"done\":true}}" ;;
    *'"method":"test/log"'*)
      echo "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"log for $id\"}}"
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *'"method":"test/broadcast"'*)
      echo '{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}'
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *'"method":"test/garbage"'*)
      echo 'this line is not JSON'
      echo "{\"result\":{\"after\":\"garbage\"},\"jsonrpc\":\"2.0\",\"id\":$id}" ;;
    *'"method":"test/ask"'*)
      echo '{"jsonrpc":"2.0","id":"srv-1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}'
      IFS= read -r reply
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"reply\":$reply}}" ;;
    *'"method":"test/ping-bridge"'*)
      echo '{"jsonrpc":"2.0","id":"srv-ping","method":"ping"}'
      IFS= read -r reply
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"reply\":$reply}}" ;;
    *'"method":"resources/subscribe"'*|*'"method":"resources/unsubscribe"'*)
      what=$(echo "$line" | sed -n 's/.*"method":"resources\/\([a-z]*\)".*"uri":"\([^"]*\)".*/\1 \2/p')
      echo "fake server: $what" >&2
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *'"method":"test/update"'*)
      echo '{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}'
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *'"method":"tools/call"'*'"name":"ask"'*)
      echo '{"jsonrpc":"2.0","id":"srv-2","method":"elicitation/create","params":{"message":"Your name?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}}}'
      IFS= read -r reply
      echo "fake server: elicitation answer $reply" >&2
      name=$(echo "$reply" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hello $name\"}]}}" ;;
    *'"method":"test/stderr"'*)
      echo "fake server: a line on stderr" >&2
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *'"method":"test/exit"'*)
      echo "fake server: exiting with 3" >&2
      exit 3 ;;
    *'"method":"tools/list"'*)
      echo "fake server: tools/list answered" >&2
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"tools\":${TOOLS:-[]}}}" ;;
    *'"method":"ping"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{}}" ;;
    *)
      [ -n "$id" ] && echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"error\":{\"code\":-32601,\"message\":\"no such method\"}}" ;;
  esac
done
"""

MODERN_SERVER = (Path(__file__).parent / "modern_server.py").read_text()

ACCEPT_BOTH = "application/json, text/event-stream"
NODE_PREFIX = Path(__file__).resolve().parents[2] / ".cache" / "node"


# --- containers --------------------------------------------------------------


class Containers:
    """Creates labelled containers with stdin open (as the agent will) and removes them all."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.created: list[Any] = []

    def run(self, image: str, command: Optional[list] = None, **kwargs: Any) -> Any:
        name = f"tbridge-{uuid.uuid4().hex[:10]}"
        container = self.client.containers.run(
            image,
            command,
            name=name,
            detach=True,
            stdin_open=True,
            labels={TEST_LABEL: "bridge"},
            **kwargs,
        )
        self.created.append(container)
        return container

    def fake_server(self, busybox_image: str, strict: bool = False, tools: str = "") -> Any:
        """The scripted server; `strict` refuses a second initialize, as some servers do;
        `tools`: the JSON list its tools/list answers (empty by default)."""
        environment = {"STRICT": "1"} if strict else {}
        if tools:
            environment["TOOLS"] = tools
        return self.run(busybox_image, ["sh", "-c", FAKE_SERVER], environment=environment)

    def modern_server(self, time_server_image: str) -> Any:
        """tests/container_agent/modern_server.py (the SDK 2.x, 2026-07-28 era) in the time
        server's image, which has that SDK."""
        return self.run(time_server_image, ["-c", MODERN_SERVER], entrypoint="python3")

    def remove_all(self) -> None:
        import docker.errors

        for container in self.created:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        self.created.clear()


@pytest.fixture(scope="module")
def containers(docker_client) -> Iterator[Containers]:
    made = Containers(docker_client)
    yield made
    made.remove_all()


# --- a running bridge ----------------------------------------------------------


@dataclass
class RunningBridge:
    thread: BridgeThread
    events: "queue.Queue[BridgeEvent]" = field(default_factory=queue.Queue)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.thread, name)

    def next_event(self, server_id: str, kind: str, timeout: float = 20.0) -> BridgeEvent:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {kind!r} event for {server_id} within {timeout:g} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event.server_id == server_id and event.kind == kind:
                return event


def start_bridge(docker_client: Any, **settings: Any) -> RunningBridge:
    events: "queue.Queue[BridgeEvent]" = queue.Queue()
    # Tests leave requests the scripted server never answers: a short drain at the end.
    settings.setdefault("drain_seconds", 1.0)
    settings.setdefault("bind_host", "127.0.0.1")
    thread = BridgeThread(docker_client, BridgeConfig(**settings), on_event=events.put)
    thread.start()
    return RunningBridge(thread, events)


@pytest.fixture(scope="module")
def bridge(docker_client) -> Iterator[RunningBridge]:
    running = start_bridge(docker_client)
    yield running
    running.thread.stop()


def serve_ready(bridge: RunningBridge, server_id: str, container: Any, port: int = 0) -> int:
    port = bridge.serve(server_id, port, container.id)
    assert bridge.wait_ready(server_id, 60), f"{server_id} did not initialize: {bridge.health(server_id)}"
    return port


# --- Node.js clients ------------------------------------------------------------


@dataclass(frozen=True)
class NodeTool:
    """A client installed in .cache/node by scripts/ensure-node-tools.sh, and the environment
    that runs it on the Node.js 22 installed beside it (the system's is too old)."""

    path: str
    env: dict


def node_tool(name: str, **extra_env: str) -> NodeTool:
    """The tool `name` from .cache/node/node_modules/.bin, `extra_env` added to its
    environment; missing, it fails the test in CI (a CI run must not skip the real thing)
    and skips it elsewhere."""
    path = NODE_PREFIX / "node_modules" / ".bin" / name
    node_bins = sorted((NODE_PREFIX / "node_modules").glob("node-linux-*/bin"))
    if not path.exists() or not node_bins:
        message = f"{name} or Node.js 22 is not installed in .cache/node: scripts/ensure-node-tools.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path_var = f"{node_bins[0]}{os.pathsep}{os.environ.get('PATH', '')}"
    return NodeTool(str(path), {**os.environ, "NO_COLOR": "1", "PATH": path_var, **extra_env})


# --- plain HTTP --------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


def http_request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: Optional[dict] = None,
    timeout: float = 30.0,
    host: str = "127.0.0.1",
) -> Reply:
    """One request, no redirect following, no default headers beyond Host."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def post_mcp(port: int, server_id: str, message: Any, session: Optional[str] = None, **kwargs: Any) -> Reply:
    headers = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}
    if session:
        headers["Mcp-Session-Id"] = session
    headers.update(kwargs.pop("headers", {}) or {})
    return http_request(port, "POST", f"/mcp/{server_id}/mcp", message, headers, **kwargs)


def initialize(
    port: int, server_id: str, version: str = "2025-06-18", request_id: Any = 0, capabilities: Optional[dict] = None
) -> str:
    """A new Streamable HTTP session id (after initialize + initialized)."""
    reply = post_mcp(
        port,
        server_id,
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities or {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        },
    )
    assert reply.status == 200, reply
    session = reply.header("Mcp-Session-Id")
    assert session
    done = post_mcp(port, server_id, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    assert done.status == 202, done
    return session


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """(event, data) pairs of a complete SSE body."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, "\n".join(data)))
    return events


class SseStream:
    """An open SSE response read line by line (for GET streams that do not end)."""

    def __init__(
        self,
        port: int,
        path: str,
        headers: Optional[dict] = None,
        timeout: float = 30.0,
        method: str = "GET",
        body: Any = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.conn.request(method, path, body=body, headers={"Accept": "text/event-stream", **(headers or {})})
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.comments: list[str] = []

    def next_event(self, timeout: float = 20.0) -> tuple[str, str]:
        """The next (event, data); comments are collected on the side."""
        deadline = time.monotonic() + timeout
        name, data = "message", []
        while True:
            if time.monotonic() > deadline:
                pytest.fail("no SSE event in time")
            raw = self._readline(deadline)
            if not raw:
                raise EOFError("the SSE stream ended")
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                return name, "\n".join(data)

    def next_comment(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.comments:
            if time.monotonic() > deadline:
                pytest.fail("no SSE comment in time")
            raw = self._readline(deadline)
            if not raw:
                raise EOFError("the SSE stream ended")
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                self.comments.append(line)
        return self.comments.pop(0)

    def _readline(self, deadline: float) -> bytes:
        # The response object undoes the chunked framing; its end is b"".
        self.sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            return self.response.readline()
        except socket.timeout:
            pytest.fail("the SSE stream stalled")

    def close(self) -> None:
        self.conn.close()
