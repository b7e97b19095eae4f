"""Docker events of our containers as the agent's own changes: pure translation.

The events stream (see event_stream.py) gives dicts like

    {"Type": "container", "Action": "die", "id": "...", "time": 1700000000,
     "timeNano": 1700000000123456789,
     "Actor": {"ID": "...", "Attributes": {"exitCode": "137", "name": "mcp-time",
                                           "mcp-orchestrator.server-id": "time", ...}}}

Container labels are in the attributes, so the server id and the bridge port come
with every event and no lookup is needed to publish it.
"""

from __future__ import annotations

import calendar
import re
import signal
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from common.container_labels import Placement, placement_of
from common.swarm_service import DRAIN_SIGNAL

STARTED = "started"
EXITED = "exited"
OOM = "oom"
HEALTH = "health"
DESTROYED = "destroyed"
DRAIN = "drain"  # Swarm stops the task: its stop signal, DRAIN_SIGNAL, was sent

_DRAIN_SIGNAL = str(int(getattr(signal, DRAIN_SIGNAL)))
_SWARM_TASK = "com.docker.swarm.task.id"

_HEALTH_PREFIX = "health_status:"
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


@dataclass(frozen=True)
class ContainerChange:
    kind: str  # started | exited | oom | health | destroyed | drain
    server_id: str
    container_id: str
    placement: Placement
    exit_code: Optional[int] = None  # exited
    health: Optional[str] = None  # health: healthy | unhealthy | starting
    time_nano: int = 0


def translate(event: Mapping[str, Any]) -> Optional[ContainerChange]:
    """The change an event means for a server, None for events that change nothing
    we report (create, attach, exec_*, a kill but Swarm's drain, ...) or that are not
    about one of ours."""
    if event.get("Type", "container") != "container":
        return None
    action = str(event.get("Action") or event.get("status") or "")
    actor = event.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    container_id = str(actor.get("ID") or event.get("id") or "")
    placement = placement_of(attributes)
    if placement is None or not container_id:
        return None
    kind: Optional[str] = None
    exit_code = health = None
    if action == "start":
        kind = STARTED
    elif action == "die":
        kind = EXITED
        code = str(attributes.get("exitCode", ""))
        exit_code = int(code) if code.lstrip("-").isdigit() else None
    elif action == "oom":
        kind = OOM
    elif action.startswith(_HEALTH_PREFIX):
        kind = HEALTH
        health = action[len(_HEALTH_PREFIX) :].strip() or None
    elif action == "destroy":
        kind = DESTROYED
    elif action == "kill" and attributes.get("signal") == _DRAIN_SIGNAL and attributes.get(_SWARM_TASK):
        kind = DRAIN
    if kind is None:
        return None
    time_nano = event.get("timeNano")
    if not isinstance(time_nano, int):
        seconds = event.get("time")
        time_nano = int(seconds * 1_000_000_000) if isinstance(seconds, (int, float)) else 0
    return ContainerChange(
        kind=kind,
        server_id=placement.server_id,
        container_id=container_id,
        placement=placement,
        exit_code=exit_code,
        health=health,
        time_nano=time_nano,
    )


Listed = tuple[str, str, Placement, Optional[int]]  # server id, state, placement, exit code


def resync_changes(known: Mapping[str, tuple[str, Placement]], now: Mapping[str, Listed]) -> list[ContainerChange]:
    """Changes missed while the events stream was down (Docker restarted, say).

    `known`: container id -> (server id, placement) of the containers last seen running.
    `now`: container id -> (server id, state, placement, exit code) of ours as listed.
    A container that was running and is not (or is gone) exited; one that runs and was
    not known to run started.
    """
    changes = []
    for cid, (server_id, placement) in known.items():
        seen = now.get(cid)
        if seen is None:
            changes.append(ContainerChange(EXITED, server_id, cid, placement))
        elif seen[1] != "running":
            changes.append(ContainerChange(EXITED, server_id, cid, seen[2], exit_code=seen[3]))
    for cid, (server_id, state, placement, _) in now.items():
        if state == "running" and cid not in known:
            changes.append(ContainerChange(STARTED, server_id, cid, placement))
    return changes


def time_ns(text: Any) -> Optional[int]:
    """Docker's UTC timestamps (StartedAt, "2026-01-02T03:04:05.123456789Z") in ns since
    the epoch, comparable with an event's timeNano; None when unreadable or zero."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None or match.group(1) == "0001":
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(9, "0")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 1_000_000_000 + int(fraction)
