"""View models: plain data for each page and its JSON twin, built from DashboardState.

Pure functions. Every field of the scheduler's state is read defensively: a missing
or mistyped field becomes None (shown as a dash), never an exception, and fields the
scheduler adds later are passed through where a view has room for them. Environment
variables appear by name only, whatever shape the state gives them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from common.litellm import LiteLLMServer, litellm_names, render_mcp_servers
from common.mcp_auth import TokenSet
from common.settings import BRIDGE_AUTH_NONE, Settings
from services.dashboard.state import DashboardState

# Status words the scheduler may use, by the group the overview counts them in.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "running": ("running", "up", "healthy", "serving"),
    "starting": (
        "pending",
        "starting",
        "created",
        "creating",
        "restarting",
        "waiting",
        "converging",
        "scheduled",
        "ensuring",
    ),
    # "stopping" counts here: it is on its way to stopped by hand.
    "stopped": (
        "stopped",
        "stopped-by-hand",
        "stopped-manually",
        "manually-stopped",
        "manual-stop",
        "paused",
        "stopping",
    ),
    "crash-looping": ("crash-looping", "crashloop", "crash-loop", "crashlooping", "backoff", "back-off"),
    "error": ("error", "failed", "invalid", "unavailable", "dead"),
    "disabled": ("disabled",),
}
GROUP_ORDER = ("running", "starting", "stopped", "crash-looping", "error", "disabled", "unknown")
RECENT_EVENTS = 20
DETAIL_EVENTS = 50
# ServerState fields a view shows in a place of its own; others go to "more fields".
KNOWN_SERVER_FIELDS = frozenset(
    {
        "server_id",
        "status",
        "enabled",
        "removed",
        "image",
        "host_port",
        "container_id",
        "health",
        "route",
        "restarts",
        "exit_code",
        "last_error",
        "next_restart_at",
        "env_names",
        "env",
        "updated_at",
        "started_at",
        "uptime",
        "uptime_seconds",
        "stderr_tail",
        "mounts",
        "url",
        "ports",
        "stopped_by_hand",
        "container_name",
        "transport",
        "bridge",
        "oom_killed",
        "config_error",
        "failures",
        "backoff_seconds",
        "route_priority",
        "route_target_group",
        "route_health",
        "route_error",
    }
)
# Extra fields whose name hints at a value that must never be shown.
_SENSITIVE_NAME = re.compile(r"env|secret|password|passwd|token|credential|key", re.I)


# ---------------------------------------------------------------- field readers


def text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value != "" else None


def integer(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def strings(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        return []
    return [
        v if isinstance(v, str) else str(v)
        for v in value
        if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    ]


def parse_time(value: Any) -> Optional[float]:
    """Epoch seconds from a number or an ISO 8601 text (Docker's nanoseconds included);
    None for anything else, and for Docker's "zero" time."""
    seconds = number(value)
    if seconds is None and isinstance(value, str) and value:
        iso = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp()
    if seconds is None or seconds < 86400:  # 1970-01-01: unset
        return None
    return seconds / 1000 if seconds > 1e11 else seconds  # milliseconds sent by mistake


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


def status_group(server: Mapping[str, Any]) -> str:
    """running / starting / stopped / crash-looping / error / disabled / unknown."""
    if server.get("enabled") is False:
        return "disabled"
    word = (text(server.get("status")) or "").strip().lower().replace("_", "-").replace(" ", "-")
    for group, words in STATUS_GROUPS.items():
        if word in words:
            return group
    if word.startswith("stopped"):
        return "stopped"
    if "crash" in word:
        return "crash-looping"
    return "unknown"


def status_label(server: Mapping[str, Any]) -> str:
    word = text(server.get("status"))
    if server.get("enabled") is False:
        return "disabled"
    if word is None:
        return "unknown"
    if status_group(server) == "stopped" and server.get("stopped_by_hand") is True:
        return "stopped by hand"
    return word.replace("-", " ").replace("_", " ")


def started_at(server: Mapping[str, Any], now: float) -> Optional[float]:
    """When the current run started, if the state says so (only while it runs)."""
    if status_group(server) not in ("running", "unknown"):
        return None
    for key in ("started_at", "running_since", "since"):
        when = parse_time(server.get(key))
        if when is not None:
            return min(when, now)
    uptime = number(server.get("uptime_seconds", server.get("uptime")))
    if uptime is not None:
        base = parse_time(server.get("updated_at")) or now
        return base - uptime
    return None


def env_names(server: Mapping[str, Any]) -> list[str]:
    """Variable names only: from env_names, or the keys of an env map if one appears."""
    names = strings(server.get("env_names"))
    env = server.get("env")
    if isinstance(env, Mapping):
        names += [k for k in env if isinstance(k, str)]
    elif isinstance(env, list):  # NAME or NAME=VALUE items: keep the name
        names += [item.split("=", 1)[0] for item in env if isinstance(item, str)]
    return sorted(set(names))


def mounts(server: Mapping[str, Any]) -> list[str]:
    out = []
    value = server.get("mounts")
    for m in value if isinstance(value, list) else []:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, Mapping):
            source = text(m.get("source")) or text(m.get("Source")) or text(m.get("name")) or ""
            target = text(m.get("target")) or text(m.get("destination")) or text(m.get("Destination")) or ""
            kind = text(m.get("type")) or text(m.get("Type"))
            mode = "ro" if m.get("read_only") is True or m.get("readonly") is True else ""
            parts = [p for p in (f"{source} → {target}" if source else target, kind, mode) if p]
            out.append(" · ".join(parts))
    return out


