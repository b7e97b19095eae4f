"""Entries of mcp.config.json for the tests and benchmarks."""

from __future__ import annotations

from typing import Any, Optional

# A stdio MCP server in busybox sh (about a megabyte: hundreds fit on a small machine):
# answers initialize, tools/list, and every tools/call with the value of $NAME (so a
# test sees which spec answers), "echo" without it.
ECHO_SERVER = r"""
while IFS= read -r line; do
  id=$(echo "$line" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"echo\",\"version\":\"1\"}}}" ;;
    *'"method":"tools/call"'*)
      echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"${NAME:-echo}\"}]}}" ;;
    *'"method":"notifications/'*) ;;
    *)
      [ -n "$id" ] && echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"tools\":[]}}" ;;
  esac
done
"""


def docker_server(
    image: str, *args: str, env: Optional[dict] = None, disabled: bool = False, init: bool = False
) -> dict:
    """`docker run -i --rm [--init] [-e NAME ...] IMAGE ARGS`, with `env` in the entry's env
    block. `init`: sh or Python as PID 1 ignores SIGTERM, and every stop waits out its timeout."""
    names = [a for name in (env or {}) for a in ("-e", name)]
    entry: dict[str, Any] = {
        "command": "docker",
        "args": ["run", "-i", "--rm", *(["--init"] if init else []), *names, image, *args],
        "disabled": disabled,
    }
    if env:
        entry["env"] = dict(env)
    return entry


def echo_server(busybox: str, name: Optional[str] = None, **kw: Any) -> dict:
    return docker_server(busybox, "sh", "-c", ECHO_SERVER, env={"NAME": name} if name else None, init=True, **kw)


def initialize_request(request_id: Any = 1, client: str = "test", version: str = "2025-06-18") -> dict:
    """A handshake-era `initialize` request, as a client sends it first."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": client, "version": "1"}},
    }
