"""The thread that talks to AWS, so the agent's socket loop never waits on it.

AWS calls can take long (hundreds of writes for a first apply; retries with back-off
while AWS is unreachable). The loop hands route sets to this worker and answers from
the latest known state; the worker applies them one at a time, refreshes the routing
status now and then, and queues the events for the loop to publish.

A newer apply replaces one still waiting: only the latest wanted state matters, and
whoever waited for the older one gets the newer one's result.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import replace
from typing import Callable, Mapping, Optional

from common.protocol import ApplySummary, RoutingStatus
from services.alb_agent.model import API_ERROR, AlbEvent, AwsFailure, DesiredRoute, RouteError
from services.alb_agent.router import EMPTY_PLAN, AlbRouter, ApplyResult

log = logging.getLogger(__name__)

STATUS_REFRESH_SECONDS = 60.0


class ApplyJob:
    """One apply (or dry run) handed to the worker; `future` gets its ApplyResult."""

    def __init__(
        self, routes: Mapping[str, DesiredRoute], dry_run: bool, input_errors: Mapping[str, RouteError]
    ) -> None:
        self.routes = dict(routes)
        self.dry_run = dry_run
        self.input_errors = dict(input_errors)
        self.future: "concurrent.futures.Future[ApplyResult]" = concurrent.futures.Future()
        self.waiting: list["ApplyJob"] = []  # older jobs this one replaced

    def finish(self, result: ApplyResult) -> None:
        for job in [self] + self.waiting:
            if not job.future.done():
                job.future.set_result(result)

    def wait(self, timeout: float) -> Optional[ApplyResult]:
        try:
            return self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            return None

    @property
    def done(self) -> bool:
        return self.future.done()


class RoutingWorker:
    def __init__(
        self,
        router: AlbRouter,
        *,
        notify: Callable[[], None] = lambda: None,
        status_refresh_seconds: float = STATUS_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._notify = notify  # wakes the loop: events are waiting
        self._refresh = status_refresh_seconds
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: list[ApplyJob] = []
        self._events: list[AlbEvent] = []
        self._status = RoutingStatus(stale=True)
        self._last_apply: Optional[ApplySummary] = None
        self._next_refresh = clock()  # first status read right away
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="alb-routing", daemon=True)

    # -- the loop's side -------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to finish; an AWS call in flight is not interrupted."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(
        self,
        routes: Mapping[str, DesiredRoute],
        dry_run: bool = False,
        input_errors: Optional[Mapping[str, RouteError]] = None,
    ) -> ApplyJob:
        job = ApplyJob(routes, dry_run, input_errors or {})
        with self._cond:
            if not dry_run:
                for older in [j for j in self._queue if not j.dry_run]:
                    self._queue.remove(older)
                    job.waiting += [older] + older.waiting
            self._queue.append(job)
            self._cond.notify_all()
        return job

    def take_events(self) -> list[AlbEvent]:
        with self._cond:
            events, self._events = self._events, []
        return events

    def status(self) -> RoutingStatus:
        """The latest routing status (see AlbRouter.status), plus the last apply.

        While an AWS call hangs past its timeout the status says degraded at once, without
        waiting for botocore's attempts to run out.
        """
        stalled = self._router.stalled()
        with self._cond:
            status = replace(self._status, last_apply=self._last_apply, busy=any(not j.done for j in self._queue))
        if stalled is not None and not status.degraded:
            status = replace(status, degraded=True, failure=stalled.problem())
        return status

    # -- the worker thread ---------------------------------------------------------------
    def _next_job(self) -> Optional[ApplyJob]:
        """The next job, or None when a status refresh is due (or we are stopping)."""
        with self._cond:
            while not self._stopping:
                if self._queue:
                    return self._queue.pop(0)
                wait = self._next_refresh - self._clock()
                if wait <= 0:
                    return None
                self._cond.wait(min(wait, 1.0))
            return None

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if self._stopping:
                if job is not None:
                    job.finish(_stopped(job))
                break
            try:
                if job is None:
                    self._refresh_status()
                else:
                    self._run_job(job)
            except Exception:  # the worker must survive anything; the loop keeps answering
                log.exception("routing worker: unexpected failure")
                if job is not None and not job.done:
                    job.finish(_stopped(job))
        with self._cond:
            for job in self._queue:
                job.finish(_stopped(job))
            self._queue.clear()

    def _run_job(self, job: ApplyJob) -> None:
        result = self._router.apply(job.routes, dry_run=job.dry_run)
        if job.input_errors:
            result = _with_input_errors(result, job.input_errors)
        events = list(result.events)
        if not job.dry_run:
            summary = ApplySummary(ok=result.ok, at=time.time(), changes=len(result.done))
            with self._cond:
                self._last_apply = summary
        job.finish(result)
        if result.done or result.failure:
            self._refresh_status(events)  # after answering: it reads every target's health
        else:
            self._publish(events)

    def _refresh_status(self, events: Optional[list[AlbEvent]] = None) -> None:
        status = self._router.status()
        with self._cond:
            self._status = status
            self._next_refresh = self._clock() + self._refresh
        self._publish(list(events or []) + self._router.take_events())

    def _publish(self, events: list[AlbEvent]) -> None:
        if not events:
            return
        with self._cond:
            self._events.extend(events)
        self._notify()


def _with_input_errors(result: ApplyResult, errors: Mapping[str, RouteError]) -> ApplyResult:
    return replace(result, errors={**errors, **result.errors})


def _stopped(job: ApplyJob) -> ApplyResult:
    return ApplyResult(EMPTY_PLAN, job.dry_run, failure=AwsFailure(API_ERROR, "apply", "the agent is stopping"))
