"""Falcon resources: they only translate HTTP to calls on views, pages and Control."""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Callable, Optional
from urllib.parse import quote

import falcon

from common.client_address import client_address, parse_networks
from common.settings import Settings
from services.dashboard import dashboard_metrics, pages, traffic_view, views
from services.dashboard.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    SessionStore,
    credentials_match,
    new_token,
    tokens_equal,
)
from services.dashboard.control import ActionResult, Control, check_action
from services.dashboard.htmlkit import Html
from services.dashboard.middleware import Paths

log = logging.getLogger("dashboard")

# HTTP status of a failed action, by the scheduler's error code.
ACTION_STATUS = {
    "invalid_argument": 400,
    "invalid_body": 400,
    "not_found": 404,
    "conflict": 409,
    "unavailable": 503,
    "timeout": 503,
}
LOGIN_COOKIE_SECONDS = 3600


class Deps:
    """What the resources share (built by create_app)."""

    def __init__(
        self,
        settings: Settings,
        control: Control,
        paths: Paths,
        sessions: SessionStore,
        limiter: LoginLimiter,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.control = control
        self.paths = paths
        self.sessions = sessions
        self.limiter = limiter
        self.clock = clock
        self.trusted_proxies = parse_networks(settings.service.trusted_proxies)

    def client(self, req: falcon.Request) -> str:
        """The address login limits count against: the peer, or the client a trusted
        proxy names in X-Forwarded-For."""
        forwarded = req.get_header("X-Forwarded-For")
        return client_address(req.remote_addr, [forwarded] if forwarded else [], self.trusted_proxies)

    def page_context(self, req: falcon.Request) -> pages.PageContext:
        session = req.context.session
        return pages.PageContext(
            prefix=self.paths.prefix,
            username=session.username,
            csrf_token=session.csrf_token,
            default_password=self.settings.default_password,
            mcp_auth_warning=views.mcp_auth_warning(self.settings),
            flash=tuple(self.sessions.take_flash(session)) if not _is_fragment(req) else (),
            request_path=quote(req.path, safe="/"),
        )

    def set_cookie(
        self, req: falcon.Request, resp: falcon.Response, name: str, value: str, max_age: int, path: str
    ) -> None:
        resp.set_cookie(name, value, max_age=max_age, path=path, http_only=True, same_site="Strict", secure=_https(req))

    def clear_cookie(self, req: falcon.Request, resp: falcon.Response, name: str, path: str) -> None:
        resp.unset_cookie(name, path=path, same_site="Strict")


def _https(req: falcon.Request) -> bool:
    # Behind the ALB the scheme arrives as X-Forwarded-Proto; trusting it only adds the
    # Secure flag, which can do no harm.
    return req.scheme == "https" or (req.get_header("X-Forwarded-Proto") or "").lower() == "https"


def _is_fragment(req: falcon.Request) -> bool:
    return req.get_param_as_bool("fragment", default=False)


def _form(req: falcon.Request) -> dict:
    if not (req.content_type or "").startswith("application/x-www-form-urlencoded"):
        raise falcon.HTTPUnsupportedMediaType(description="expected a form post")
    form = req.get_media(default_when_empty={})
    return {k: v for k, v in form.items() if isinstance(v, str)} if isinstance(form, dict) else {}


def _json(req: falcon.Request) -> dict:
    # JSON only: a cross-site page cannot send it without a CORS preflight we never allow.
    if not (req.content_type or "").startswith("application/json"):
        raise falcon.HTTPUnsupportedMediaType(description="expected application/json")
    try:
        body = req.get_media(default_when_empty={})
    except falcon.MediaMalformedError as exc:
        # The JSON parser's reason names a position, never the body's content (the UTF-8
        # decoder's would quote a byte of it).
        cause = exc.__cause__
        reason = "it is not UTF-8" if isinstance(cause, UnicodeDecodeError) else cause
        raise falcon.HTTPBadRequest(
            title="Malformed JSON", description=f"the body is not valid JSON: {reason}"
        ) from None
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="Expected a JSON object")
    return body


def _redirect(resp: falcon.Response, target: str) -> None:
    # Set on resp (not raised) so that the cookies set on it go out with the redirect.
    resp.status = falcon.HTTP_303
    resp.location = target


def _send_html(req: falcon.Request, resp: falcon.Response, body: Html, *, fragment: bool) -> None:
    if fragment:
        # The poller sends the ETag back: an unchanged fragment costs a 304, not a redraw.
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
        resp.set_header("ETag", etag)
        if req.get_header("If-None-Match") == etag:
            resp.status = falcon.HTTP_304
            resp.content_type = None
            return
    resp.content_type = falcon.MEDIA_HTML
    resp.text = body


# -------------------------------------------------------------------------- pages


