#!/usr/bin/env python3
"""Checks that an image is a working stdio MCP server.

Runs `docker run -i --rm IMAGE [ARG...]`, sends initialize, the initialized
notification and tools/list as newline-delimited JSON-RPC, and prints one line with
the server's name and its tools. Exits 1 with the reason (and the container's stderr)
when the server does not answer correctly within the deadline.

Standard library only: it runs before the project's environment may exist.
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from typing import IO, Optional

PROTOCOL_VERSION = "2025-06-18"


class CheckFailed(Exception):
    pass


def read_lines(stream: IO[bytes], sink: "queue.Queue[Optional[bytes]]") -> None:
    for line in iter(stream.readline, b""):
        sink.put(line)
    sink.put(None)


def send(proc: subprocess.Popen, message: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def await_reply(lines: "queue.Queue[Optional[bytes]]", request_id: int, deadline: float) -> dict:
    """The response to request_id; notifications and log lines in between are skipped."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CheckFailed(f"no reply to request {request_id} before the deadline")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise CheckFailed(f"the server closed stdout before replying to request {request_id}")
        try:
            message = json.loads(line)
        except ValueError:
            raise CheckFailed(f"stdout is not JSON-RPC: {line[:200]!r}") from None
        if isinstance(message, dict) and message.get("id") == request_id:
            if "error" in message:
                raise CheckFailed(f"request {request_id} failed: {message['error']}")
            return message.get("result") or {}


def check(image: str, args: list[str], timeout: float) -> str:
    name = "mcp-check-" + uuid.uuid4().hex[:10]
    proc = subprocess.Popen(
        ["docker", "run", "-i", "--rm", "--name", name, image, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
    errors: "queue.Queue[Optional[bytes]]" = queue.Queue()
    threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True).start()
    threading.Thread(target=read_lines, args=(proc.stderr, errors), daemon=True).start()
    deadline = time.monotonic() + timeout
    ok = False
    try:
        send(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "build-images-check", "version": "1"},
                },
            },
        )
        init = await_reply(lines, 1, deadline)
        send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = await_reply(lines, 2, deadline).get("tools", [])
        server = init.get("serverInfo", {})
        tool_names = ", ".join(t.get("name", "?") for t in tools) or "none"
        ok = True
        return (
            f"{image}: MCP {init.get('protocolVersion', '?')} server "
            f"{server.get('name', '?')} {server.get('version', '')} answers; tools: {tool_names}"
        )
    except (CheckFailed, BrokenPipeError) as exc:
        stderr = b"".join(_drain(errors)).decode(errors="replace").strip()
        detail = f"\n--- container stderr ---\n{stderr[-2000:]}" if stderr else ""
        raise CheckFailed(f"{image}: {exc}{detail}") from None
    finally:
        _stop(proc, name, grace=10.0 if ok else 0.0)


def _stop(proc: subprocess.Popen, name: str, grace: float) -> None:
    """Closes stdin (a stdio server exits on EOF); removes the container after grace."""
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=grace or 0.1)
    except subprocess.TimeoutExpired:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(q: "queue.Queue[Optional[bytes]]") -> list[bytes]:
    out = []
    while True:
        try:
            item = q.get(timeout=0.5)
        except queue.Empty:
            return out
        if item is None:
            return out
        out.append(item)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    # Everything after the image goes to the server, flags included.
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments after the image")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60); give it before the image")
    ns = parser.parse_args(argv)
    try:
        print(check(ns.image, ns.args, ns.timeout))
    except CheckFailed as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
