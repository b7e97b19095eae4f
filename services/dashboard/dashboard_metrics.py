"""The dashboard's Prometheus metrics: logins by outcome and actions by action and
outcome (never a user name, a password or a path)."""

from __future__ import annotations

from typing import Optional

from prometheus_client import Counter

from common import metrics
from services.dashboard import control

_registry = metrics.registry()
LOGINS = Counter(
    "mcp_orchestrator_dashboard_logins",
    "Login attempts, by outcome (ok, failed, throttled: refused after too many failures)",
    ["outcome"],
    registry=_registry,
)
ACTIONS = Counter(
    "mcp_orchestrator_dashboard_actions",
    "Actions asked for (start, stop, restart, sync, reload), by outcome (ok, or the error code)",
    ["action", "outcome"],
    registry=_registry,
)


def action(name: object, ok: bool, code: Optional[str]) -> None:
    # Actions are a fixed set; whatever else a client posts is counted as "invalid".
    label = name if isinstance(name, str) and name in control.ACTIONS else "invalid"
    ACTIONS.labels(label, "ok" if ok else (code or "failed")[:40]).inc()