class _Page:
    title = ""
    active = ""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def fragment(self, req: falcon.Request, ctx: pages.PageContext, **params: Any) -> Html:
        raise NotImplementedError

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        ctx = self.deps.page_context(req)
        body = self.fragment(req, ctx, **params)
        if _is_fragment(req):
            _send_html(req, resp, body, fragment=True)
        else:
            title = self.title or str(params.get("server_id", ""))
            _send_html(req, resp, pages.layout(ctx, title, self.active, body), fragment=False)


class OverviewPage(_Page):
    title, active = "Overview", "overview"

    def fragment(self, req, ctx, **params):
        return pages.overview_fragment(ctx, _overview(self.deps))


class ServerPage(_Page):
    active = "overview"

    def fragment(self, req, ctx, server_id: str = "", **params):
        view = _server(self.deps, server_id)
        if view is None:
            return pages.not_found_fragment(ctx, server_id)
        return pages.detail_fragment(ctx, view)


class RoutingPage(_Page):
    title, active = "ALB routing", "routing"

    def fragment(self, req, ctx, **params):
        d = self.deps
        return pages.routing_fragment(
            ctx, views.routing_view(d.control.state(), simulated_default=d.settings.routing_simulated)
        )


class LitellmPage(_Page):
    title, active = "LiteLLM", "litellm"

    def fragment(self, req, ctx, **params):
        d = self.deps
        return pages.litellm_fragment(
            ctx,
            views.litellm(
                d.control.state(),
                base_url=d.settings.service.public_base_url,
                tokens=d.settings.bridge_tokens,
            ),
        )


class NodesPage(_Page):
    title, active = "Nodes", "nodes"

    def fragment(self, req, ctx, **params):
        return pages.nodes_fragment(ctx, views.nodes_view(self.deps.control.state()))


class ApiNodes:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        resp.media = views.nodes_view(self.deps.control.state())


def _overview(d: Deps) -> dict:
    return traffic_view.with_overview(views.overview(d.control.state(), d.clock()), d.control.traffic(None, False))


def _server(d: Deps, server_id: str) -> Optional[dict]:
    """A server's page (None: not in the state): its traffic is asked for only then."""
    view = views.server_detail(d.control.state(), server_id, d.clock())
    return None if view is None else traffic_view.with_detail(view, d.control.traffic(server_id, True))


class RootRedirect:
    def __init__(self, target: str) -> None:
        self.target = target

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(self.target)


# ---------------------------------------------------------------------------- api


class ApiOverview:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        d = self.deps
        resp.media = dict(
            _overview(d),
            default_password=d.settings.default_password,
            mcp_auth_warning=views.mcp_auth_warning(d.settings),
        )


class ApiServers:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        view = _overview(self.deps)
        resp.media = {"servers": view["servers"], "scheduler": view["scheduler"], "traffic": view["traffic"]}


class ApiServer:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp, server_id: str):
        view = _server(self.deps, server_id)
        if view is None:
            raise falcon.HTTPNotFound(
                title="No such server", description=f"no server {server_id!r} in the current state"
            )
        resp.media = view


class ApiRouting:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        d = self.deps
        resp.media = views.routing_view(d.control.state(), simulated_default=d.settings.routing_simulated)


class ApiLitellm:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        d = self.deps
        resp.media = views.litellm(
            d.control.state(),
            base_url=d.settings.service.public_base_url,
            tokens=d.settings.bridge_tokens,
        )


class ApiSession:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def on_get(self, req, resp):
        s = req.context.session
        resp.media = {
            "username": s.username,
            "csrf_token": s.csrf_token,
            "expires": s.expires,
            "default_password": self.deps.settings.default_password,
        }


# ------------------------------------------------------------------ login, logout


class _LoginBase:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def attempt(self, req: falcon.Request, username: str, password: str) -> tuple[Optional[str], Optional[float]]:
        """(cookie value, None) on success, (None, retry_after) when refused."""
        d, address = self.deps, self.deps.client(req)
        wait = d.limiter.retry_after(address)
        if wait > 0:
            log.warning("login from %s refused: too many failed logins", address)
            dashboard_metrics.LOGINS.labels("throttled").inc()
            return None, wait
        want = d.settings.dashboard
        if not credentials_match(username, password, want.username, want.password):
            d.limiter.failed(address)
            log.warning("failed login from %s", address)
            dashboard_metrics.LOGINS.labels("failed").inc()
            return None, None
        d.limiter.succeeded(address)
        dashboard_metrics.LOGINS.labels("ok").inc()
        cookie, _ = d.sessions.create(want.username)
        log.info("login of %s from %s", want.username, address)
        return cookie, None

    def start_session(self, req: falcon.Request, resp: falcon.Response, cookie: str) -> None:
        d = self.deps
        d.set_cookie(req, resp, SESSION_COOKIE, cookie, int(d.sessions.lifetime), d.paths.cookie_path)


