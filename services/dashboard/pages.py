"""Server-rendered HTML of every page, from the view models in views.py.

Each page is a layout around a "live" fragment: the browser script polls the same
URL with `?fragment=1` and swaps the fragment in, so what the page shows is always
rendered here, once. Every value goes through htmlkit (escaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from services.dashboard import traffic_pages
from services.dashboard.htmlkit import Html, html, join, show
from services.dashboard.views import GROUP_ORDER

GROUP_TITLES = {
    "running": "Running",
    "starting": "Starting",
    "stopped": "Stopped",
    "crash-looping": "Crash-looping",
    "error": "Error",
    "disabled": "Disabled",
    "unknown": "Unknown",
}


@dataclass(frozen=True)
class PageContext:
    """What every page around the fragment needs."""

    prefix: str  # the dashboard path, "" when it is "/"
    username: str
    csrf_token: str
    default_password: bool
    flash: tuple[tuple[str, str], ...] = ()
    mcp_auth_warning: Optional[dict] = None  # views.mcp_auth_warning
    request_path: str = ""  # where action forms come back to without JavaScript

    def url(self, *parts: str) -> str:
        return self.prefix + "/" + "/".join(parts) if parts else self.prefix + "/"


def server_url(ctx: PageContext, server_id: Any) -> str:
    return ctx.url("servers", quote(str(server_id), safe=""))


# ------------------------------------------------------------------------ layout


def _default_password_banner(ctx_default: bool) -> Html:
    if not ctx_default:
        return Html("")
    return Html(
        '<div class="banner danger" role="alert"><strong>Warning:</strong> the dashboard '
        "password is still the default <code>changeme</code>. Anyone who can reach this "
        "page can control your MCP servers: set <code>[dashboard] password</code> in "
        "settings.conf (or MCP_ORCHESTRATOR_DASHBOARD_PASSWORD) and restart the "
        "dashboard.</div>"
    )


def _mcp_auth_banner(warning: Optional[dict]) -> Html:
    if not warning:
        return Html("")
    return html(
        '<div class="banner {}" id="mcp-auth-banner" role="{}"><strong>{}</strong> {}</div>',
        warning["level"],
        "alert" if warning["level"] == "danger" else "status",
        "Warning:" if warning["level"] == "danger" else "Note:",
        warning["message"],
    )


def layout(ctx: PageContext, title: str, active: str, fragment: Html) -> Html:
    nav = join(
        html(
            '<a href="{}"{}>{}</a>',
            href,
            Html(' class="active" aria-current="page"') if key == active else Html(""),
            label,
        )
        for key, href, label in (
            ("overview", ctx.url(), "Overview"),
            ("routing", ctx.url("routing"), "ALB routing"),
            ("nodes", ctx.url("nodes"), "Nodes"),
            ("litellm", ctx.url("litellm"), "LiteLLM"),
        )
    )
    flash = join(html('<div class="toast {}">{}</div>', level, message) for level, message in ctx.flash)
    return html(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{title} · MCP Orchestrator</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="{static}/dashboard.css">'
        '<script src="{static}/dashboard.js" defer></script></head>'
        '<body data-login="{login}" data-csrf="{csrf}">'
        '<header class="top"><a class="brand" href="{home}">MCP Orchestrator</a>'
        '<nav>{nav}</nav><div class="user"><span>{user}</span>'
        '<form method="post" action="{logout}" class="logout">'
        '<input type="hidden" name="csrf_token" value="{csrf}">'
        '<button type="submit" id="logout">Log out</button></form></div></header>'
        '{banner}<div id="feedback" aria-live="polite">{flash}</div>'
        '<div id="offline" class="banner danger" hidden>The dashboard does not answer; '
        "retrying…</div>"
        '<main id="live" data-live="{live}">{fragment}</main></body></html>',
        title=title,
        static=ctx.url("static").rstrip("/"),
        login=ctx.url("login"),
        csrf=ctx.csrf_token,
        home=ctx.url(),
        nav=nav,
        user=ctx.username,
        logout=ctx.url("logout"),
        banner=join([_default_password_banner(ctx.default_password), _mcp_auth_banner(ctx.mcp_auth_warning)]),
        flash=flash,
        live=(ctx.request_path or ctx.url()) + "?fragment=1",
        fragment=fragment,
    )


def login_page(
    prefix: str, *, token: str, next_path: str, error: Optional[str], default_password: bool, username: str = ""
) -> Html:
    base = prefix + "/"
    return html(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>Log in · MCP Orchestrator</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="{static}/dashboard.css"></head>'
        '<body class="login">{banner}<main class="login-box"><h1>MCP Orchestrator</h1>'
        '{error}<form method="post" action="{action}">'
        '<input type="hidden" name="csrf_token" value="{token}">'
        '<input type="hidden" name="next" value="{next}">'
        '<label>Username <input name="username" id="username" autocomplete="username" '
        'value="{username}" required autofocus></label>'
        '<label>Password <input name="password" id="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit" id="login">Log in</button></form></main></body></html>',
        static=base + "static",
        banner=_default_password_banner(default_password),
        error=html('<p class="banner danger" role="alert">{}</p>', error) if error else Html(""),
        action=base + "login",
        token=token,
        next=next_path,
        username=username,
    )


# ---------------------------------------------------------------- shared parts


def scheduler_banner(scheduler: dict) -> Html:
    parts = []
    if not scheduler.get("synced_once"):
        parts.append(
            html(
                '<div class="banner warn" id="scheduler-banner">Waiting for the '
                "scheduler: no state received yet{}. The dashboard connects by "
                "itself as soon as it answers.</div>",
                f" ({scheduler['error']})" if scheduler.get("error") else "",
            )
        )
    elif not scheduler.get("available"):
        parts.append(
            html(
                '<div class="banner danger" id="scheduler-banner"><strong>Scheduler '
                "unavailable</strong>: showing the last known state (last heard {}). "
                "The dashboard reconnects by itself.</div>",
                scheduler.get("last_heard_time") or "never",
            )
        )
    control = scheduler.get("control")
    if control and control["role"] == "standby":
        parts.append(
            html(
                '<div class="banner info" id="control-banner"><strong>Standby</strong>: the control plane of '
                "this manager ({}) stands by; the active one is {}. What is shown is read from Swarm; "
                "actions are taken by the active manager's dashboard.</div>",
                control.get("hostname") or "this node",
                f"on {control['active_node']}" if control.get("active_node") else "not known yet",
            )
        )
    errors = scheduler.get("agent_errors") or {}
    down = sorted(name for name, st in (scheduler.get("agents") or {}).items() if st != "available")
    if down:
        parts.append(
            html(
                '<div class="banner warn" id="agents-banner">Not answering the '
                "scheduler: {}. What they manage may be out of date below.</div>",
                "; ".join(f"{n} ({errors[n]})" if errors.get(n) else n for n in down),
            )
        )
    return join(parts)


def badge(group: str, label: Any) -> Html:
    return html('<span class="badge {}">{}</span>', group, label)


def uptime(row: dict) -> Html:
    if row.get("started_at") is None:
        return show(None)
    return html('<span data-since="{}">{}</span>', f"{row['started_at']:.3f}", row.get("uptime"))


def action_form(ctx: PageContext, server_id: Any, actions=("start", "stop", "restart")) -> Html:
    buttons = join(
        html(
            '<button type="submit" name="action" value="{}" class="act-{}" data-server="{}">{}</button>',
            a,
            a,
            server_id,
            a.capitalize(),
        )
        for a in actions
    )
    return html(
        '<form method="post" action="{}" class="js-action">'
        '<input type="hidden" name="csrf_token" value="{}">'
        '<input type="hidden" name="server_id" value="{}">'
        '<input type="hidden" name="return_to" value="{}">{}</form>',
        ctx.url("actions"),
        ctx.csrf_token,
        server_id,
        ctx.request_path or ctx.url(),
        buttons,
    )


def global_actions(ctx: PageContext) -> Html:
    return html(
        '<form method="post" action="{}" class="js-action global-actions">'
        '<input type="hidden" name="csrf_token" value="{}">'
        '<input type="hidden" name="return_to" value="{}">'
        '<button type="submit" name="action" value="sync" id="sync">Sync now</button>'
        '<button type="submit" name="action" value="reload" id="reload">Reload config'
        "</button></form>",
        ctx.url("actions"),
        ctx.csrf_token,
        ctx.request_path or ctx.url(),
    )


def events_list(events: list[dict], ctx: PageContext, with_server: bool = True) -> Html:
    if not events:
        return Html('<p class="missing">No events yet.</p>')
    items = join(
        html(
            '<li class="ev {}"><time>{}</time> {}{}</li>',
            e["level"],
            e.get("time") or "—",
            html('<a href="{}">{}</a>: ', server_url(ctx, e["server_id"]), e["server_id"])
            if with_server and e.get("server_id")
            else Html(""),
            e["message"],
        )
        for e in events
    )
    return html('<ul class="events">{}</ul>', items)


# ---------------------------------------------------------------------- overview


def overview_fragment(ctx: PageContext, view: dict) -> Html:
    config = view["config"]
    config_box = Html("")
    if not config["ok"] or config["errors"]:
        config_box = html(
            '<div class="banner danger" id="config-errors"><strong>The configuration '
            "file {} is invalid</strong>; the last good configuration stays in "
            "force.<ul>{}</ul></div>",
            config["path"] or "",
            join(html("<li>{}</li>", e) for e in config["errors"]),
        )
    warnings = Html("")
    if config["warnings"] or config["skipped"]:
        warnings = html(
            '<details class="banner info" id="config-notices"><summary>{} configuration notice(s)'
            "</summary><ul>{}</ul></details>",
            len(config["warnings"]) + len(config["skipped"]),
            join(html("<li>{}</li>", w) for w in config["warnings"] + [f"skipped: {s}" for s in config["skipped"]]),
        )
    counts = view["counts"]
    tiles = html('<div class="tile total"><b id="count-total">{}</b><span>servers</span></div>', counts["total"])
    tiles = tiles + join(
        html(
            '<div class="tile {}"><b id="count-{}">{}</b><span>{}</span></div>', g, g, counts.get(g, 0), GROUP_TITLES[g]
        )
        for g in GROUP_ORDER
        if g != "unknown" or counts.get(g)
    )
    rows = join(_overview_row(ctx, row) for row in view["servers"])
    traffic = view.get("traffic")
    table = (
        html(
            '<table class="servers"><thead><tr><th>Server</th><th>State</th><th>Health</th>'
            "<th>Uptime</th><th>Restarts</th>{}<th>Port</th><th>Image</th><th>Route</th>"
            "<th>Actions</th></tr></thead><tbody>{}</tbody></table>{}",
            traffic_pages.OVERVIEW_HEADERS if traffic else Html(""),
            rows,
            traffic_pages.unavailable_note(traffic, ": the other columns are up to date") if traffic else Html(""),
        )
        if view["servers"]
        else Html('<p class="missing">No servers in the configuration.</p>')
    )
    return html(
        '{sched}{config}{warnings}<section class="counts">{tiles}</section>'
        '<section class="bar"><h2>Servers</h2>{globals}</section>{table}'
        "<section><h2>Recent events</h2>{events}</section>",
        sched=scheduler_banner(view["scheduler"]),
        config=config_box,
        warnings=warnings,
        tiles=tiles,
        globals=global_actions(ctx),
        table=table,
        events=events_list(view["events"], ctx),
    )


def _overview_row(ctx: PageContext, row: dict) -> Html:
    notes = []
    if row.get("exit_code") is not None and row["group"] in ("crash-looping", "error", "stopped"):
        notes.append(html("<small>exit code {}</small>", row["exit_code"]))
    if row.get("oom_killed"):
        notes.append(Html('<small class="err">killed: out of memory</small>'))
    if row.get("last_error"):
        notes.append(html('<small class="err">{}</small>', row["last_error"]))
    if row.get("config_error"):
        notes.append(html('<small class="err">config: {}</small>', row["config_error"]))
    if row.get("replicas") is not None:
        notes.append(replicas_note(row))
    return html(
        '<tr data-server="{sid}" class="{group}"><td><a href="{href}">{sid}</a></td>'
        '<td class="state">{badge}{notes}</td><td>{health}</td><td>{uptime}</td>'
        '<td class="num">{restarts}</td>{traffic}<td class="num">{port}</td>'
        '<td class="image">{image}</td><td>{route}</td><td>{actions}</td></tr>',
        sid=row["server_id"],
        group=row["group"],
        href=server_url(ctx, row["server_id"]),
        badge=badge(row["group"], row["label"]),
        notes=join(notes),
        health=show(row.get("health")),
        uptime=uptime(row),
        restarts=show(row.get("restarts")),
        traffic=traffic_pages.overview_cells(row["traffic"]) if "traffic" in row else Html(""),
        port=show(row.get("host_port")),
        image=show(row.get("image")),
        route=show(row.get("route_health")),
        actions=action_form(ctx, row["server_id"]),
    )


def replicas_note(row: dict) -> Html:
    """A swarm's server: "2/2 replicas on sw1, sw2"."""
    where = ", ".join(row.get("nodes") or []) or "no node"
    return html(
        '<small class="replicas">{}/{} replicas on {}</small>',
        show(row.get("replicas_running")),
        row["replicas"],
        where,
    )