def ports(server: Mapping[str, Any]) -> list[str]:
    value = server.get("ports")
    out: list[str] = []
    if isinstance(value, Mapping):
        out = [f"{k} → {v}" for k, v in value.items() if isinstance(v, (str, int, list))]
    elif isinstance(value, list):
        out = strings(value)
    port = integer(server.get("host_port"))
    if port is not None and not out:
        out = [f"{port} (host, MCP bridge)"]
    return out


def public_url(server: Mapping[str, Any], base_url: str, host: str) -> Optional[str]:
    """The MCP endpoint clients use: the scheduler's `url`, else the public base URL,
    else the host the dashboard was reached at and the server's port."""
    url = text(server.get("url"))
    if url:
        return url
    sid = server.get("server_id")
    if base_url:
        return f"{base_url.rstrip('/')}/mcp/{sid}/mcp"
    port = integer(server.get("host_port"))
    if port is None or not host:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/mcp/{sid}/mcp"


def _route_infos(routing: Mapping[str, Any]) -> dict[str, dict]:
    routes = routing.get("routes")
    return (
        {r["server_id"]: dict(r) for r in routes if isinstance(r, Mapping) and isinstance(r.get("server_id"), str)}
        if isinstance(routes, list)
        else {}
    )


def _groups_by_server(routing: Mapping[str, Any]) -> dict[str, dict]:
    groups = routing.get("target_groups")
    return (
        {g["server_id"]: dict(g) for g in groups if isinstance(g, Mapping) and isinstance(g.get("server_id"), str)}
        if isinstance(groups, list)
        else {}
    )


def route_health(server: Mapping[str, Any], routing: Mapping[str, Any]) -> Optional[str]:
    """Health of the server's target at the ALB: its `route_health`, else from the
    routing state, else its `route` field."""
    if text(server.get("route_health")):
        return server["route_health"]
    sid = server.get("server_id")
    info = _route_infos(routing).get(sid)
    if info and text(info.get("health")):
        return info["health"]
    group = _groups_by_server(routing).get(sid)
    targets = group.get("targets") if group else None
    if isinstance(targets, list):
        states = [text(t.get("state")) for t in targets if isinstance(t, Mapping)]
        states = [s for s in states if s and s != "draining"]
        if states:
            return states[0]
    return text(server.get("route"))


def server_row(server: Mapping[str, Any], routing: Mapping[str, Any], now: float) -> dict:
    since = started_at(server, now)
    return {
        "server_id": server.get("server_id"),
        "status": text(server.get("status")),
        "label": status_label(server),
        "group": status_group(server),
        "enabled": server.get("enabled") is not False,
        "health": text(server.get("health")),
        "started_at": since,
        "uptime_seconds": None if since is None else max(now - since, 0.0),
        "uptime": format_duration(None if since is None else now - since),
        "restarts": integer(server.get("restarts")),
        "host_port": integer(server.get("host_port")),
        "image": text(server.get("image")),
        "route_health": route_health(server, routing),
        "exit_code": integer(server.get("exit_code")),
        "last_error": text(server.get("last_error")),
        "config_error": text(server.get("config_error")),
        "oom_killed": server.get("oom_killed") is True,
        "next_restart_at": parse_time(server.get("next_restart_at")),
    }


