"""SchedulerLink: the real Control, a live copy of the scheduler's state plus actions.

The copy is a StateMirror (Clone pattern) on the scheduler's PUB `state` and REP
`control`, driven by the dashboard's service loop (one thread, never a web request):
a snapshot, then every published change. Web threads only read the copy, which is
decoded lazily when it changed, and send actions through a ReqClient of their own (ZeroMQ sockets
are not thread-safe) with a short timeout: when the scheduler is down an action
fails within seconds with a clear message, and pages keep showing the last known state.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Callable, Optional

import zmq

from common.protocol import CodedError, ControlAction, ErrorCode, TrafficQuery
from common.pubsub import StateMirror
from common.reqrep import RemoteError, RequestTimeout, ThreadClients
from common.settings import Settings
from services.dashboard.control import ActionResult, TrafficResult
from services.dashboard.state import STATE_TOPICS, DashboardState, SchedulerLinkStatus, apply_event

log = logging.getLogger("dashboard")

NAME = "dashboard"
# Actions wait at most this long for the scheduler (it answers at once: actions are
# queued there, never run while we wait).
ACTION_TIMEOUT_MS = 3000
SNAPSHOT_TIMEOUT_MS = 1000
# Traffic goes scheduler -> container-agent -> bridge, which answers within 3.5 s.
TRAFFIC_TIMEOUT_MS = 4500
# Every open page polls each second: one answer serves them all for this long. A
# server's page shows its recent calls; the overview's charts move by 10-second
# buckets, and its answer (every server) costs the most to make.
TRAFFIC_CACHE_SECONDS = {True: 2.0, False: 5.0}  # by `detail`
TRAFFIC_CACHE_ENTRIES = 1024


class SchedulerLink:
    def __init__(self, ctx: zmq.Context, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        z = settings.zmq
        self._clock = clock
        self._action_timeout_ms = min(z.request_timeout_ms, ACTION_TIMEOUT_MS)
        self._lock = threading.Lock()
        self._version = 0
        self._cached: Optional[tuple[int, DashboardState]] = None
        self._last_heard: Optional[float] = None
        self._clients = ThreadClients(
            ctx,
            z.scheduler_control,
            timeout_ms=self._action_timeout_ms,
            retries=0,
            src=NAME,
            max_bytes=z.max_message_bytes,
        )
        self._traffic: dict[tuple[Optional[str], bool], tuple[float, TrafficResult]] = {}
        self.mirror = StateMirror(
            ctx,
            z.scheduler_state,
            z.scheduler_control,
            apply_event,
            topics=STATE_TOPICS,
            src=NAME,
            heartbeat_interval=z.heartbeat_interval_seconds,
            snapshot_timeout_ms=min(z.request_timeout_ms, SNAPSHOT_TIMEOUT_MS),
            max_bytes=z.max_message_bytes,
            on_change=self._changed,
        )

    # -- the service loop's side -----------------------------------------------------
    def attach(self, service: Any) -> None:
        service.add_reader(self.mirror.socket, self._on_readable)
        service.on_close(self.close)

    def _on_readable(self) -> None:
        if self.mirror.on_readable():
            self._last_heard = self._clock()

    def _changed(self, msg: Any) -> None:
        with self._lock:
            self._version += 1

    # -- the web threads' side -------------------------------------------------------
    def link_status(self) -> SchedulerLinkStatus:
        return SchedulerLinkStatus(
            available=self.mirror.available,
            synced_once=self.mirror.snapshots > 0,
            last_heard=self._last_heard,
            error=self.mirror.last_error,
        )

    def state(self) -> DashboardState:
        link = self.link_status()
        with self._lock:
            version, cached = self._version, self._cached
        if cached is None or cached[0] != version:
            built = DashboardState.from_state(self.mirror.copy_state(), link)
            with self._lock:
                self._cached = (version, built)
            return built
        built = cached[1]
        return built if built.link == link else dataclasses.replace(built, link=link)

    def act(self, action: str, server_id: Optional[str]) -> ActionResult:
        what = f"{action} {server_id}" if server_id else action
        try:
            body = ControlAction(action=action, server_id=server_id)  # type: ignore[arg-type]
        except ValueError as exc:
            return ActionResult(False, str(exc), str(ErrorCode.INVALID_ARGUMENT))
        try:
            reply = self._clients.client().call("control.action", body)
        except RemoteError as exc:
            return ActionResult(False, f"the scheduler refused {what}: {exc.message}", str(exc.code))
        except RequestTimeout:
            return ActionResult(
                False, f"{what} not sent: the scheduler does not answer (is it running?)", str(ErrorCode.UNAVAILABLE)
            )
        except CodedError as exc:
            return ActionResult(False, f"{what}: {exc.message}", str(exc.code))
        return ActionResult(True, reply.message or f"{what}: accepted by the scheduler")

    def traffic(self, server_id: Optional[str], detail: bool) -> TrafficResult:
        key = (server_id, detail)
        now = time.monotonic()
        with self._lock:
            cached = self._traffic.get(key)
        if cached is not None and now - cached[0] < TRAFFIC_CACHE_SECONDS[detail]:
            return cached[1]
        result = self._ask_traffic(server_id, detail)
        with self._lock:
            # Pages ask only for servers in the state: few keys, but never without end.
            if len(self._traffic) >= TRAFFIC_CACHE_ENTRIES:
                self._traffic.clear()
            self._traffic[key] = (time.monotonic(), result)
        return result

    def _ask_traffic(self, server_id: Optional[str], detail: bool) -> TrafficResult:
        if not self.mirror.available:
            return TrafficResult(error="the scheduler is unavailable")
        try:
            report = self._clients.client().call(
                "control.traffic", TrafficQuery(server_id=server_id, detail=detail), timeout_ms=TRAFFIC_TIMEOUT_MS
            )
        except RequestTimeout:
            return TrafficResult(error=f"the scheduler did not answer within {TRAFFIC_TIMEOUT_MS / 1000:g} s")
        except CodedError as exc:  # refused by the scheduler or the container-agent, with why
            return TrafficResult(error=exc.message)
        return TrafficResult(report=report)

    def close(self) -> None:
        """Close every socket (after the web threads have stopped)."""
        self.mirror.close()
        self._clients.close()
