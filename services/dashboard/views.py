"""View models: plain data for each page and its JSON twin, built from DashboardState.

Pure functions over the protocol's typed records. Environment variables appear by name
only: the scheduler never has their values.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, Optional

from common.litellm import LiteLLMServer, litellm_names, render_mcp_servers
from common.mcp_auth import TokenSet
from common.protocol import AwsProblem, RouteInfo, RoutingView, ServerState, ServerStatus, StateEvent
from common.settings import BRIDGE_AUTH_NONE, Settings
from services.dashboard.state import DashboardState

# The group the overview counts each status in (and colours it by).
STATUS_GROUP: dict[ServerStatus, str] = {
    ServerStatus.RUNNING: "running",
    ServerStatus.STARTING: "starting",
    ServerStatus.PENDING: "starting",
    ServerStatus.STOPPING: "stopped",  # on its way to stopped by hand
    ServerStatus.STOPPED: "stopped",
    ServerStatus.CRASH_LOOPING: "crash-looping",
    ServerStatus.ERROR: "error",
    ServerStatus.INVALID: "error",
    ServerStatus.DISABLED: "disabled",
    ServerStatus.REMOVED: "unknown",
    ServerStatus.UNKNOWN: "unknown",
}
GROUP_ORDER = ("running", "starting", "stopped", "crash-looping", "error", "disabled", "unknown")
RECENT_EVENTS = 20
DETAIL_EVENTS = 50


def parse_time(value: Optional[str]) -> Optional[float]:
    """Epoch seconds from Docker's ISO 8601 time (nanoseconds included); None for
    nothing and for Docker's "zero" time."""
    if not value:
        return None
    iso = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    seconds = parsed.timestamp()
    return seconds if seconds >= 86400 else None  # 0001-01-01 / 1970-01-01: unset


def format_duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None or seconds < 0:
        return None
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def format_time(epoch: Optional[float]) -> Optional[str]:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------- servers


def status_group(server: ServerState) -> str:
    """running / starting / stopped / crash-looping / error / disabled / unknown."""
    return "disabled" if not server.enabled else STATUS_GROUP[server.status]


def status_label(server: ServerState) -> str:
    if not server.enabled:
        return "disabled"
    if server.status is ServerStatus.STOPPED and server.stopped_by_hand:
        return "stopped by hand"
    return server.status.value.replace("-", " ")


def started_at(server: ServerState, now: float) -> Optional[float]:
    """When the current run started (only while it runs)."""
    if server.status is not ServerStatus.RUNNING:
        return None
    when = parse_time(server.started_at)
    return None if when is None else min(when, now)


def server_row(server: ServerState, now: float) -> dict:
    since = started_at(server, now)
    return {
        "server_id": server.server_id,
        "status": server.status.value,
        "label": status_label(server),
        "group": status_group(server),
        "enabled": server.enabled,
        "health": server.health,
        "started_at": since,
        "uptime_seconds": None if since is None else max(now - since, 0.0),
        "uptime": format_duration(None if since is None else now - since),
        "restarts": server.restarts,
        "host_port": server.host_port,
        "image": server.image or None,
        "route_health": server.route_health,
        "exit_code": server.exit_code,
        "last_error": server.last_error,
        "config_error": server.config_error,
        "oom_killed": server.oom_killed,
        "next_restart_at": server.next_restart_at,
        # [cluster] engine = swarm: replicas asked for (None on one host), running, where.
        "replicas": server.replicas,
        "replicas_running": server.replicas_running,
        "nodes": list(server.nodes),
        "served_by": list(server.served_by),
    }


def _events(events: Iterable[StateEvent], limit: int, server_id: Optional[str] = None) -> list[dict]:
    out = []
    for e in reversed(list(events)):
        if server_id is not None and e.server_id != server_id:
            continue
        out.append(
            {
                "ts": e.ts,
                "time": format_time(e.ts),
                "level": e.level,
                "server_id": e.server_id,
                "code": e.code,
                "message": e.message,
            }
        )
        if len(out) >= limit:
            break
    return out


