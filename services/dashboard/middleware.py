"""Every request passes here: security headers, the session check and the CSRF check.

Pages without a session are redirected to the login page (303); API calls get 401.
State-changing requests (anything but GET/HEAD/OPTIONS) need the session's CSRF token
in the `X-CSRF-Token` header or the `csrf_token` form field; the login endpoints check
their own token (there is no session yet).
"""

from __future__ import annotations

import logging
from typing import Any, Optional
from urllib.parse import quote

import falcon

from services.dashboard.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, SessionStore, tokens_equal

log = logging.getLogger("dashboard")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), clipboard-read=()",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Paths:
    """The dashboard's URL layout under its prefix (`[dashboard] path`)."""

    def __init__(self, path: str) -> None:
        self.prefix = "" if path == "/" else path.rstrip("/")
        self.home = self.prefix + "/"
        self.login = self.prefix + "/login"
        self.api_login = self.prefix + "/api/login"
        self.static = self.prefix + "/static"
        self.api = self.prefix + "/api"
        self.cookie_path = self.prefix or "/"

    def inside(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def public(self, path: str) -> bool:
        return path in (self.login, self.api_login) or path.startswith(self.static + "/")

    def is_api(self, path: str) -> bool:
        return path == self.api or path.startswith(self.api + "/")

    def safe_next(self, target: Optional[str]) -> str:
        """`target` if it is a page of ours to go back to after login, else the overview."""
        if (
            not target
            or not isinstance(target, str)
            or not target.startswith("/")
            or target.startswith("//")
            or "\\" in target
            or len(target) > 2000
            or any(ord(c) < 0x20 for c in target)
        ):
            return self.home
        path = target.split("?", 1)[0]
        if not self.inside(path) or self.public(path) or self.is_api(path):
            return self.home
        return target


class SecurityHeaders:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool) -> None:
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        if req.path.startswith(self.paths.static + "/"):
            resp.set_header("Cache-Control", "no-cache")  # revalidate: files change on upgrade
        else:
            resp.set_header("Cache-Control", "no-store")


class RequireSession:
    def __init__(self, paths: Paths, sessions: SessionStore) -> None:
        self.paths = paths
        self.sessions = sessions

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.paths = self.paths
        cookies = req.get_cookie_values(SESSION_COOKIE) or []
        req.context.session = next((s for s in map(self.sessions.get, cookies) if s), None)
        path = req.path
        if not self.paths.inside(path) or self.paths.public(path):
            return
        session = req.context.session
        if session is None:
            if self.paths.is_api(path):
                raise falcon.HTTPUnauthorized(
                    title="Login required",
                    description=f"log in first: POST {self.paths.api_login} with JSON "
                    f'{{"username": ..., "password": ...}}',
                    headers={"WWW-Authenticate": 'Cookie realm="mcp-orchestrator"'},
                )
            target = path + (f"?{req.query_string}" if req.query_string else "")
            if req.method in SAFE_METHODS and not req.get_param_as_bool("fragment"):
                raise falcon.HTTPSeeOther(f"{self.paths.login}?next={quote(target, safe='')}")
            raise falcon.HTTPSeeOther(self.paths.login)
        if req.method not in SAFE_METHODS:
            if not tokens_equal(_csrf_token(req), session.csrf_token):
                log.warning("refused %s %s from %s: CSRF token missing or wrong", req.method, path, req.remote_addr)
                raise falcon.HTTPForbidden(
                    title="CSRF token missing or wrong", description="Reload the page and try again."
                )


def _csrf_token(req: falcon.Request) -> Optional[str]:
    header = req.get_header(CSRF_HEADER)
    if header:
        return header
    if (req.content_type or "").startswith("application/x-www-form-urlencoded"):
        try:
            form = req.get_media(default_when_empty={})
        except falcon.HTTPError:
            return None
        value = form.get(CSRF_FIELD) if isinstance(form, dict) else None
        return value if isinstance(value, str) else None
    return None