def _events(events: Iterable[Mapping[str, Any]], limit: int, server_id: Optional[str] = None) -> list[dict]:
    out = []
    for e in reversed(list(events)):
        if server_id is not None and e.get("server_id") != server_id:
            continue
        ts = parse_time(e.get("ts"))
        out.append(
            {
                "ts": ts,
                "time": format_time(ts),
                "level": text(e.get("level")) or "info",
                "server_id": text(e.get("server_id")),
                "code": text(e.get("code")),
                "message": text(e.get("message")) or "",
            }
        )
        if len(out) >= limit:
            break
    return out


def scheduler_view(state: DashboardState) -> dict:
    link = state.link
    return {
        "available": link.available,
        "synced_once": link.synced_once,
        "last_heard": link.last_heard,
        "last_heard_time": format_time(link.last_heard),
        "error": link.error,
        "agents": {str(k): str(v) for k, v in state.agents.items()},
        "agent_errors": {str(k): str(v) for k, v in state.agent_errors.items()},
    }


def config_view(config: Mapping[str, Any]) -> dict:
    loaded = parse_time(config.get("loaded_at"))
    return {
        "ok": config.get("ok") is not False,
        "path": text(config.get("path")),
        "loaded_at": loaded,
        "loaded_time": format_time(loaded),
        "errors": strings(config.get("errors")),
        "warnings": strings(config.get("warnings")),
        "skipped": strings(config.get("skipped")),
    }


def overview(state: DashboardState, now: float) -> dict:
    rows = [server_row(s, state.routing, now) for s in state.servers.values()]
    counts = {"total": len(rows), **{g: 0 for g in GROUP_ORDER}}
    for row in rows:
        counts[row["group"]] += 1
    return {
        "counts": counts,
        "config": config_view(state.config),
        "scheduler": scheduler_view(state),
        "servers": rows,
        "events": _events(state.events, RECENT_EVENTS),
        "now": now,
    }


def server_detail(
    state: DashboardState, server_id: str, now: float, *, base_url: str = "", host: str = ""
) -> Optional[dict]:
    server = state.servers.get(server_id)
    if server is None:
        return None
    row = server_row(server, state.routing, now)
    route = _route_infos(state.routing).get(server_id, {})
    group = _groups_by_server(state.routing).get(server_id, {})
    extra = {
        k: v
        for k, v in server.items()
        if k not in KNOWN_SERVER_FIELDS
        and not _SENSITIVE_NAME.search(k)
        and (isinstance(v, (str, int, float, bool)) or v is None)
    }
    stopped = parse_time(server.get("updated_at"))
    return {
        **row,
        "container_id": text(server.get("container_id")),
        "ports": ports(server),
        "env_names": env_names(server),
        "mounts": mounts(server),
        "stderr_tail": strings(server.get("stderr_tail")),
        "url": public_url(server, base_url, host),
        "container_name": text(server.get("container_name")),
        "transport": text(server.get("transport")),
        "bridge": text(server.get("bridge")),
        "failures": integer(server.get("failures")),
        "backoff_seconds": number(server.get("backoff_seconds")),
        "route": {
            "state": text(server.get("route")),
            "health": row["route_health"],
            "target_group": (
                text(server.get("route_target_group"))
                or text(route.get("target_group_name"))
                or text(group.get("name"))
            ),
            "priority": integer(server.get("route_priority")) or integer(route.get("priority")),
            "path_patterns": [f"/mcp/{server_id}", f"/mcp/{server_id}/*"],
            "error": text(server.get("route_error")) or text(route.get("error")),
        },
        "updated_at": stopped,
        "updated_time": format_time(stopped),
        "next_restart_time": format_time(row["next_restart_at"]),
        "events": _events(state.events, DETAIL_EVENTS, server_id),
        "more": dict(sorted(extra.items())),
        "scheduler": scheduler_view(state),
    }


# ---------------------------------------------------------------------- routing


def _error_list(value: Any) -> list[dict]:
    """Errors given as {server_id: {code, message}}, {server_id: message} or a list."""
    out = []
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else []
    for key, err in items:
        sid = key if isinstance(key, str) else None
        if isinstance(err, Mapping):
            code, message = text(err.get("code")), text(err.get("message")) or ""
            sid = text(err.get("server_id")) or sid
        else:
            code, message = None, str(err)
        quota = "quota" in (code or "").lower() or "quota" in message.lower()
        out.append({"server_id": sid, "code": code, "message": message, "quota": quota})
    return out