def control_view(state: DashboardState) -> Optional[dict]:
    """[cluster] engine = swarm: whether this manager's control plane acts, and where the
    active one is (one host: None)."""
    if state.cluster.engine != "swarm":
        return None
    c = state.cluster.control
    return {
        "role": c.role,
        "hostname": c.hostname or None,
        "active_node": c.active_node or None,
        "since": c.since,
        "since_time": format_time(c.since),
        "reason": c.reason or None,
    }


def scheduler_view(state: DashboardState) -> dict:
    link = state.link
    return {
        "control": control_view(state),
        "available": link.available,
        "synced_once": link.synced_once,
        "last_heard": link.last_heard,
        "last_heard_time": format_time(link.last_heard),
        "error": link.error,
        "agents": dict(state.agents.agents),
        "agent_errors": dict(state.agents.agent_errors),
    }


def nodes_view(state: DashboardState) -> dict:
    """The hosts of a swarm and what each serves (one host: engine docker, no nodes)."""
    cluster = state.cluster
    return {
        "engine": cluster.engine,
        "nodes": [
            {
                "node_id": n.node_id,
                "hostname": n.hostname,
                "address": n.address,
                "zone": n.zone,
                "role": n.role,
                "leader": n.leader,
                "state": n.state,
                "availability": n.availability,
                "reachable": n.reachable,
                "error": n.error or None,
                "instance_id": n.instance_id or None,
                "serves": list(n.serves),
            }
            for n in cluster.nodes
        ],
        "scheduler": scheduler_view(state),
    }


def config_view(state: DashboardState) -> dict:
    config = state.config
    return {
        "ok": config.ok,
        "path": config.path or None,
        "loaded_at": config.loaded_at,
        "loaded_time": format_time(config.loaded_at),
        "errors": list(config.errors),
        "warnings": list(config.warnings),
        "skipped": list(config.skipped),
    }


def overview(state: DashboardState, now: float) -> dict:
    rows = [server_row(s, now) for s in state.servers.values()]
    counts = {"total": len(rows), **{g: 0 for g in GROUP_ORDER}}
    for row in rows:
        counts[row["group"]] += 1
    return {
        "counts": counts,
        "config": config_view(state),
        "scheduler": scheduler_view(state),
        "servers": rows,
        "events": _events(state.events, RECENT_EVENTS),
        "now": now,
    }


def server_detail(state: DashboardState, server_id: str, now: float) -> Optional[dict]:
    server = state.servers.get(server_id)
    if server is None:
        return None
    row = server_row(server, now)
    rule = next((r for r in state.routing.alb.rules if r.owned and r.server_id == server_id), None)
    updated = server.updated_at
    return {
        **row,
        "container_id": server.container_id,
        "ports": [f"{server.host_port} (host, MCP bridge)"] if server.host_port is not None else [],
        "env_names": sorted(server.env_names),
        "mounts": list(server.mounts),
        "stderr_tail": list(server.stderr_tail),
        "url": server.url or None,
        "container_name": server.container_name or None,
        "transport": server.transport or None,
        "mcp_version": server.mcp_version,
        "bridge": server.bridge.value if server.bridge else None,
        "failures": server.failures,
        "backoff_seconds": server.backoff_seconds,
        "route": {
            "state": server.route.value if server.route else None,
            "health": server.route_health,
            "target_group": server.route_target_group,
            "priority": server.route_priority,
            "path_patterns": list(rule.path_patterns) if rule else [],
            "error": server.route_error,
        },
        "updated_at": updated,
        "updated_time": format_time(updated),
        "next_restart_time": format_time(row["next_restart_at"]),
        "events": _events(state.events, DETAIL_EVENTS, server_id),
        "scheduler": scheduler_view(state),
    }


# ---------------------------------------------------------------------- routing


def _problem(p: AwsProblem) -> dict:
    quota = "quota" in p.code.lower() or "quota" in p.message.lower()
    return {"server_id": p.server_id, "code": p.code, "message": p.message, "quota": quota}