class LoginPage(_LoginBase):
    def _render(
        self, req, resp, *, error: Optional[str], status=falcon.HTTP_200, username: str = "", next_path: str = ""
    ) -> None:
        d = self.deps
        token = req.get_cookie_values(LOGIN_COOKIE)
        token = token[0] if token and len(token[0]) == 43 else new_token()
        d.set_cookie(req, resp, LOGIN_COOKIE, token, LOGIN_COOKIE_SECONDS, d.paths.login)
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = pages.login_page(
            d.paths.prefix,
            token=token,
            error=error,
            next_path=next_path or d.paths.home,
            username=username,
            default_password=d.settings.default_password,
        )

    def on_get(self, req, resp):
        next_path = self.deps.paths.safe_next(req.get_param("next"))
        if req.context.session is not None:
            raise falcon.HTTPSeeOther(next_path)
        self._render(req, resp, error=None, next_path=next_path)

    def on_post(self, req, resp):
        d = self.deps
        form = _form(req)
        next_path = d.paths.safe_next(form.get("next"))
        cookie_token = (req.get_cookie_values(LOGIN_COOKIE) or [None])[0]
        if not tokens_equal(form.get(CSRF_FIELD), cookie_token):
            log.warning("login from %s refused: login form token missing or wrong", d.client(req))
            self._render(
                req,
                resp,
                error="The login form expired. Please try again.",
                status=falcon.HTTP_403,
                next_path=next_path,
            )
            return
        username = form.get("username", "")
        cookie, wait = self.attempt(req, username, form.get("password", ""))
        if cookie is None:
            if wait is not None:
                resp.set_header("Retry-After", str(math.ceil(wait)))
                self._render(
                    req,
                    resp,
                    status=falcon.HTTP_429,
                    username=username,
                    next_path=next_path,
                    error=f"Too many failed logins. Try again in {math.ceil(wait)} s.",
                )
            else:
                self._render(
                    req,
                    resp,
                    status=falcon.HTTP_401,
                    username=username,
                    next_path=next_path,
                    error="Wrong username or password.",
                )
            return
        self.start_session(req, resp, cookie)
        d.clear_cookie(req, resp, LOGIN_COOKIE, d.paths.login)
        _redirect(resp, next_path)


class ApiLogin(_LoginBase):
    def on_post(self, req, resp):
        body = _json(req)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise falcon.HTTPBadRequest(title="username and password (strings) are required")
        cookie, wait = self.attempt(req, username, password)
        if cookie is None:
            if wait is not None:
                raise falcon.HTTPTooManyRequests(
                    title="Too many failed logins",
                    retry_after=math.ceil(wait),
                    description=f"try again in {math.ceil(wait)} s",
                )
            raise falcon.HTTPUnauthorized(
                title="Wrong username or password", headers={"WWW-Authenticate": 'Cookie realm="mcp-orchestrator"'}
            )
        self.start_session(req, resp, cookie)
        session = self.deps.sessions.get(cookie)
        resp.media = {
            "ok": True,
            "username": session.username,
            "csrf_token": session.csrf_token,
            "expires": session.expires,
        }


class Logout:
    def __init__(self, deps: Deps, *, api: bool) -> None:
        self.deps = deps
        self.api = api

    def on_post(self, req, resp):
        d = self.deps
        for cookie in req.get_cookie_values(SESSION_COOKIE) or []:
            d.sessions.end(cookie)
        d.clear_cookie(req, resp, SESSION_COOKIE, d.paths.cookie_path)
        log.info("logout of %s from %s", req.context.session.username, d.client(req))
        if self.api:
            resp.media = {"ok": True}
            return
        _redirect(resp, d.paths.login)


# ------------------------------------------------------------------------ actions


class Actions:
    """POST an action: a form (303 back, with a flash message) or JSON (the result)."""

    def __init__(self, deps: Deps, *, api: bool) -> None:
        self.deps = deps
        self.api = api

    def on_post(self, req, resp):
        d = self.deps
        if self.api:
            body = _json(req)
        else:
            body = _form(req)
        action = body.get("action")
        server_id = body.get("server_id") or None
        wants_json = self.api or "application/json" in (req.get_header("Accept") or "")
        if not isinstance(action, str) or not (server_id is None or isinstance(server_id, str)):
            problem = "action (a string) and server_id (a string, for start/stop/restart) expected"
        else:
            problem = check_action(action, server_id)
        if problem:
            result = ActionResult(False, problem, "invalid_argument")
        else:
            result = d.control.act(action, server_id)
            log.info(
                "action %s %s by %s: %s%s",
                action,
                server_id or "(all)",
                req.context.session.username,
                "" if result.ok else "failed: ",
                result.message,
            )
        dashboard_metrics.action(action, result.ok, result.code)
        if wants_json:
            resp.status = (
                falcon.HTTP_200 if result.ok else falcon.code_to_http_status(ACTION_STATUS.get(result.code or "", 502))
            )
            resp.media = {
                "ok": result.ok,
                "message": result.message,
                "code": result.code,
                "action": action if isinstance(action, str) else None,
                "server_id": server_id if isinstance(server_id, str) else None,
            }
            return
        d.sessions.add_flash(req.context.session, "ok" if result.ok else "error", result.message)
        _redirect(resp, d.paths.safe_next(body.get("return_to")))