def nodes_fragment(ctx: PageContext, view: dict) -> Html:
    if view["engine"] != "swarm":
        body = Html(
            '<p class="missing">One host: <code>[cluster] engine = docker</code>. With '
            "<code>engine = swarm</code> the servers run as replicated services across the hosts "
            "of a Docker Swarm, listed here.</p>"
        )
    elif not view["nodes"]:
        body = Html('<p class="missing">No node known yet.</p>')
    else:
        control = view["scheduler"].get("control") or {}
        active_node = control.get("active_node")
        rows = join(
            html(
                '<tr data-node="{id}" class="{cls}"><td>{host}{leader}{active}</td><td>{zone}</td><td>{role}</td>'
                "<td>{address}</td><td>{instance}</td><td>{state}</td><td>{agent}</td><td>{serves}</td></tr>",
                id=n["node_id"],
                cls="ok" if n["state"] == "ready" and n["availability"] == "active" and n["reachable"] else "warn",
                host=n["hostname"] or n["node_id"][:12],
                leader=Html(" <small>(leader)</small>") if n["leader"] else Html(""),
                active=(
                    Html(' <small class="active-control">(control plane)</small>')
                    if n["hostname"] and n["hostname"] == active_node
                    else Html("")
                ),
                zone=show(n["zone"]),
                role=show(n["role"]),
                address=show(n["address"]),
                instance=show(n["instance_id"]),
                state=f"{n['state']}, {n['availability']}",
                agent=(
                    Html("answers")
                    if n["reachable"]
                    else html('<span class="err">{}</span>', n["error"] or "not asked")
                    if n["reachable"] is False
                    else Html("not asked")
                ),
                serves=_chips(n["serves"]) if n["serves"] else Html("-"),
            )
            for n in view["nodes"]
        )
        body = html(
            '<table class="nodes"><thead><tr><th>Node</th><th>Zone</th><th>Role</th><th>Address</th>'
            "<th>Instance</th><th>State</th><th>Agent</th><th>Serves</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
    return html('{}<section class="bar"><h1>Nodes</h1></section>{}', scheduler_banner(view["scheduler"]), body)


# ------------------------------------------------------------------------ detail


def _dl(items: list[tuple[str, Any]]) -> Html:
    return html('<dl class="facts">{}</dl>', join(html("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in items))


def _chips(values: list[str], css: str = "chip") -> Html:
    if not values:
        return show(None)
    return join(html('<span class="{}">{}</span>', css, v) for v in values)


def detail_fragment(ctx: PageContext, view: dict) -> Html:
    route = view["route"]
    url = (
        html(
            '<code id="mcp-url">{}</code> <button type="button" class="copy" data-copy="#mcp-url">Copy</button>',
            view["url"],
        )
        if view.get("url")
        else show(None)
    )
    facts = _dl(
        [
            ("State", badge(view["group"], view["label"])),
            ("Health", show(view.get("health"))),
            ("Uptime", uptime(view)),
            ("Restarts", show(view.get("restarts"))),
            ("Last exit code", show(view.get("exit_code"))),
            ("Next restart", show(view.get("next_restart_time"))),
            (
                "Last error",
                html('<span class="err">{}</span>', view["last_error"]) if view.get("last_error") else show(None),
            ),
            (
                "Config error",
                html('<span class="err">{}</span>', view["config_error"]) if view.get("config_error") else show(None),
            ),
            ("Out of memory", show(True) if view.get("oom_killed") else show(None)),
            ("Container", html("<code>{}</code>", view["container_id"]) if view.get("container_id") else show(None)),
            ("Container name", show(view.get("container_name"))),
            ("Image", show(view.get("image"))),
            ("Transport / bridge", show(" / ".join(v for v in (view.get("transport"), view.get("bridge")) if v))),
            ("MCP revision", show(view.get("mcp_version") or "")),
            ("Ports", _chips(view["ports"])),
            ("Public MCP URL", url),
            ("Updated", show(view.get("updated_time"))),
        ]
    )
    route_facts = _dl(
        [
            ("Routing state", show(route.get("state"))),
            ("Target health", show(route.get("health"))),
            ("Target group", show(route.get("target_group"))),
            ("Rule priority", show(route.get("priority"))),
            ("Path patterns", _chips(route["path_patterns"], "chip mono")),
            (
                "Routing error",
                html('<span class="err">{}</span>', route["error"]) if route.get("error") else show(None),
            ),
        ]
    )
    stderr = (
        html('<pre class="stderr" id="stderr-tail">{}</pre>', "\n".join(view["stderr_tail"]))
        if view["stderr_tail"]
        else Html('<p class="missing" id="stderr-tail">No stderr lines.</p>')
    )
    return html(
        '{sched}<section class="bar"><h1 id="server-title">{sid}</h1>{actions}</section>'
        '<div class="cols"><section><h2>Container</h2>{facts}</section>'
        "<section><h2>Route</h2>{route}<h2>Environment variables</h2>"
        '<p class="note">Names only: values go to Docker and nowhere else.</p>'
        '<div id="env-names">{env}</div><h2>Mounts</h2>{mounts}</section></div>'
        "{traffic}<section><h2>Last stderr lines</h2>{stderr}</section>"
        "<section><h2>Recent events</h2>{events}</section>",
        sched=scheduler_banner(view["scheduler"]),
        sid=view["server_id"],
        actions=action_form(ctx, view["server_id"]),
        facts=facts,
        route=route_facts,
        env=_chips(view["env_names"], "chip mono"),
        mounts=html('<ul class="plain">{}</ul>', join(html("<li><code>{}</code></li>", m) for m in view["mounts"]))
        if view["mounts"]
        else show(None),
        traffic=traffic_pages.server_traffic(view["traffic"], view["traffic_status"])
        if "traffic_status" in view
        else Html(""),
        stderr=stderr,
        events=events_list(view["events"], ctx, with_server=False),
    )


def not_found_fragment(ctx: PageContext, server_id: str) -> Html:
    return html(
        '<div class="banner warn">No server <code>{}</code> in the current state. '
        '<a href="{}">Back to the overview</a>.</div>',
        server_id,
        ctx.url(),
    )


# ----------------------------------------------------------------------- routing


def routing_fragment(ctx: PageContext, view: dict) -> Html:
    parts = [scheduler_banner(view["scheduler"])]
    if view["simulated"]:
        parts.append(
            Html(
                '<div class="banner info" id="simulated-banner"><strong>Routing is '
                "simulated.</strong> No ALB is configured (<code>[aws] alb_arn</code> "
                "and <code>listener_arn</code> are empty), so the alb-agent works "
                "against a local AWS stand-in: the rules and target groups below "
                "exist only there, and no traffic from AWS reaches this host.</div>"
            )
        )
    if view["degraded"] or view["failure"]:
        failure = view["failure"] or {}
        parts.append(
            html(
                '<div class="banner danger" id="aws-failure"><strong>AWS could not be '
                "read or changed</strong>{}: {}</div>",
                " (showing the last known routing)" if view["stale"] else "",
                " ".join(p for p in (failure.get("code"), failure.get("message")) if p) or "no detail",
            )
        )
    if view["errors"]:
        parts.append(
            html(
                '<div class="banner danger" id="routing-errors"><strong>Routing errors</strong><ul>{}</ul></div>',
                join(
                    html(
                        "<li>{}{}{}</li>",
                        Html('<span class="badge error">quota</span> ') if e["quota"] else Html(""),
                        html("<b>{}</b>: ", e["server_id"]) if e["server_id"] else Html(""),
                        e["message"],
                    )
                    for e in view["errors"]
                ),
            )
        )
    if not view["known"]:
        parts.append(Html('<p class="missing">No routing information from the scheduler yet.</p>'))
    listener = view["listener"]
    last = view["last_apply"]
    parts.append(
        html(
            "<section><h2>Load balancer</h2>{}</section>",
            _dl(
                [
                    ("Load balancer", show(view["load_balancer_arn"])),
                    ("Listener", show(listener["arn"])),
                    (
                        "Protocol / port",
                        show(" ".join(str(p) for p in (listener["protocol"], listener["port"]) if p is not None)),
                    ),
                    ("Cluster tag", show(view["cluster"])),
                    ("Target instance", show(view["instance_id"])),
                    ("Our priority range", show("–".join(str(p) for p in view["priority_range"]))),
                    (
                        "Last apply",
                        show(None)
                        if not last
                        else html(
                            "{} at {} ({} change(s))",
                            "ok" if last["ok"] else "failed",
                            last["time"] or "—",
                            last["changes"] if last["changes"] is not None else "—",
                        ),
                    ),
                ]
            ),
        )
    )
    rules = join(
        html(
            '<tr class="{}"><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            "" if r["owned"] else "foreign",
            show(r["priority"]),
            _chips(r["path_patterns"], "chip mono"),
            html('<a href="{}">{}</a>', server_url(ctx, r["server_id"]), r["server_id"])
            if r["server_id"]
            else show(None),
            show(", ".join(t for t in r["target_groups"] if t)),
            "ours" if r["owned"] else "not ours (left alone)",
        )
        for r in view["rules"]
    )
    parts.append(
        html(
            "<section><h2>Listener rules</h2>{}</section>",
            html(
                '<table id="rules"><thead><tr><th>Priority</th><th>Path patterns</th><th>Server</th>'
                "<th>Target group</th><th>Owner</th></tr></thead><tbody>{}</tbody></table>",
                rules,
            )
            if view["rules"]
            else Html('<p class="missing">No rules.</p>'),
        )
    )
    groups = join(
        html(
            "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            show(g["name"]),
            html('<a href="{}">{}</a>', server_url(ctx, g["server_id"]), g["server_id"])
            if g["server_id"]
            else show(None),
            show(g["health_check_path"]),
            _targets(g["targets"]),
        )
        for g in view["target_groups"]
    )
    parts.append(
        html(
            "<section><h2>Target groups</h2>{}</section>",
            html(
                '<table id="target-groups"><thead><tr><th>Name</th><th>Server</th><th>Health check</th>'
                "<th>Targets</th></tr></thead><tbody>{}</tbody></table>",
                groups,
            )
            if view["target_groups"]
            else Html('<p class="missing">No target groups.</p>'),
        )
    )
    return join(parts)


def _targets(targets: list[dict]) -> Html:
    if not targets:
        return show(None)
    return join(
        html(
            "<div>{}:{} {}{}</div>",
            t["instance_id"] or "—",
            t["port"] if t["port"] is not None else "—",
            badge(_health_group(t["state"]), t["state"] or "unknown"),
            html(" <small>{}</small>", t["description"] or t["reason"])
            if t["description"] or t["reason"]
            else Html(""),
        )
        for t in targets
    )


def _health_group(state: Optional[str]) -> str:
    return {
        "healthy": "running",
        "initial": "starting",
        "draining": "stopped",
        "unhealthy": "error",
        "unused": "disabled",
    }.get(state or "", "unknown")


# ----------------------------------------------------------------------- litellm


def litellm_fragment(ctx: PageContext, view: dict) -> Html:
    note = (
        Html("")
        if view["base_url"]
        else Html(
            '<p class="note">Set <code>[service] public_base_url</code> to the URL clients use '
            "(for example the ALB's <code>https://…</code> address) to get addresses through the "
            "load balancer; until then they point at this host's server ports.</p>"
        )
    )
    return html(
        '{}<section class="bar"><h1>LiteLLM Proxy</h1>'
        '<button type="button" class="copy" data-copy="#litellm-yaml" id="copy-litellm">'
        "Copy</button></section><p>Add this block to LiteLLM Proxy's "
        "<code>config.yaml</code>. Names have <code>-</code> and <code>.</code> "
        "replaced by <code>_</code>, which LiteLLM requires.</p>{}"
        '<pre id="litellm-yaml" class="snippet">{}</pre>',
        scheduler_banner(view["scheduler"]),
        note,
        view["yaml"],
    )