def _route_errors(routing: RoutingView) -> list[dict]:
    """The alb-agent's per-server errors, then those only the route list carries."""
    errors = [_problem(p) for p in routing.alb.errors]
    named = {e["server_id"] for e in errors}
    errors += [_problem(AwsProblem("", r.error, r.server_id)) for r in _errored(routing.routes, named)]
    for e in errors:
        e["code"] = e["code"] or None
    return errors


def _errored(routes: list[RouteInfo], named: set) -> list[RouteInfo]:
    return [r for r in routes if r.error and r.server_id not in named]


def routing_view(state: DashboardState, *, simulated_default: bool) -> dict:
    r = state.routing
    alb = r.alb
    names = {g.arn: g.name for g in alb.target_groups}
    failure = (
        {"code": alb.failure.code, "message": alb.failure.message}
        if alb.failure
        else {"code": None, "message": r.error}
        if r.error
        else None
    )
    last = alb.last_apply
    return {
        "known": r.known,
        "simulated": r.simulated if state.link.synced_once else simulated_default,
        "degraded": alb.degraded,
        "stale": alb.stale,
        "load_balancer_arn": alb.load_balancer_arn or None,
        "listener": {"arn": alb.listener.arn or None, "protocol": alb.listener.protocol, "port": alb.listener.port},
        "cluster": alb.cluster or None,
        "instance_id": alb.instance_id or None,
        "priority_range": list(alb.priority_range),
        "rules": [
            {
                "priority": rule.priority if rule.priority is not None else "default",
                "path_patterns": list(rule.path_patterns),
                "server_id": rule.server_id,
                "owned": rule.owned,
                "target_groups": [names.get(a, a) for a in rule.target_group_arns],
            }
            for rule in alb.rules
        ],
        "target_groups": [
            {
                "server_id": g.server_id,
                "name": g.name,
                "arn": g.arn,
                "health_check_path": g.health_check_path or None,
                "targets": [
                    {
                        "instance_id": t.instance_id,
                        "port": t.port,
                        "state": t.state or None,
                        "reason": t.reason or None,
                        "description": t.description or None,
                    }
                    for t in g.targets
                ],
            }
            for g in alb.target_groups
        ],
        "errors": _route_errors(r),
        "failure": failure,
        "last_apply": {"ok": last.ok, "time": format_time(last.at), "changes": last.changes} if last else None,
        "scheduler": scheduler_view(state),
    }


# --------------------------------------------------------------- MCP auth notice


def mcp_auth_warning(settings: Settings) -> Optional[dict]:
    """What every page says when the orchestrator does not authenticate MCP requests
    (None when the bridges ask for a token)."""
    if not settings.bridge_open:
        return None
    if settings.bridge.auth == BRIDGE_AUTH_NONE:
        return {
            "level": "danger",
            "message": "MCP endpoints are not authenticated by the orchestrator: [bridge] auth = none "
            "says something in front authenticates every request (the ALB's authenticate "
            "action, or a private network you trust). Make sure it does: anyone who reaches "
            "a bridge can call every tool.",
        }
    return {
        "level": "info",
        "message": f"MCP endpoints ask for no token: no [bridge] tokens are set, so the bridges listen "
        f"on {settings.service.bridge_host} only and serve anyone on this host. Set "
        f"[bridge] tokens before making them reachable from other hosts.",
    }


# ---------------------------------------------------------------------- litellm


def litellm(state: DashboardState, *, base_url: str, tokens: TokenSet = TokenSet()) -> dict:
    """The `mcp_servers:` block for LiteLLM Proxy, rendered exactly as the CLI's
    `litellm-config` renders it (same names, same quoting)."""
    servers = [
        LiteLLMServer(server_id=sid, url=server.url)
        for sid, server in state.servers.items()
        if server.enabled and server.url
    ]
    names = litellm_names(s.server_id for s in servers)
    entries = [
        {"name": names[s.server_id], "server_id": s.server_id, "url": s.url}
        for s in sorted(servers, key=lambda s: s.server_id)
    ]
    return {
        "yaml": render_mcp_servers(servers, tokens=tokens),
        "servers": entries,
        "base_url": base_url or None,
        "scheduler": scheduler_view(state),
    }
