"""The scheduler's link to one agent: requests with bounded waits, availability, back-off.

An agent that does not answer (after the Lazy Pirate client's retries) is marked
unavailable and left alone for a while, 1 s doubling up to 30 s, so that a dead agent
costs the reconcile loop one bounded wait per back-off step, never a hang. Hearing
from it again on its PUB socket (a new epoch, or a heartbeat after silence) clears the
back-off at once. An agent that answers with an error is available: the error is
about the request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import zmq

from common.protocol import CodedError, ProtocolError
from common.reqrep import RemoteError, RequestTimeout, ThreadClients

log = logging.getLogger(__name__)

RETRY_BACKOFF = (1.0, 30.0)
# An agent not known to be up is probed with one short request, so that an agent that
# is starting or gone delays the reconcile thread by this much at most.
PROBE_TIMEOUT_MS = 1000


class AgentUnavailable(Exception):
    """The agent did not answer (or is in back-off): nothing was done."""


@dataclass(frozen=True)
class AgentHealth:
    name: str
    available: bool
    ever_answered: bool
    error: Optional[str]


class AgentLink:
    """Used by the reconcile thread and its step workers (each thread has a ReqClient of
    its own); `heard` may be called from any thread."""

    def __init__(
        self,
        name: str,
        ctx: zmq.Context,
        endpoint: str,
        *,
        timeout_ms: int,
        attempts: int,
        src: str,
        max_bytes: int,
        silent: Callable[[], bool] = lambda: False,
        on_back: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        # Called (before the reply is used) when an agent that had stopped answering
        # answers again: it may be a new process, and what it said before is stale.
        self._on_back = on_back
        # Its PUB socket has been quiet for several heartbeats (set by the loop thread).
        self.silent = silent
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self._clients = ThreadClients(
            ctx, endpoint, timeout_ms=timeout_ms, retries=max(attempts - 1, 0), src=src, max_bytes=max_bytes
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._available = False
        self._ever = False
        self._error: Optional[str] = "not contacted yet"
        self._failures = 0
        self._next_try = 0.0

    def health(self) -> AgentHealth:
        with self._lock:
            return AgentHealth(self.name, self._available, self._ever, self._error)

    def due(self) -> bool:
        """May a request be sent now? Not during a back-off, nor while an agent that
        failed to answer stays silent (it is down: asking again would only wait)."""
        with self._lock:
            if not self._available and self._ever and self._failures and self.silent():
                return False
            return self._clock() >= self._next_try

    def next_try_in(self) -> float:
        with self._lock:
            return max(0.0, self._next_try - self._clock())

    def wait_for_heartbeat(self) -> bool:
        """True while a retry waits for the agent's heartbeats to come back."""
        with self._lock:
            return not self._available and self._ever and bool(self._failures) and self.silent()

    def heard(self) -> None:
        """The agent's PUB socket spoke again: try it at once."""
        with self._lock:
            self._next_try = 0.0
            self._failures = 0

    def call(self, type: str, body: Any = None) -> Any:
        """The reply body. RemoteError: the agent refused (it is available);
        AgentUnavailable: no answer, or still in back-off."""
        if not self.due():
            raise AgentUnavailable(f"{self.name} is unavailable ({self.health().error})")
        probe = {} if self.health().available else {"timeout_ms": min(self.timeout_ms, PROBE_TIMEOUT_MS), "retries": 0}
        try:
            body = self._clients.client().call(type, body, **probe)
        except RemoteError:
            self._answered()
            raise
        except (RequestTimeout, ProtocolError) as exc:
            self._down(f"{type}: {exc.message}")
            raise AgentUnavailable(f"{self.name} is unavailable: {exc.message}") from None
        except CodedError as exc:  # any other coded failure of the exchange
            self._down(f"{type}: {exc.message}")
            raise AgentUnavailable(f"{self.name} is unavailable: {exc.message}") from None
        self._answered()
        return body

    def _answered(self) -> None:
        with self._lock:
            back = not self._available and self._ever
            if not self._available:
                log.info("%s is available at %s", self.name, self.endpoint)
            self._available = True
            self._ever = True
            self._error = None
            self._failures = 0
            self._next_try = 0.0
        if back:
            self._on_back()

    def _down(self, error: str) -> None:
        with self._lock:
            self._failures += 1
            pause = min(RETRY_BACKOFF[0] * 2 ** (self._failures - 1), RETRY_BACKOFF[1])
            self._next_try = self._clock() + pause
            if self._available or self._failures == 1:
                log.warning("%s is unavailable (%s); next try in %.0f s", self.name, error, pause)
            self._available = False
            self._error = error

    def close(self) -> None:
        self._clients.close()
