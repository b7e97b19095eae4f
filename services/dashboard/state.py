"""The dashboard's copy of the scheduler's state: its shape and how events change it.

The scheduler's snapshot (`snapshot.get`) is its ControlState as plain data; the mirror
keeps it in that shape and `apply_event` folds each published event into it:
`state.server`, `state.config`, `state.agents`, `state.routing`, `state.cluster`,
`state.event`.
`DashboardState.from_state` decodes it with the protocol's own decoder, so the views
read typed records. Both are pure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from common.protocol import (
    AgentsState,
    ClusterView,
    ConfigState,
    ControlState,
    Message,
    ProtocolError,
    RoutingView,
    ServerState,
    StateEvent,
    from_plain,
    to_plain,
)

log = logging.getLogger("dashboard")

# Recent events kept for the views (the detail page filters them by server).
MAX_EVENTS = 200
STATE_TOPICS = ("state.",)


def apply_event(state: dict, msg: Message) -> None:
    """Update `state` (a ControlState as plain data) in place for one published event."""
    body = to_plain(msg.body)
    if msg.type == "state.server":
        sid = body["server_id"]
        servers = [s for s in state.get("servers", []) if s.get("server_id") != sid]
        if not body["removed"]:
            servers.append(body)
        state["servers"] = servers
    elif msg.type == "state.config":
        state["config"] = body
    elif msg.type == "state.agents":
        state.update(body)
    elif msg.type == "state.routing":
        state["routing"] = body
    elif msg.type == "state.cluster":
        state["cluster"] = body
    elif msg.type == "state.event":
        events = state.setdefault("events", [])
        events.append(body)
        del events[:-MAX_EVENTS]


@dataclass(frozen=True)
class SchedulerLinkStatus:
    """How fresh the copy is."""

    available: bool = False  # synced and hearing from the scheduler
    synced_once: bool = False  # a snapshot was ever received
    last_heard: Optional[float] = None  # wall-clock time of the last message
    error: Optional[str] = None


@dataclass(frozen=True)
class DashboardState:
    """What the views read: typed records, never mutated after they are built."""

    servers: dict[str, ServerState] = field(default_factory=dict)  # by id, sorted
    config: ConfigState = field(default_factory=ConfigState)
    agents: AgentsState = field(default_factory=AgentsState)
    routing: RoutingView = field(default_factory=RoutingView)
    cluster: ClusterView = field(default_factory=ClusterView)
    events: list[StateEvent] = field(default_factory=list)  # oldest first
    link: SchedulerLinkStatus = field(default_factory=SchedulerLinkStatus)

    @classmethod
    def from_state(cls, state: Mapping[str, Any], link: SchedulerLinkStatus) -> "DashboardState":
        """From the mirror's copy. A copy the protocol refuses (a scheduler of another
        version) shows as an empty state with the reason on the link."""
        try:
            control = from_plain(ControlState, dict(state)) if state else ControlState()
        except ProtocolError as exc:
            log.error("the scheduler's state cannot be read: %s", exc.message)
            return cls(link=SchedulerLinkStatus(False, link.synced_once, link.last_heard, exc.message))
        return cls(
            servers={s.server_id: s for s in sorted(control.servers, key=lambda s: s.server_id) if not s.removed},
            config=control.config,
            agents=AgentsState(control.agents, control.agent_errors),
            routing=control.routing,
            cluster=control.cluster,
            events=control.events[-MAX_EVENTS:],
            link=link,
        )
