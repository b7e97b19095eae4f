"""What the web app needs from the scheduler: the current state and a way to act.

The app receives a `Control` (see create_app): the real one is SchedulerLink (a live
mirror of the scheduler's state plus requests over its control socket); tests pass a
fake. No call may block for long: `state()` returns the copy at hand, `act()` and
`traffic()` are bounded by short request timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

from common.protocol import TrafficReport
from services.dashboard.state import DashboardState

SERVER_ACTIONS = ("start", "stop", "restart")
GLOBAL_ACTIONS = ("sync", "reload")
ACTIONS = SERVER_ACTIONS + GLOBAL_ACTIONS


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    code: Optional[str] = None  # the error code when not ok (e.g. unavailable, not_found)


@dataclass(frozen=True)
class TrafficResult:
    """What the bridges served (a report), or why it is not known right now."""

    report: Optional[TrafficReport] = None
    error: Optional[str] = None


class Control(Protocol):
    def state(self) -> DashboardState: ...

    def act(self, action: str, server_id: Optional[str]) -> ActionResult: ...

    def traffic(self, server_id: Optional[str], detail: bool) -> TrafficResult: ...


def check_action(action: str, server_id: Optional[str]) -> Optional[str]:
    """Why (action, server_id) is not a valid request, or None."""
    if action not in ACTIONS:
        return f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}"
    if action in SERVER_ACTIONS and not server_id:
        return f"action {action!r} needs a server id"
    if action in GLOBAL_ACTIONS and server_id:
        return f"action {action!r} applies to all servers, not one"
    return None
