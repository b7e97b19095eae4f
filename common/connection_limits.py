"""How many connections a server holds, in all and per client address.

Used by the dashboard (waitress) and the MCP bridges (aiohttp). A connection costs a
file descriptor until it is closed, whether or not it ever sends a request; without
bounds a few hundred idle or half-sent connections make a server unreachable, or (in
the container-agent) starve Docker of file descriptors. The server asks `refusal()`
before it takes on an accepted connection and answers the ones over a limit at once
(503 over the total, 429 over the per-address cap), so everyone else stays served.

The address counted is the TCP peer: X-Forwarded-For is not known before the request
arrives. Behind the ALB the peers are the load balancer's nodes, which forward a request
only once its headers are complete, so the per-address cap there bounds what one node
holds rather than what one client holds.
"""

from __future__ import annotations

import json
import logging
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

# Descriptors kept free for everything else the process opens (ZeroMQ, logs, files).
RESERVED_FILES = 64


@dataclass(frozen=True)
class Refusal:
    """An answer the server gives on its own, just before it closes the connection."""

    status: str  # "503 Service Unavailable"
    reason: str  # one line for the client and the log
    jsonrpc: bool = False  # the body is a JSON-RPC error (MCP clients show its message)

    def response(self) -> bytes:
        """A complete HTTP/1.1 answer that closes the connection."""
        if self.jsonrpc:
            body = json.dumps(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": self.reason}}
            ).encode()
            ctype = "application/json"
        else:
            body = (self.reason + "\n").encode()
            ctype = "text/plain; charset=utf-8"
        return (
            f"HTTP/1.1 {self.status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 10\r\nConnection: close\r\n"
            "\r\n"
        ).encode() + body


OVER_TOTAL = Refusal("503 Service Unavailable", "the dashboard has too many open connections")
OVER_ADDRESS = Refusal("429 Too Many Requests", "too many open connections from your address")
REQUEST_TIMEOUT = Refusal("408 Request Timeout", "the request did not arrive in time")


class ConnectionCount:
    """Open connections, in all and by peer address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._by_address: Counter[str] = Counter()
        self._total = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return self._total

    def refusal(self, address: str) -> Optional[Refusal]:
        """Why a new connection from `address` must be turned away (None: take it)."""
        with self._lock:
            if self._total >= self.max_total:
                return OVER_TOTAL
            if self._by_address[address] >= self.max_per_address:
                return OVER_ADDRESS
            return None

    def opened(self, address: str) -> None:
        with self._lock:
            self._total += 1
            self._by_address[address] += 1

    def closed(self, address: str) -> None:
        with self._lock:
            self._total -= 1
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]


def connections_that_fit(wanted: int, open_files_limit: int, reserved: int = RESERVED_FILES) -> int:
    """`wanted`, lowered so that the connections and the process's other files fit."""
    return max(1, min(wanted, open_files_limit - reserved))


def fit_open_files(wanted: int, what: str, log: logging.Logger, reserved: int = RESERVED_FILES) -> int:
    """`wanted` connections, after raising the soft open-file limit as far as they need
    and the hard limit allows; lowered (and said so) when they still would not fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + reserved
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    fitted = connections_that_fit(wanted, soft, reserved)
    if fitted < wanted:
        log.warning(
            "%s lowered from %d to %d to fit the open-file limit (%d; raise LimitNOFILE)", what, wanted, fitted, soft
        )
    return fitted


class RefusalLog:
    """Counts connections turned away or timed out, and sums them up at most once per
    `interval` seconds: a flood must not become a flood of log lines."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._counts: Counter[tuple[str, str]] = Counter()
        self._last: Optional[float] = None

    def note(self, refusal: Refusal, address: str) -> None:
        self._counts[(refusal.reason, address)] += 1

    def summary(self) -> Optional[str]:
        """One line about what was counted since the last one, when one is due."""
        now = self._clock()
        if not self._counts or (self._last is not None and now - self._last < self.interval):
            return None
        self._last = now
        top = self._counts.most_common(5)
        more = len(self._counts) - len(top)
        self._counts.clear()
        return (
            "connections closed: "
            + "; ".join(f"{count} from {address} ({reason})" for (reason, address), count in top)
            + (f"; and from {more} more address(es)" if more > 0 else "")
        )
