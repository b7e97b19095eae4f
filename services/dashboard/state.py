"""The dashboard's copy of the scheduler's state: its shape and how events change it.

The scheduler publishes a snapshot (`snapshot.get`) and then `state.server`,
`state.config` and `state.event` events. Its snapshot is read defensively: servers
may come as a map by id or as a list, any part may be missing, and fields we do not
know are kept (and shown where a view has room for them). `apply_event` is the
StateMirror's apply function; `normalize` turns whatever the snapshot held into the
shape below. Both are pure.

    {"servers": {server_id: {...ServerState fields...}},
     "config": {...ConfigState...}, "agents": {name: state},
     "routing": {...}, "events": [{...StateEvent..., "ts": float}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from common.protocol import Message, to_plain

# Recent events kept for the views (the detail page filters them by server).
MAX_EVENTS = 200
STATE_TOPICS = ("state.",)


def _as_dict(value: Any) -> dict:
    return dict(value) if isinstance(value, Mapping) else {}


def _servers(value: Any) -> dict[str, dict]:
    """Servers by id from a map {id: state} or a list [state]; entries without an id
    are dropped, and so are servers that left the configuration."""
    entries: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        entries = list(value.items())
    elif isinstance(value, list):
        entries = [(None, v) for v in value]
    else:
        return {}
    out: dict[str, dict] = {}
    for key, entry in entries:
        if not isinstance(entry, Mapping):
            continue
        sid = entry.get("server_id", key)
        if not isinstance(sid, str) or not sid:
            continue
        if entry.get("removed") is True:
            continue
        out[sid] = dict(entry, server_id=sid)
    return out


def normalize(raw: Any) -> dict:
    """The state shape above from a snapshot's state (or an already normal state)."""
    raw = _as_dict(raw)
    events = raw.get("events")
    return {
        "servers": _servers(raw.get("servers")),
        "config": _as_dict(raw.get("config")),
        "agents": _as_dict(raw.get("agents")),
        "routing": _as_dict(raw.get("routing")),
        "events": [dict(e) for e in events if isinstance(e, Mapping)][-MAX_EVENTS:] if isinstance(events, list) else [],
    }


def apply_event(state: dict, msg: Message) -> None:
    """Update `state` in place for one event of the scheduler's stream."""
    if not state.get("_normal"):
        state.update(normalize(state))
        state["_normal"] = True
    if msg.type == "state.server":
        server = to_plain(msg.body)
        sid = server["server_id"]
        if server.get("removed"):
            state["servers"].pop(sid, None)
        else:
            # Merged: fields only the snapshot carries (added later) are kept.
            state["servers"][sid] = {**state["servers"].get(sid, {}), **server}
    elif msg.type == "state.config":
        state["config"] = to_plain(msg.body)
    elif msg.type == "state.event":
        event = dict(to_plain(msg.body), ts=msg.ts)
        events = state["events"]
        events.append(event)
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
    """What the views read: plain data, never mutated after it is built."""

    servers: dict[str, dict] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    agents: dict = field(default_factory=dict)
    agent_errors: dict = field(default_factory=dict)
    routing: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    link: SchedulerLinkStatus = field(default_factory=SchedulerLinkStatus)

    @classmethod
    def from_state(
        cls, state: Any, link: SchedulerLinkStatus, status: Optional[Mapping[str, Any]] = None
    ) -> "DashboardState":
        """From a mirror state and `status` (the latest control.status reply as plain
        data). Servers, config and events are kept current by the published events;
        agents and routing are not published, so the newer status reply wins for them."""
        norm = normalize(state)
        raw = _as_dict(state)
        status = _as_dict(status)
        extra = _servers(status.get("servers"))
        servers = {sid: {**extra.get(sid, {}), **s} for sid, s in norm["servers"].items()}
        agents_from = status if _as_dict(status.get("agents")) else raw
        return cls(
            servers=dict(sorted(servers.items())),
            config=norm["config"] or _as_dict(status.get("config")),
            agents=_as_dict(agents_from.get("agents")),
            agent_errors=_as_dict(agents_from.get("agent_errors")),
            routing=_as_dict(status.get("routing")) or norm["routing"],
            events=norm["events"],
            link=link,
        )
