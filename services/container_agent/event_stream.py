"""A thread that reads the Docker events stream of our containers, and reconnects.

The stream is opened before anything is listed, so nothing that happens during a
(re)connection is missed: `on_connect(first)` runs once the subscription is live (the
agent adopts running containers then, and after a gap publishes what changed), and
`on_change` gets every event that matters, as it happens. When dockerd restarts the
stream ends; the thread opens a new one with a back-off until the engine answers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from common.service import log_failure

from .events import ContainerChange, translate

log = logging.getLogger(__name__)

# Pause before reconnecting: doubling from the first value to the second.
BACKOFF = (0.2, 5.0)


class DockerEventStream:
    def __init__(
        self,
        client_factory: Callable[[], Any],
        filters: dict,
        on_change: Callable[[ContainerChange], None],
        on_connect: Callable[[bool], None],
        *,
        name: str = "docker-events",
    ) -> None:
        self._factory = client_factory
        self._filters = filters
        self._on_change = on_change
        self._on_connect = on_connect
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.connected = threading.Event()  # set while a stream is open
        self.connections = 0
        self._synced = False  # on_connect has succeeded once

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()  # unblocks the read in the thread
            except Exception:
                pass
        self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            client = None
            try:
                client = self._factory()
                stream = client.events(decode=True, filters=self._filters)
                with self._lock:
                    self._stream = stream
                if self._stop.is_set():
                    break
                self.connections += 1
                first = not self._synced
                log.info("watching Docker events%s", "" if first else " again")
                self.connected.set()
                self._on_connect(first)
                self._synced = True
                failures = 0
                for event in stream:
                    self._handle(event)
                if not self._stop.is_set():
                    log.warning("the Docker events stream ended (engine restarted?); reconnecting")
            except Exception as exc:
                if self._stop.is_set():
                    break
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("Docker events unavailable (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                with self._lock:
                    stream, self._stream = self._stream, None
                for closable in (stream, client):
                    try:
                        if closable is not None:
                            closable.close()
                    except Exception:
                        pass
            pause = min(BACKOFF[0] * 2 ** max(failures - 1, 0), BACKOFF[1])
            self._stop.wait(pause)

    def _handle(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        try:
            change: Optional[ContainerChange] = translate(event)
            if change is not None:
                self._on_change(change)
        except Exception as exc:  # one event must not end the watch
            log_failure(log, "handling a Docker event failed", exc)
