"""Requests the scheduler passes on to an agent for the dashboard (what the bridges
served): sent from worker threads, answered through a deferred reply, so the loop
never waits for an agent and a slow one costs the asker a bounded wait.

Its sockets are its own (one ReqClient per worker thread): the reconcile thread's
link to the agent, with its back-off, is never touched by a page view.
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any, Callable

import zmq

from common.protocol import ErrorCode, ServiceError
from common.reqrep import Deferred, RemoteError, RequestTimeout, ThreadClients

log = logging.getLogger(__name__)

WORKERS = 2


class AgentRelay:
    def __init__(
        self,
        name: str,
        ctx: zmq.Context,
        endpoint: str,
        *,
        timeout_ms: int,
        src: str,
        max_bytes: int,
        silent: Callable[[], bool],
    ) -> None:
        self.name = name
        self._timeout_ms = timeout_ms
        self._silent = silent  # the agent's PUB socket is quiet: it is down
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="relay")
        self._clients = ThreadClients(ctx, endpoint, timeout_ms=timeout_ms, retries=0, src=src, max_bytes=max_bytes)

    def ask(self, type: str, body: Any) -> Deferred:
        """The agent's reply body, later (on the loop); a ServiceError when it is down,
        refuses, or does not answer in time."""
        if self._silent():
            raise ServiceError(ErrorCode.UNAVAILABLE, f"the {self.name} is not running (no heartbeats)")
        seconds = self._timeout_ms / 1000

        def too_late() -> Any:
            raise ServiceError(ErrorCode.TIMEOUT, f"the {self.name} did not answer within {seconds:g} s")

        return Deferred(self._pool.submit(self._call, type, body), seconds + 0.5, too_late)

    def _call(self, type: str, body: Any) -> Any:
        try:
            return self._clients.client().call(type, body)
        except RemoteError as exc:
            raise ServiceError(exc.code, f"the {self.name}: {exc.message}") from None
        except RequestTimeout:
            raise ServiceError(
                ErrorCode.UNAVAILABLE, f"the {self.name} did not answer within {self._timeout_ms / 1000:g} s"
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._clients.close()
