"""Server ids and where they appear: URL paths, ALB path patterns, container names and
public URLs. Pure; the one owner of these rules.

A server id is the key of its entry in mcp.config.json. It becomes part of URL paths,
the container's name and AWS resource names and tags, so one rule (here) decides what
is valid, and every process that receives an id checks it with `problem()`.

    /mcp/{id}            the prefix the ALB routes to the server's port
    /mcp/{id}/mcp        Streamable HTTP (what clients are given)
    /mcp/{id}/sse        legacy HTTP+SSE, with /mcp/{id}/messages
    /mcp/{id}/health     the ALB's health check
    mcp-{id}             the container's name
"""

from __future__ import annotations

import re
from typing import Optional

# Keeps "/mcp/{id}/*" well inside the ALB's 128 characters per path pattern.
MAX_LENGTH = 100
# Safe unescaped in a URL path, a container name, an AWS tag value and a path pattern
# (no wildcards '*' or '?').
PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
PATH_ROOT = "/mcp/"
CONTAINER_PREFIX = "mcp-"


def problem(server_id: object) -> Optional[str]:
    """Why `server_id` cannot be used (None when it can). Never quotes a long id whole."""
    if not isinstance(server_id, str) or not server_id:
        return "the server id is empty"
    if len(server_id) > MAX_LENGTH:
        return f"the server id is {len(server_id)} characters long; at most {MAX_LENGTH} fit in ALB path patterns"
    if not PATTERN.fullmatch(server_id):
        return (
            "the server id must start with a letter or digit and contain only letters, "
            "digits, '.', '_' and '-' (it becomes part of a URL path, the container name "
            "and AWS resource names)"
        )
    return None


def path_prefix(server_id: str) -> str:
    return f"{PATH_ROOT}{server_id}"


def endpoint_path(server_id: str) -> str:
    """The Streamable HTTP endpoint clients use."""
    return f"{path_prefix(server_id)}/mcp"


def messages_path(server_id: str) -> str:
    """Where a legacy SSE client posts its messages."""
    return f"{path_prefix(server_id)}/messages"


def health_path(server_id: str) -> str:
    return f"{path_prefix(server_id)}/health"


def path_patterns(server_id: str) -> tuple[str, str]:
    """The path-pattern values of the server's listener rule."""
    return (path_prefix(server_id), f"{path_prefix(server_id)}/*")


def split_path(path: str) -> Optional[tuple[str, str]]:
    """(server id, the rest after its prefix) for "/mcp/{id}/rest"; None for any other
    path (the prefix alone included)."""
    if not path.startswith(PATH_ROOT):
        return None
    server_id, slash, rest = path[len(PATH_ROOT) :].partition("/")
    return (server_id, rest) if slash else None


def container_name(server_id: str) -> str:
    """The name users look for (`docker logs mcp-{id}`)."""
    return f"{CONTAINER_PREFIX}{server_id}"


def public_url(base_url: str, bridge_host: str, server_id: str, port: Optional[int]) -> str:
    """Where MCP clients reach the server: under `base_url` (the ALB's address) when it
    is set, else on the bridge's own port ("" when the port is not known yet)."""
    base = base_url.rstrip("/")
    if not base:
        if port is None:
            return ""
        host = bridge_host
        if host in ("0.0.0.0", "::", "", "*"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{port}"
    return f"{base}{endpoint_path(server_id)}"