def routing_view(state: DashboardState, *, simulated_default: bool) -> dict:
    r = state.routing
    groups_raw = r.get("target_groups") if isinstance(r.get("target_groups"), list) else None
    routes = _route_infos(r)
    groups: list[dict] = []
    if groups_raw is not None:
        for g in groups_raw:
            if not isinstance(g, Mapping):
                continue
            targets = [
                {
                    "instance_id": text(t.get("instance_id")),
                    "port": integer(t.get("port")),
                    "state": text(t.get("state")),
                    "reason": text(t.get("reason")),
                    "description": text(t.get("description")),
                }
                for t in g.get("targets") or []
                if isinstance(t, Mapping)
            ]
            groups.append(
                {
                    "server_id": text(g.get("server_id")),
                    "name": text(g.get("name")),
                    "arn": text(g.get("arn")),
                    "health_check_path": text(g.get("health_check_path")),
                    "targets": targets,
                }
            )
    else:  # only per-server route infos: one target group per route
        for sid, info in sorted(routes.items()):
            if not info.get("target_group_name") and not info.get("target_group_arn"):
                continue
            groups.append(
                {
                    "server_id": sid,
                    "name": text(info.get("target_group_name")),
                    "arn": text(info.get("target_group_arn")),
                    "health_check_path": f"/mcp/{sid}/health",
                    "targets": [
                        {
                            "instance_id": None,
                            "port": integer(info.get("port")),
                            "state": text(info.get("health")),
                            "reason": None,
                            "description": None,
                        }
                    ],
                }
            )
    names = {g["arn"]: g["name"] for g in groups if g["arn"]}
    rules: list[dict] = []
    if isinstance(r.get("rules"), list):
        for rule in r["rules"]:
            if not isinstance(rule, Mapping):
                continue
            priority = rule.get("priority")
            rules.append(
                {
                    "priority": priority if isinstance(priority, (int, str)) else None,
                    "path_patterns": strings(rule.get("path_patterns")),
                    "server_id": text(rule.get("server_id")),
                    "owned": rule.get("owned") is not False,
                    "target_groups": [names.get(a, a) for a in strings(rule.get("target_group_arns"))],
                }
            )
    else:
        for sid, info in sorted(routes.items()):
            if integer(info.get("priority")) is None and not info.get("rule_arn"):
                continue
            rules.append(
                {
                    "priority": integer(info.get("priority")),
                    "path_patterns": [f"/mcp/{sid}", f"/mcp/{sid}/*"],
                    "server_id": sid,
                    "owned": True,
                    "target_groups": [text(info.get("target_group_name")) or ""],
                }
            )
    errors = _error_list(r.get("errors"))
    errors += [
        {"server_id": sid, "code": None, "message": info["error"], "quota": "quota" in info["error"].lower()}
        for sid, info in sorted(routes.items())
        if text(info.get("error")) and sid not in {e["server_id"] for e in errors}
    ]
    failure = r.get("failure") if isinstance(r.get("failure"), Mapping) else None
    if failure is None and text(r.get("error")):
        failure = {"code": None, "message": r["error"]}
    listener = r.get("listener") if isinstance(r.get("listener"), Mapping) else {}
    last_apply = r.get("last_apply") if isinstance(r.get("last_apply"), Mapping) else None
    prange = r.get("priority_range")
    simulated = r.get("simulated")
    return {
        "known": r["known"] if isinstance(r.get("known"), bool) else bool(r),
        "simulated": simulated if isinstance(simulated, bool) else simulated_default,
        "degraded": r.get("degraded") is True,
        "stale": r.get("stale") is True,
        "load_balancer_arn": text(r.get("load_balancer_arn")),
        "listener": {
            "arn": text(listener.get("arn")),
            "protocol": text(listener.get("protocol")),
            "port": integer(listener.get("port")),
        },
        "cluster": text(r.get("cluster")),
        "instance_id": text(r.get("instance_id")),
        "priority_range": [p for p in prange if integer(p) is not None] if isinstance(prange, list) else [],
        "rules": rules,
        "target_groups": groups,
        "errors": errors,
        "failure": {"code": text(failure.get("code")), "message": text(failure.get("message"))} if failure else None,
        "last_apply": {
            "ok": last_apply.get("ok") is not False,
            "time": format_time(parse_time(last_apply.get("at"))),
            "changes": integer(last_apply.get("changes")),
        }
        if last_apply
        else None,
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


def litellm(state: DashboardState, *, base_url: str, host: str, tokens: TokenSet = TokenSet()) -> dict:
    """The `mcp_servers:` block for LiteLLM Proxy, rendered exactly as the CLI's
    `litellm-config` renders it (same names, same quoting)."""
    servers = []
    for sid, server in state.servers.items():
        url = public_url(server, base_url, host) if server.get("enabled") is not False else None
        if url is not None:
            servers.append(LiteLLMServer(server_id=sid, url=url))
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
