"""MCP protocol revisions the bridge speaks, and the choice it answers a client with."""

from __future__ import annotations

from typing import Optional

# Oldest to newest; revisions negotiated with the `initialize` handshake.
KNOWN_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
# What the bridge offers a stdio server in its own `initialize`.
OFFERED_VERSION = KNOWN_VERSIONS[-1]
# What the legacy HTTP+SSE transport speaks.
LEGACY_SSE_VERSION = "2024-11-05"


def is_known(version: Optional[str]) -> bool:
    return version in KNOWN_VERSIONS


def negotiate(client_version: Optional[str], server_version: str) -> str:
    """The revision to answer a client's `initialize` with.

    The client's own revision when the bridge knows it and it is not newer than
    what the server agreed to (servers read older requests fine); otherwise the
    server's revision, and the client decides whether it can use it.
    """
    if client_version in KNOWN_VERSIONS:
        if server_version not in KNOWN_VERSIONS:
            return client_version  # type: ignore[return-value]
        if KNOWN_VERSIONS.index(client_version) <= KNOWN_VERSIONS.index(server_version):  # type: ignore[arg-type]
            return client_version  # type: ignore[return-value]
    return server_version
