"""The dashboard's Falcon app: `create_app(settings, control)`.

URL layout under `[dashboard] path` (P, default /monitor):

    GET  P/                      overview            GET P/api/overview
    GET  P/servers/{id}          server detail       GET P/api/servers, P/api/servers/{id}
    GET  P/routing               ALB routing         GET P/api/routing
    GET  P/litellm               LiteLLM snippet     GET P/api/litellm
    POST P/actions               start/stop/restart/sync/reload (form or JSON reply)
                                                     POST P/api/actions (JSON)
    GET|POST P/login, POST P/logout                  POST P/api/login, P/api/logout
                                                     GET P/api/session (CSRF token)
    GET  P/static/...            CSS and JavaScript (no session needed)

Pages accept `?fragment=1`: just the live part, for the poller in dashboard.js.
"""

from __future__ import annotations

import html
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

import falcon

from common.settings import Settings
from services.dashboard import resources as r
from services.dashboard.auth import LoginLimiter, SessionStore
from services.dashboard.control import Control
from services.dashboard.middleware import Paths, RequireSession, SecurityHeaders

STATIC_DIR = Path(__file__).resolve().parent / "static"

log = logging.getLogger("dashboard")


def create_app(
    settings: Settings,
    control: Control,
    *,
    sessions: Optional[SessionStore] = None,
    limiter: Optional[LoginLimiter] = None,
    clock: Callable[[], float] = time.time,
) -> falcon.App:
    """The WSGI app. `control` gives the state and sends actions (SchedulerLink, or a
    fake in tests); `sessions` and `limiter` default to fresh ones from settings."""
    dash = settings.dashboard
    paths = Paths(dash.path)
    sessions = sessions or SessionStore(dash.session_minutes * 60)
    limiter = limiter or LoginLimiter(
        dash.login_failures_per_address, dash.login_failures_total, dash.login_window_seconds
    )
    deps = r.Deps(settings, control, paths, sessions, limiter, clock)

    app = falcon.App(middleware=[SecurityHeaders(paths), RequireSession(paths, sessions)])
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_qs_csv = False
    app.resp_options.secure_cookies_by_default = False  # set per request (https only)
    app.set_error_serializer(_serialize_error)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(loads=_loads)
    app.add_error_handler(Exception, _unexpected_error)

    p = paths.prefix
    app.add_route(p or "/", r.OverviewPage(deps))
    if p:
        app.add_route("/", r.RootRedirect(paths.home))
    app.add_route(f"{p}/servers/{{server_id}}", r.ServerPage(deps))
    app.add_route(f"{p}/routing", r.RoutingPage(deps))
    app.add_route(f"{p}/nodes", r.NodesPage(deps))
    app.add_route(f"{p}/litellm", r.LitellmPage(deps))
    app.add_route(f"{p}/login", r.LoginPage(deps))
    app.add_route(f"{p}/logout", r.Logout(deps, api=False))
    app.add_route(f"{p}/actions", r.Actions(deps, api=False))
    app.add_route(f"{p}/api/overview", r.ApiOverview(deps))
    app.add_route(f"{p}/api/servers", r.ApiServers(deps))
    app.add_route(f"{p}/api/servers/{{server_id}}", r.ApiServer(deps))
    app.add_route(f"{p}/api/routing", r.ApiRouting(deps))
    app.add_route(f"{p}/api/nodes", r.ApiNodes(deps))
    app.add_route(f"{p}/api/litellm", r.ApiLitellm(deps))
    app.add_route(f"{p}/api/session", r.ApiSession(deps))
    app.add_route(f"{p}/api/login", r.ApiLogin(deps))
    app.add_route(f"{p}/api/logout", r.Logout(deps, api=True))
    app.add_route(f"{p}/api/actions", r.Actions(deps, api=True))
    app.add_static_route(paths.static, str(STATIC_DIR))
    return app


def _loads(text: str) -> Any:
    """json.loads, where JSON nested deeper than the parser can follow is malformed JSON
    (a ValueError, so a 400) rather than a RecursionError (a 500)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _unexpected_error(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict) -> None:
    # Instead of falcon's default, which writes the traceback to wsgi.errors (stderr),
    # past the log formatter that masks secrets.
    log.error("%s %s failed", req.method, req.path, exc_info=exc)
    raise falcon.HTTPInternalServerError(description="see the dashboard's log")


def _serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """JSON for API clients and scripts, a small escaped page for browsers."""
    if req.client_prefers((falcon.MEDIA_JSON, falcon.MEDIA_HTML)) == falcon.MEDIA_HTML:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(exc.title or exc.status)}</title></head><body><h1>"
            f"{html.escape(exc.title or exc.status)}</h1><p>{html.escape(exc.description or '')}"
            "</p></body></html>"
        )
    else:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(exc.to_dict())
