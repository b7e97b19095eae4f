"""Bounded connections on the bridge ports: no client can exhaust the container-agent.

Every bridge port of the process shares one `ConnectionCount` (common/connection_limits):
a connection over the total or over its address's share is answered 503 / 429 at once
and closed, before it costs more than a moment, and the total is kept below the
process's open-file limit so that Docker and ZeroMQ always have descriptors left. A
connection that has not delivered its first request's headers within
`header_timeout_seconds` is closed (408); after a request, aiohttp's keep-alive timeout
closes an idle one. Streams in progress are never cut by either.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from common.connection_limits import ConnectionCount, Refusal, RefusalLog, fit_open_files

from .config import BridgeConfig

log = logging.getLogger(__name__)

# The listen backlog of a bridge port. asyncio accepts up to this many connections in one
# go, before any refused one is closed: the reserve below must cover such a burst.
ACCEPT_BACKLOG = 256
# Descriptors kept for everything else: a burst of accepts, the attach socket of every
# served container, the Docker API, ZeroMQ, the reverse-proxy client, logs.
RESERVED_FILES = 512

OVER_TOTAL = Refusal(
    "503 Service Unavailable", "Service Unavailable: the MCP bridge has too many open connections", jsonrpc=True
)
OVER_ADDRESS = Refusal(
    "429 Too Many Requests", "Too Many Requests: too many open connections from your address", jsonrpc=True
)
HEADERS_LATE = Refusal(
    "408 Request Timeout", "Request Timeout: the request headers did not arrive in time", jsonrpc=True
)


class ConnectionLimits:
    def __init__(self, config: BridgeConfig) -> None:
        total = fit_open_files(config.max_connections, "[bridge] max_connections", log, RESERVED_FILES)
        # One address never holds more than a quarter of what fits, however low the limit.
        per_address = min(config.max_connections_per_address, max(1, total // 4))
        self.count = ConnectionCount(total, per_address)
        self.header_timeout = config.header_timeout_seconds
        self._refusals = RefusalLog()
        log.info("bridges accept at most %d connections, %d per client address", total, per_address)

    def refused(self, refusal: Refusal, peer: str) -> None:
        self._refusals.note(refusal, peer)
        line = self._refusals.summary()  # at most one line per interval, however many
        if line:
            log.warning("bridge %s", line)


class BoundedServer(web.Server):
    """aiohttp's low-level server, whose connections are counted and given a deadline."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits

    def __call__(self) -> RequestHandler:
        return _BoundedHandler(self, loop=self._loop, **self._kwargs)

    def finish_connections(self) -> None:
        """Busy connections close once their answer is sent (their streams: when they
        end). Idle ones stay open for now: closing a keep-alive connection races with a
        request the client may be sending on it at that moment, which would fail
        unanswered; their next request is answered with `Connection: close` instead (see
        Bridge._handle), and close_idle_connections ends those that stay quiet."""
        for connection in self.connections:
            if getattr(connection, "_request_in_progress", True):
                connection.close()

    def close_idle_connections(self) -> None:
        for connection in self.connections:
            if not getattr(connection, "_request_in_progress", True):
                connection.force_close()


class _BoundedHandler(RequestHandler):
    _peer: Optional[str] = None
    _deadline: Optional[Any] = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        limits: ConnectionLimits = self._manager.limits  # type: ignore[union-attr]
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else "unknown"
        refusal = limits.count.refusal(peer)
        if refusal is not None:
            limits.refused(refusal, peer)
            transport.write(refusal.response())
            transport.close()
            return
        limits.count.opened(peer)
        self._peer = peer
        self._deadline = self._loop.call_later(limits.header_timeout, self._headers_due)

    def _headers_due(self) -> None:
        self._deadline = None
        # aiohttp counts a request once its head is parsed.
        if getattr(self, "_request_count", 1) == 0 and self.transport is not None:
            self._manager.limits.refused(HEADERS_LATE, self._peer or "unknown")  # type: ignore[union-attr]
            self.transport.write(HEADERS_LATE.response())
            self.force_close()

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._peer is not None:
            self._manager.limits.count.closed(self._peer)  # type: ignore[union-attr]
            self._peer = None
        super().connection_lost(exc)
