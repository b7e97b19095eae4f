"""Readable text for `status` and `plan`, and the one-shot verdict. Pure functions over
the scheduler's replies as plain data (fields read defensively: a missing one is
unknown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

COLUMNS = ("SERVER", "STATE", "HEALTH", "PORT", "CONTAINER", "ROUTE", "RESTARTS")
# Statuses a one-shot run will not see change by itself.
FAILED_STATUSES = frozenset({"error", "crash-looping", "invalid"})


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    out = []
    for row in [header, *rows]:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return out


def server_row(s: Mapping[str, Any]) -> list[str]:
    container = s.get("container_id") or ""
    status = s.get("status") or "?"
    if s.get("stopped_by_hand") and status not in ("stopped", "stopping"):
        status += " (held)"
    return [
        _cell(s.get("server_id")),
        status,
        _cell(s.get("health")),
        _cell(s.get("host_port")),
        _cell(container[:12]),
        _cell(s.get("route")),
        _cell(s.get("restarts")),
    ]


def _last_failure(s: Mapping[str, Any]) -> str:
    """A crash loop's last failure: an exit code, or a run that never became ready."""
    if s.get("exit_code") is None and s.get("bridge") == "failed":
        return "running, not ready"
    return f"exit code {_cell(s.get('exit_code'))}"


def server_details(s: Mapping[str, Any], now: Optional[float] = None) -> list[str]:
    """Indented lines under a server's row: why it is not fine."""
    lines = []
    sid = s.get("server_id")
    if s.get("status") == "crash-looping":
        wait = ""
        if now is not None and s.get("next_restart_at"):
            wait = f", next start in {max(0, s['next_restart_at'] - now):.0f} s"
        lines.append(
            f"  {sid}: crash-looping: {_last_failure(s)}, "
            f"{s.get('failures', '?')} failures, back-off {_cell(s.get('backoff_seconds'))} s"
            f"{wait}"
        )
    if s.get("replicas") is not None:
        nodes = ", ".join(s.get("nodes") or []) or "no node"
        lines.append(f"  {sid}: replicas {_cell(s.get('replicas_running'))}/{s['replicas']} running on {nodes}")
    if s.get("last_error"):
        lines.append(f"  {sid}: {s['last_error']}")
    if s.get("config_error"):
        lines.append(f"  {sid}: config: {s['config_error']} (last good configuration in force)")
    if s.get("route_error"):
        lines.append(f"  {sid}: route: {s['route_error']}")
    tail = s.get("stderr_tail") or []
    if tail and s.get("status") in FAILED_STATUSES:
        lines.append(f"  {sid}: stderr: " + " | ".join(tail[-3:]))
    return lines


def render_status(state: Mapping[str, Any], now: Optional[float] = None) -> str:
    lines = []
    config = state.get("config") or {}
    where = config.get("path") or "?"
    if config.get("kept_last_good"):
        verdict = "INVALID - the last good configuration stays in force"
    elif config.get("ok", True):
        verdict = "ok"
    else:
        verdict = "has errors"
    lines.append(f"config:   {where}: {verdict}")
    for error in config.get("errors") or []:
        lines.append(f"  error: {error}")
    agents = state.get("agents") or {}
    errors = state.get("agent_errors") or {}
    shown = [
        f"{name} {value}" + (f" ({errors[name]})" if name in errors else "") for name, value in sorted(agents.items())
    ]
    lines.append("agents:   " + (", ".join(shown) if shown else "unknown"))
    cluster = state.get("cluster") or {}
    control = cluster.get("control") or {}
    if cluster.get("engine") == "swarm" and control:
        here = control.get("hostname") or "this node"
        active = control.get("active_node") or "not known yet"
        if control.get("role") == "active":
            lines.append(f"control:  active on this node ({here})")
        else:
            why = f"; {control['reason']}" if control.get("reason") else ""
            lines.append(f"control:  standby on {here}; active: {active}{why}")
    routing = state.get("routing") or {}
    if routing.get("simulated"):
        lines.append("routing:  simulated (no ALB configured: a local AWS stand-in)")
    if routing.get("error"):
        lines.append(f"routing:  error: {routing['error']}")
    servers = sorted(state.get("servers") or [], key=lambda s: s.get("server_id", ""))
    lines.append("")
    if not servers:
        lines.append("no servers")
    else:
        lines.extend(table([server_row(s) for s in servers], COLUMNS))
        details = [line for s in servers for line in server_details(s, now)]
        if details:
            lines.append("")
            lines.extend(details)
        urls = [
            (s.get("server_id"), s.get("url"))
            for s in servers
            if s.get("url") and s.get("status") not in ("disabled", "removed")
        ]
        if urls:
            lines.append("")
            lines.extend(f"  {sid}: {url}" for sid, url in urls)
    return "\n".join(lines) + "\n"


def render_plan(steps: Sequence[Mapping[str, Any]]) -> str:
    if not steps:
        return "nothing to do: everything matches the configuration\n"
    rows = [[_cell(s.get("action")), _cell(s.get("server_id")), _cell(s.get("reason"))] for s in steps]
    return "\n".join(table(rows, ("ACTION", "SERVER", "WHY"))) + "\n"


# --- one-shot ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    done: bool
    converged: bool
    reasons: list[str] = field(default_factory=list)


def converged_server(s: Mapping[str, Any]) -> bool:
    return s.get("status") == "running" and s.get("route") == "routed" and s.get("bridge", "ready") in ("ready", "")


def judge(state: Mapping[str, Any], baseline: int, *, settle_passes: int = 2) -> Verdict:
    """Whether a one-shot run is done, and how it went.

    Converged: the configuration is valid, both agents answer, a reconcile pass ran
    after the run started, and every enabled server runs, is served and is routed.
    Failed for good: after `settle_passes` passes, every server that is not converged
    is in a failed state (no port, crash loop, start refused, invalid config).
    """
    reasons: list[str] = []
    config = state.get("config") or {}
    config_failed = not config.get("ok", True)
    if config_failed:
        reasons += [f"config: {e}" for e in config.get("errors") or ["invalid"]]
    agents = state.get("agents") or {}
    errors = state.get("agent_errors") or {}
    for name in ("container-agent", "alb-agent"):
        if agents.get(name) != "available":
            reasons.append(f"{name}: {agents.get(name, 'unknown')}" + (f" ({errors[name]})" if name in errors else ""))
    passes = int(state.get("reconciles") or 0) - baseline
    pending, failed = [], []
    for s in sorted(state.get("servers") or [], key=lambda s: s.get("server_id", "")):
        if s.get("status") in ("disabled", "removed") or s.get("removed"):
            if s.get("container_id") or s.get("route") not in ("none", "unknown", None):
                pending.append(f"{s.get('server_id')}: {s.get('status')}, its container or route is being removed")
            continue
        if converged_server(s):
            continue
        sid = s.get("server_id")
        why = s.get("last_error") or s.get("route_error") or ""
        if s.get("status") == "crash-looping":
            why = _last_failure(s) + (f": {why}" if why else "")
        text = f"{sid}: {s.get('status')}, route {s.get('route')}" + (f": {why}" if why else "")
        (failed if s.get("status") in FAILED_STATUSES else pending).append(text)
    reasons += failed + pending
    agents_ok = all(agents.get(n) == "available" for n in ("container-agent", "alb-agent"))
    if passes >= 1 and agents_ok and not failed and not pending and not config_failed:
        return Verdict(done=True, converged=True)
    settled = passes >= settle_passes and agents_ok and not pending
    return Verdict(done=settled, converged=False, reasons=reasons)
