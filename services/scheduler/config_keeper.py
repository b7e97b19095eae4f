"""Which configuration is in force after a (re)load: pure logic.

A bad file never tears anything down:

- the file cannot be used at all (not JSON, no "mcpServers", unreadable): the last good
  configuration stays in force as a whole, and the error is reported;
- one server is invalid: it keeps its last good spec (its container keeps running as
  it is); an invalid server that never had a good spec is *protected*: whatever
  container it has is left alone, nothing is created for it;
- before any good configuration was read, nothing is touched at all.

Servers that left the file, or that are disabled, are no longer wanted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from common.config import McpConfig, ServerConfig
from common.protocol import ConfigState, StateEvent


@dataclass(frozen=True)
class ActiveConfig:
    servers: Mapping[str, ServerConfig] = field(default_factory=dict)  # in force, disabled too
    kept: Mapping[str, str] = field(default_factory=dict)  # id -> error; last good spec kept
    protected: frozenset[str] = frozenset()  # invalid, never good: leave alone
    usable: bool = False  # False: no good configuration yet
    state: ConfigState = field(default_factory=ConfigState)

    @property
    def enabled(self) -> dict[str, ServerConfig]:
        return {sid: s for sid, s in self.servers.items() if not s.disabled}

    @property
    def disabled(self) -> set[str]:
        return {sid for sid, s in self.servers.items() if s.disabled}


def _server_errors(config: McpConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    for issue in config.errors:
        if issue.server_id is not None:
            out.setdefault(issue.server_id, str(issue))
    return out


def apply_loaded(
    previous: Optional[ActiveConfig], loaded: McpConfig, now: float, settings_path: str = ""
) -> tuple[ActiveConfig, list[StateEvent]]:
    """The configuration in force once `loaded` was read, and what to report about it."""
    errors = [str(i) for i in loaded.errors]
    warnings = [str(i) for i in loaded.issues if i.severity == "warning"]
    events: list[StateEvent] = []

    if not loaded.readable:
        if previous is None or not previous.usable:
            state = ConfigState(
                path=loaded.source,
                ok=False,
                loaded_at=None,
                errors=errors,
                warnings=warnings,
                checked_at=now,
                settings_path=settings_path,
            )
            events.append(
                StateEvent(
                    message=f"configuration {loaded.source} cannot be used; nothing is changed "
                    f"until it can: {'; '.join(errors)}",
                    level="error",
                    code="config",
                )
            )
            return ActiveConfig(state=state), events
        state = ConfigState(
            path=loaded.source,
            ok=False,
            loaded_at=previous.state.loaded_at,
            errors=errors,
            warnings=warnings,
            server_ids=sorted(previous.servers),
            skipped=list(previous.state.skipped),
            kept_last_good=True,
            checked_at=now,
            settings_path=settings_path,
        )
        events.append(
            StateEvent(
                message=f"configuration {loaded.source} is invalid; the last good one stays in "
                f"force: {'; '.join(errors)}",
                level="error",
                code="config",
            )
        )
        return ActiveConfig(
            servers=previous.servers, kept=previous.kept, protected=previous.protected, usable=True, state=state
        ), events

    servers: dict[str, ServerConfig] = dict(loaded.servers)
    kept: dict[str, str] = {}
    protected: set[str] = set()
    per_server = _server_errors(loaded)
    for sid in loaded.invalid:
        reason = per_server.get(sid, f"server {sid!r} is invalid")
        last_good = previous.servers.get(sid) if previous is not None else None
        if last_good is not None and not last_good.disabled:
            servers[sid] = last_good
            kept[sid] = reason
            warnings.append(f"server {sid!r}: keeps its last good configuration until the error is fixed")
        else:
            protected.add(sid)
    for sid, reason in sorted(kept.items()):
        events.append(
            StateEvent(
                message=f"{reason} (the last good configuration of this server stays in force)",
                level="error",
                server_id=sid,
                code="config",
            )
        )
    for sid in sorted(protected):
        events.append(
            StateEvent(
                message=f"{per_server.get(sid, 'invalid')} (not started; anything running for it is left alone)",
                level="error",
                server_id=sid,
                code="config",
            )
        )
    state = ConfigState(
        path=loaded.source,
        ok=loaded.ok,
        loaded_at=now,
        errors=errors,
        warnings=warnings,
        server_ids=sorted(servers),
        skipped=sorted(loaded.skipped),
        kept_last_good=False,
        checked_at=now,
        settings_path=settings_path,
    )
    if previous is not None and previous.usable:
        events.extend(_changes(previous, servers))
    if loaded.ok:
        events.append(
            StateEvent(message=f"configuration {loaded.source} loaded: {len(servers)} server(s)", code="config")
        )
    return ActiveConfig(servers=servers, kept=kept, protected=frozenset(protected), usable=True, state=state), events


def _changes(previous: ActiveConfig, servers: Mapping[str, ServerConfig]) -> list[StateEvent]:
    events = []
    for sid in sorted(set(previous.servers) | set(servers)):
        old, new = previous.servers.get(sid), servers.get(sid)
        if old is None and new is not None:
            what = "added" + (" (disabled)" if new.disabled else "")
        elif new is None:
            what = "removed from the configuration"
        elif old.disabled != new.disabled:
            what = "disabled" if new.disabled else "enabled"
        elif old.spec_hash != new.spec_hash:
            what = "changed: its container is recreated"
        else:
            continue
        events.append(StateEvent(message=f"server {sid}: {what}", server_id=sid, code="config"))
    return events
