"""Every route of the dashboard app under falcon's TestClient, with a fake Control."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote

import pytest
from falcon import testing

from services.dashboard.app import create_app
from services.dashboard.auth import SESSION_COOKIE, LoginLimiter
from services.dashboard.control import ActionResult
from services.dashboard.middleware import SECURITY_HEADERS
from services.dashboard.state import SchedulerLinkStatus
from tests.dashboard.support import CANARY, PASSWORD, XSS_ID, WebUser, make_settings

P = "/monitor"
PAGES = [P, f"{P}/", f"{P}/servers/time", f"{P}/routing", f"{P}/nodes", f"{P}/litellm"]
APIS = [
    f"{P}/api/overview",
    f"{P}/api/servers",
    f"{P}/api/servers/time",
    f"{P}/api/routing",
    f"{P}/api/nodes",
    f"{P}/api/litellm",
    f"{P}/api/session",
]
POSTS = [f"{P}/actions", f"{P}/logout"]
API_POSTS = [f"{P}/api/actions", f"{P}/api/logout"]
XSS_PATH = f"{P}/servers/{quote(XSS_ID, safe='')}"


def assert_security_headers(result: testing.Result) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert result.headers.get(name) == value, name
    csp = result.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


# ------------------------------------------------------------------ no session


@pytest.mark.parametrize("path", PAGES)
def test_pages_without_session_redirect_to_login(user, path):
    result = user.get(path)
    assert result.status_code == 303
    assert result.headers["location"] == f"{P}/login?next={quote(path.rstrip('/'), safe='')}"
    assert_security_headers(result)


@pytest.mark.parametrize("path", APIS)
def test_api_without_session_is_401(user, path):
    result = user.get(path)
    assert result.status_code == 401
    assert result.json["title"] == "Login required"
    assert_security_headers(result)


@pytest.mark.parametrize("path", POSTS)
def test_posts_without_session_redirect_to_login(user, path):
    result = user.post(path, {"action": "sync"})
    assert result.status_code == 303
    assert result.headers["location"] == f"{P}/login"


@pytest.mark.parametrize("path", API_POSTS)
def test_api_posts_without_session_are_401(user, path, control):
    result = user.post(path, json={"action": "sync"})
    assert result.status_code == 401
    assert control.calls == []


def test_fragment_without_session_redirects_to_login(user):
    result = user.get(P, params={"fragment": "1"})
    assert result.status_code == 303 and result.headers["location"] == f"{P}/login"


def test_a_forged_or_unsigned_session_cookie_is_no_session(user, logged_in):
    sid, expires, _ = logged_in.cookies[SESSION_COOKIE].split(".")
    for forged in (f"{sid}.{expires}.AAAA", f"{sid}.{int(expires) + 999}.x", sid, "a.b.c.d"):
        user.cookies = {SESSION_COOKIE: forged}
        assert user.get(f"{P}/api/overview").status_code == 401


def test_login_page_and_static_files_need_no_session(user):
    page = user.get(f"{P}/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert_security_headers(page)
    for name, kind in (("dashboard.css", "text/css"), ("dashboard.js", "javascript")):
        result = user.get(f"{P}/static/{name}")
        assert result.status_code == 200 and kind in result.headers["content-type"]
        assert_security_headers(result)


@pytest.mark.parametrize(
    "path",
    [
        f"{P}/static/../api/overview",
        f"{P}/static/%2e%2e/api/overview",
        f"{P}/static/..%2fapi/overview",
        f"{P}/static/../../etc/passwd",
    ],
)
def test_static_files_do_not_lead_elsewhere(user, path):
    assert user.get(path).status_code == 404


def test_root_redirects_to_the_dashboard_and_other_paths_are_404(user):
    assert user.get("/").headers["location"] == f"{P}/"
    missing = user.get("/elsewhere")
    assert missing.status_code == 404
    assert_security_headers(missing)


# ------------------------------------------------------------------------ login


def test_login_sets_a_signed_httponly_strict_cookie_with_expiry(user):
    result = user.login_form()
    assert result.status_code == 303 and result.headers["location"] == f"{P}/"
    cookie = result.cookies[SESSION_COOKIE]
    assert cookie.http_only and cookie.same_site == "Strict" and cookie.path == P
    assert cookie.max_age == 480 * 60
    assert not cookie.secure  # plain http here; https sets Secure
    assert re.fullmatch(r"[\w-]{43}\.\d+\.[\w-]{43}", cookie.value)


def test_login_behind_https_sets_a_secure_cookie(user):
    page = user.get(f"{P}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    result = user.post(
        f"{P}/login",
        {"csrf_token": token, "username": "admin", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert result.cookies[SESSION_COOKIE].secure


@pytest.mark.parametrize(
    "username,password", [("admin", "wrong"), ("root", PASSWORD), ("admin", ""), ("admin", PASSWORD + " ")]
)
def test_wrong_credentials_are_refused(user, username, password):
    result = user.login_form(username=username, password=password)
    assert result.status_code == 401
    assert "Wrong username or password." in result.text
    assert SESSION_COOKIE not in user.cookies
    assert user.get(f"{P}/api/overview").status_code == 401


def test_login_goes_back_to_the_page_asked_for_but_never_elsewhere(user):
    assert user.login_form(next_path=f"{P}/routing").headers["location"] == f"{P}/routing"
    for bad in (
        "https://evil.example/",
        "//evil.example/x",
        "/elsewhere",
        f"{P}/api/overview",
        "/\\evil",
        f"{P}/login",
    ):
        other = WebUser(user.client)
        assert other.login_form(next_path=bad).headers["location"] == f"{P}/", bad


def test_login_without_the_form_token_is_403(user):
    user.get(f"{P}/login")
    result = user.post(f"{P}/login", {"username": "admin", "password": PASSWORD})
    assert result.status_code == 403 and SESSION_COOKIE not in user.cookies
    result = user.post(f"{P}/login", {"csrf_token": "x" * 43, "username": "admin", "password": PASSWORD})
    assert result.status_code == 403 and SESSION_COOKIE not in user.cookies


def test_rate_limit_per_address(user, client):
    for _ in range(5):
        assert user.login_form(password="guess").status_code == 401
    refused = user.login_form()  # even the right password now waits
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many failed logins" in refused.text
    api = user.post(f"{P}/api/login", json={"username": "admin", "password": PASSWORD})
    assert api.status_code == 429
    other = WebUser(client)
    other.remote_addr = "10.0.0.2"
    assert other.login_form().status_code == 303


def test_rate_limit_global(control):
    settings = make_settings(login_failures_per_address=10, login_failures_total=3)
    client = testing.TestClient(create_app(settings, control))
    for n in range(3):
        attacker = WebUser(client)
        attacker.remote_addr = f"192.0.2.{n}"
        assert attacker.login_form(password="guess").status_code == 401
    legit = WebUser(client)
    legit.remote_addr = "10.9.9.9"
    assert legit.login_form().status_code == 429


def test_a_success_clears_the_address_failures(settings, control):
    limiter = LoginLimiter(3, 100, 300)
    client = testing.TestClient(create_app(settings, control, limiter=limiter))
    u = WebUser(client)
    for _ in range(2):
        u.login_form(password="guess")
    assert u.login_form().status_code == 303
    u = WebUser(client)  # same address, no session
    for _ in range(2):
        assert u.login_form(password="guess").status_code == 401


def test_login_limits_count_the_client_a_trusted_proxy_names(settings, control):
    behind = dataclasses.replace(settings, service=dataclasses.replace(settings.service, trusted_proxies="10.0.0.0/24"))
    client = testing.TestClient(create_app(behind, control, limiter=LoginLimiter(2, 100, 300)))
    alb = WebUser(client)  # every request arrives from the load balancer, 10.0.0.1

    def login(forwarded_for: str, password: str = "guess") -> int:
        return alb.post(
            f"{P}/api/login",
            json={"username": "admin", "password": password},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code

    assert [login("203.0.113.7"), login("203.0.113.7")] == [401, 401]
    assert login("203.0.113.7", PASSWORD) == 429
    assert login("1.2.3.4, 203.0.113.7") == 429  # a forged hop in front changes nothing
    assert login("198.51.100.9", PASSWORD) == 200
    outsider = WebUser(client)
    outsider.remote_addr = "192.0.2.1"  # not a trusted proxy: its header is ignored
    for _ in range(2):
        outsider.post(
            f"{P}/api/login",
            json={"username": "admin", "password": "guess"},
            headers={"X-Forwarded-For": "198.51.100.77"},
        )
    assert (
        outsider.post(
            f"{P}/api/login",
            json={"username": "admin", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.78"},
        ).status_code
        == 429
    )


def test_deep_json_is_a_400_on_every_json_endpoint(logged_in):
    deep = "[" * 5000 + "]" * 5000
    for path in (f"{P}/api/login", f"{P}/api/actions"):
        result = logged_in.client.simulate_post(
            path,
            body=deep,
            headers=logged_in._headers({"Content-Type": "application/json", "X-CSRF-Token": logged_in.csrf}),
        )
        assert result.status_code == 400, path
        assert result.json["description"] == "the body is not valid JSON: nested too deeply"
    not_utf8 = logged_in.client.simulate_post(
        f"{P}/api/login", body=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert not_utf8.json["description"] == "the body is not valid JSON: it is not UTF-8"


def test_an_unexpected_error_is_a_500_logged_through_logging(logged_in, control, caplog, capsys):
    def broken():
        raise RuntimeError("the state is broken")

    control.state = broken
    with caplog.at_level("ERROR", logger="dashboard"):
        result = logged_in.get(f"{P}/api/overview")
    assert result.status_code == 500 and result.json["title"] == "500 Internal Server Error"
    record = next(r for r in caplog.records if r.name == "dashboard")
    assert record.getMessage() == "GET /monitor/api/overview failed" and record.exc_info
    assert "Traceback" not in capsys.readouterr().err  # falcon's own handler prints it


def test_api_login_returns_a_csrf_token_and_accepts_json_only(user, control):
    assert user.post(f"{P}/api/login", {"username": "admin", "password": PASSWORD}).status_code == 415
    bad = user.post(f"{P}/api/login", json={"username": "admin", "password": "nope"})
    assert bad.status_code == 401
    result = user.post(f"{P}/api/login", json={"username": "admin", "password": PASSWORD})
    assert result.status_code == 200 and result.json["ok"]
    token = result.json["csrf_token"]
    acted = user.post(f"{P}/api/actions", json={"action": "sync"}, headers={"X-CSRF-Token": token})
    assert acted.status_code == 200 and control.calls == [("sync", None)]


def test_logout_ends_the_session(logged_in):
    old = dict(logged_in.cookies)
    assert logged_in.post(f"{P}/logout", {"csrf_token": logged_in.csrf}).headers["location"] == f"{P}/login"
    assert SESSION_COOKIE not in logged_in.cookies
    logged_in.cookies = old  # the old cookie is dead server side too
    assert logged_in.get(f"{P}/api/overview").status_code == 401


def test_api_logout(logged_in):
    result = logged_in.post(f"{P}/api/logout", json={}, headers={"X-CSRF-Token": logged_in.csrf})
    assert result.status_code == 200 and result.json == {"ok": True}
    assert logged_in.get(f"{P}/api/overview").status_code == 401


# ------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_state_changing_requests_need_the_csrf_token(logged_in, control, token):
    form = {"action": "stop", "server_id": "time"}
    headers = {}
    if token is not None:
        form["csrf_token"] = token
        headers["X-CSRF-Token"] = token
    assert logged_in.post(f"{P}/actions", form).status_code == 403
    assert logged_in.post(f"{P}/api/actions", json={"action": "sync"}, headers=headers).status_code == 403
    assert logged_in.post(f"{P}/logout", form).status_code == 403
    assert control.calls == []
    assert logged_in.get(f"{P}/api/overview").status_code == 200  # still logged in


def test_csrf_token_of_another_session_is_refused(client, control):
    a, b = WebUser(client).login(), WebUser(client).login()
    assert a.csrf != b.csrf
    result = a.post(f"{P}/actions", {"csrf_token": b.csrf, "action": "sync"})
    assert result.status_code == 403 and control.calls == []


# ----------------------------------------------------------------------- views


@pytest.mark.parametrize("path", PAGES + [XSS_PATH])
def test_pages_render_with_a_session(logged_in, path):
    result = logged_in.get(path)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/html")
    assert result.headers["Cache-Control"] == "no-store"
    assert_security_headers(result)
    assert f'data-csrf="{logged_in.csrf}"' in result.text


@pytest.mark.parametrize("path", APIS)
def test_api_twins_answer_json(logged_in, path):
    result = logged_in.get(path)
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("application/json")
    assert_security_headers(result)


def test_overview_shows_every_server_state_and_counts(logged_in):
    text = logged_in.get(f"{P}/").text
    assert '<b id="count-total">7</b>' in text and '<b id="count-running">2</b>' in text
    for label in ("running", "crash looping", "stopped", "disabled", "pending", "error"):
        assert f">{label}</span>" in text, label
    data = logged_in.get(f"{P}/api/overview").json
    assert data["counts"] == {
        "total": 7,
        "running": 2,
        "starting": 1,
        "stopped": 1,
        "crash-looping": 1,
        "error": 1,
        "disabled": 1,
        "unknown": 0,
    }
    rows = {r["server_id"]: r for r in data["servers"]}
    assert rows["time"]["route_health"] == "healthy" and rows["time"]["host_port"] == 8001
    assert rows["time"]["uptime"] and rows["loop"]["exit_code"] == 3
    assert rows["new"]["image"] is None  # missing, shown as a dash
    assert data["config"]["ok"] is False and data["default_password"] is False


def test_config_errors_are_at_the_top_of_the_overview(logged_in):
    text = logged_in.get(f"{P}/").text
    assert 'id="config-errors"' in text
    assert text.index('id="config-errors"') < text.index('class="servers"')


def test_hostile_ids_images_and_stderr_are_escaped(logged_in):
    pages = [logged_in.get(p).text for p in PAGES + [XSS_PATH]]
    pages += [logged_in.get(p, params={"fragment": "1"}).text for p in PAGES + [XSS_PATH]]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
    overview, detail = pages[0], pages[len(PAGES)]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview
    assert "&lt;img src=x onerror=alert(1)&gt;" in overview
    assert "stderr &lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "img/&lt;script&gt;" in detail
    assert f'href="{XSS_PATH}"' in overview
    assert f'data-live="{XSS_PATH}?fragment=1"' in detail  # the live URL stays one path


def test_the_canary_secret_never_appears_and_env_names_do(logged_in):
    paths = PAGES + APIS + [XSS_PATH, f"{P}/login"]
    texts = [logged_in.get(p).text for p in paths]
    texts += [logged_in.get(p, params={"fragment": "1"}).text for p in PAGES]
    texts.append(
        logged_in.post(
            f"{P}/api/actions", json={"action": "stop", "server_id": "time"}, headers={"X-CSRF-Token": logged_in.csrf}
        ).text
    )
    for path, text in zip(paths, texts):
        assert CANARY not in text, path
        assert PASSWORD not in text, path
    detail = logged_in.get(f"{P}/api/servers/time").json
    assert detail["env_names"] == ["API_KEY", "REGION"]
    assert "more" not in detail and "future_field" not in str(detail)  # unknown fields are dropped


def test_server_detail_shows_container_facts(logged_in):
    data = logged_in.get(f"{P}/api/servers/time").json
    assert data["container_id"] == "c0ffee" * 10
    assert data["mounts"] == ["/srv/data:/data:ro"]
    assert data["stderr_tail"] == ["starting", "ready"]
    assert data["url"] == "http://127.0.0.1:8001/mcp/time/mcp"  # the scheduler's
    assert data["route"]["path_patterns"] == ["/mcp/time", "/mcp/time/*"]  # as the ALB has them
    assert data["route"]["target_group"] == "mcpo-time-abc"
    assert data["events"][0]["message"].startswith("time started")
    html = logged_in.get(f"{P}/servers/time").text
    assert 'id="stderr-tail">starting\nready</pre>' in html
    assert logged_in.get(f"{P}/api/servers/nope").status_code == 404
    assert "No server <code>nope</code>" in logged_in.get(f"{P}/servers/nope").text


def test_routing_view(logged_in):
    data = logged_in.get(f"{P}/api/routing").json
    assert data["simulated"] is True and data["listener"]["port"] == 80
    assert data["rules"][0]["target_groups"] == ["mcpo-time-abc"]
    assert data["rules"][1]["owned"] is False
    assert data["errors"] == [
        {"server_id": "loop", "code": "quota_exceeded", "message": "100 target groups per ALB reached", "quota": True}
    ]
    html = logged_in.get(f"{P}/routing").text
    assert 'id="simulated-banner"' in html and 'id="routing-errors"' in html
    assert "/mcp/time/*" in html and "not ours (left alone)" in html


def test_litellm_snippet(logged_in):
    data = logged_in.get(f"{P}/api/litellm").json
    assert data["yaml"].startswith("mcp_servers:\n")
    assert "# server id <img" not in logged_in.get(f"{P}/litellm").text  # escaped too
    assert '  time:\n    url: "http://127.0.0.1:8001/mcp/time/mcp"\n    transport: "http"\n' in data["yaml"]
    names = [s["name"] for s in data["servers"]]
    assert "off" not in names and all("-" not in n for n in names)
    assert "&quot;http&quot;" in logged_in.get(f"{P}/litellm").text


def test_default_password_warning_on_every_page(control):
    client = testing.TestClient(create_app(make_settings(password="changeme"), control))
    u = WebUser(client)
    assert "still the default <code>changeme</code>" in u.get(f"{P}/login").text
    u.login_form(password="changeme")
    for path in PAGES:
        assert "still the default <code>changeme</code>" in u.get(path).text, path
    assert u.get(f"{P}/api/overview").json["default_password"] is True


def test_no_default_password_warning_otherwise(logged_in):
    assert "changeme" not in logged_in.get(f"{P}/").text


@pytest.mark.parametrize(
    "bridge, level",
    [({"auth": "none"}, "danger"), ({}, "info"), ({"tokens": "a-token-of-32-characters-0123456"}, None)],
)
def test_every_page_says_when_mcp_is_not_authenticated_by_us(control, bridge, level):
    base = make_settings()
    settings = dataclasses.replace(base, bridge=dataclasses.replace(base.bridge, **bridge))
    u = WebUser(testing.TestClient(create_app(settings, control)))
    assert "mcp-auth-banner" not in u.get(f"{P}/login").text  # nothing told before login
    u.login()
    for path in PAGES:
        page = u.get(path).text
        assert ('id="mcp-auth-banner"' in page) == (level is not None), path
        if level:
            assert f'<div class="banner {level}" id="mcp-auth-banner"' in page
    warning = u.get(f"{P}/api/overview").json["mcp_auth_warning"]
    assert (warning and warning["level"]) == level


def test_scheduler_unavailable_shows_the_last_known_state(client, control):
    control.link = SchedulerLinkStatus(available=False, synced_once=True, last_heard=1.7e9)
    u = WebUser(client).login()
    text = u.get(f"{P}/").text
    assert "Scheduler unavailable" in text and 'data-server="time"' in text
    assert u.get(f"{P}/api/overview").json["scheduler"]["available"] is False


def test_fragment_has_an_etag_and_answers_304_when_unchanged(logged_in, control):
    first = logged_in.get(f"{P}/", params={"fragment": "1"})
    assert first.status_code == 200 and "<html" not in first.text and 'class="servers"' in first.text
    etag = first.headers["ETag"]
    again = logged_in.get(f"{P}/", params={"fragment": "1"}, headers={"If-None-Match": etag})
    assert again.status_code == 304
    (halt,) = [s for s in control.raw["servers"] if s["server_id"] == "halt"]
    halt["status"] = "running"
    changed = logged_in.get(f"{P}/", params={"fragment": "1"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


# ---------------------------------------------------------------------- actions


def test_action_form_posts_redirect_back_with_a_flash(logged_in, control):
    result = logged_in.post(
        f"{P}/actions",
        {"csrf_token": logged_in.csrf, "action": "restart", "server_id": "time", "return_to": f"{P}/servers/time"},
    )
    assert result.status_code == 303 and result.headers["location"] == f"{P}/servers/time"
    assert control.calls == [("restart", "time")]
    page = logged_in.get(f"{P}/servers/time").text
    assert '<div class="toast ok">queued</div>' in page
    assert "toast" not in logged_in.get(f"{P}/servers/time").text.split("<main")[0]  # once


def test_action_return_to_stays_inside_the_dashboard(logged_in):
    result = logged_in.post(
        f"{P}/actions", {"csrf_token": logged_in.csrf, "action": "sync", "return_to": "https://evil.example/"}
    )
    assert result.headers["location"] == f"{P}/"


@pytest.mark.parametrize(
    "action,server_id", [("start", "time"), ("stop", "time"), ("restart", "time"), ("sync", None), ("reload", None)]
)
def test_every_action_reaches_the_scheduler(logged_in, control, action, server_id):
    body = {"action": action, **({"server_id": server_id} if server_id else {})}
    result = logged_in.post(f"{P}/api/actions", json=body, headers={"X-CSRF-Token": logged_in.csrf})
    assert result.status_code == 200
    assert result.json == {"ok": True, "message": "queued", "code": None, "action": action, "server_id": server_id}
    assert control.calls == [(action, server_id)]


def test_form_actions_answer_json_to_the_page_script(logged_in, control):
    result = logged_in.post(
        f"{P}/actions",
        {"action": "stop", "server_id": "time"},
        headers={"Accept": "application/json", "X-CSRF-Token": logged_in.csrf},
    )
    assert result.status_code == 200 and result.json["ok"] is True


@pytest.mark.parametrize(
    "body", [{"action": "explode"}, {"action": "stop"}, {"action": "sync", "server_id": "time"}, {"action": 3}, {}]
)
def test_invalid_actions_are_400_and_not_sent(logged_in, control, body):
    result = logged_in.post(f"{P}/api/actions", json=body, headers={"X-CSRF-Token": logged_in.csrf})
    assert result.status_code == 400 and result.json["ok"] is False
    assert control.calls == []


def test_a_failed_action_shows_its_reason(logged_in, control):
    control.result = ActionResult(False, "stop time not sent: the scheduler does not answer", "unavailable")
    result = logged_in.post(
        f"{P}/api/actions", json={"action": "stop", "server_id": "time"}, headers={"X-CSRF-Token": logged_in.csrf}
    )
    assert result.status_code == 503 and "does not answer" in result.json["message"]
    logged_in.post(f"{P}/actions", {"csrf_token": logged_in.csrf, "action": "stop", "server_id": "time"})
    assert '<div class="toast error">stop time not sent' in logged_in.get(f"{P}/").text


# ------------------------------------------------------------------ other paths


def test_dashboard_at_the_root_path(control):
    client = testing.TestClient(create_app(make_settings(path="/"), control))
    u = WebUser(client, prefix="")
    assert u.get("/").headers["location"] == "/login?next=%2F"
    u.login()
    assert u.get("/").status_code == 200
    assert u.get("/api/overview").status_code == 200
    assert u.get("/static/dashboard.css").status_code == 200


def test_two_hundred_servers(client, control):
    control.raw = {
        "servers": [
            {"server_id": f"s{i:03d}", "status": "running", "host_port": 8000 + i, "image": "busybox"}
            for i in range(200)
        ]
    }
    u = WebUser(client).login()
    text = u.get(f"{P}/").text
    assert text.count('<tr data-server="') == 200
    assert u.get(f"{P}/api/overview").json["counts"]["running"] == 200


def test_the_nodes_of_a_swarm_and_the_replicas_of_each_server(control, logged_in):
    from common.protocol import ClusterView, NodeView, to_plain
    from tests.dashboard.support import XSS

    one_host = logged_in.get(f"{P}/nodes").text
    assert "engine = docker" in one_host and logged_in.get(f"{P}/api/nodes").json["nodes"] == []
    control.raw["cluster"] = to_plain(
        ClusterView(
            engine="swarm",
            nodes=[
                NodeView(
                    "n1",
                    hostname="sw1",
                    zone="a",
                    role="manager",
                    leader=True,
                    state="ready",
                    availability="active",
                    reachable=True,
                    instance_id="i-1",
                    serves=["time"],
                ),
                NodeView(
                    "n2",
                    hostname=XSS,
                    zone="b",
                    role="worker",
                    state="down",
                    availability="drain",
                    reachable=False,
                    error="no answer",
                ),
            ],
        )
    )
    control.raw["servers"][0].update(replicas=2, replicas_running=1, nodes=["sw1"], served_by=["sw1"])
    page = logged_in.get(f"{P}/nodes").text
    assert "sw1 <small>(leader)</small>" in page and "i-1" in page and "down, drain" in page and "no answer" in page
    assert XSS not in page  # escaped like everything else
    nodes = logged_in.get(f"{P}/api/nodes").json
    assert nodes["engine"] == "swarm" and [n["hostname"] for n in nodes["nodes"]] == ["sw1", XSS]
    assert "1/2 replicas on sw1" in logged_in.get(f"{P}/").text
    row = next(r for r in logged_in.get(f"{P}/api/overview").json["servers"] if r["server_id"] == "time")
    assert (row["replicas"], row["replicas_running"], row["served_by"]) == (2, 1, ["sw1"])


def test_a_standby_managers_dashboard_says_where_the_active_control_plane_is(control, logged_in):
    from common.protocol import ClusterView, ControlView, NodeView, to_plain

    nodes = [NodeView("n1", hostname="sw1", role="manager", leader=True), NodeView("n2", hostname="sw2")]
    control.raw["cluster"] = to_plain(
        ClusterView(
            engine="swarm",
            nodes=nodes,
            control=ControlView(role="standby", hostname="sw2", active_node="sw1", since=1.7e9, reason="held"),
        )
    )
    page = logged_in.get(f"{P}/nodes").text
    assert (
        "<strong>Standby</strong>: the control plane of this manager (sw2) stands by; the active one is on sw1" in page
    )
    assert 'sw1 <small>(leader)</small> <small class="active-control">(control plane)</small>' in page
    assert "Standby" in logged_in.get(f"{P}/").text  # on every page, with the scheduler's banners
    view = logged_in.get(f"{P}/api/nodes").json["scheduler"]["control"]
    assert (view["role"], view["hostname"], view["active_node"]) == ("standby", "sw2", "sw1")
    control.raw["cluster"]["control"]["role"] = "active"
    control.raw["cluster"]["control"]["active_node"] = "sw2"
    assert "control-banner" not in logged_in.get(f"{P}/nodes").text
    control.raw["cluster"] = to_plain(ClusterView())  # one host: nothing to say
    assert logged_in.get(f"{P}/api/nodes").json["scheduler"]["control"] is None
