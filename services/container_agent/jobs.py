"""Worker threads for blocking work, and jobs a request handler can stop waiting for.

The ZeroMQ loop never calls Docker itself: a handler submits a job and waits a short
while for it. A job that takes longer (a graceful stop, a pull) goes on after the
reply; `Job.wait_or_detach` tells the handler which case it is in, without a race
with the job's end, so that a late failure is reported once, by its own path.
Workers are daemon threads: a stop in progress never holds the process at exit.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Optional

from common.service import log_failure

log = logging.getLogger(__name__)


class Job:
    def __init__(self, fn: Callable[[], Any], name: str = "") -> None:
        self.fn = fn
        self.name = name
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._detached = False
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self._on_late_end: Optional[Callable[["Job"], None]] = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to whoever waits
            self.error = exc
        with self._lock:
            self._done.set()
            late = self._on_late_end if self._detached else None
        if late is not None:
            try:
                late(self)
            except Exception as exc:
                log_failure(log, f"reporting the end of {self.name or 'a job'} failed", exc)

    def wait(self, timeout: float) -> bool:
        """True when the job ended within `timeout` (nothing else happens)."""
        return self._done.wait(timeout)

    def wait_or_detach(self, timeout: float, on_late_end: Optional[Callable[["Job"], None]] = None) -> bool:
        """True when the job ended within `timeout`; else False, and its end will be
        handed to `on_late_end` (exactly once, on the worker thread)."""
        if self._done.wait(timeout):
            return True
        with self._lock:
            if self._done.is_set():
                return True
            if not self._detached:
                self._detached = True
                self._on_late_end = on_late_end
            return False

    def outcome(self) -> Any:
        """The result, or raise the job's error."""
        if self.error is not None:
            raise self.error
        return self.result


class Workers:
    """A fixed set of daemon threads running jobs in submission order."""

    def __init__(self, count: int, name: str = "worker") -> None:
        self._queue: "queue.SimpleQueue[Optional[Job]]" = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(count)]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], Any], name: str = "") -> Job:
        job = Job(fn, name)
        if self._closed:
            job.error = RuntimeError("the agent is stopping")
            job._done.set()
            return job
        self._queue.put(job)
        return job

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._closed:
                job.error = RuntimeError("the agent is stopping")
                job._done.set()
                continue
            try:
                job.run()
            except Exception as exc:  # Job.run catches everything; this is a safety net
                log_failure(log, "a worker failed", exc)

    def close(self, timeout: float = 1.0) -> None:
        """Stop taking jobs; jobs still running finish on their own (daemon threads)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout / max(len(self._threads), 1))
