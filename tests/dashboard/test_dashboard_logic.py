"""Pure parts of the dashboard: sessions, the login limiter, the state copy, the views."""

from __future__ import annotations

import pytest

from common.connection_limits import (
    OVER_ADDRESS,
    OVER_TOTAL,
    REQUEST_TIMEOUT,
    RESERVED_FILES,
    ConnectionCount,
    RefusalLog,
    connections_that_fit,
)
from common.protocol import (
    AgentsState,
    AwsProblem,
    ConfigState,
    ControlState,
    RouteInfo,
    RoutingStatus,
    RoutingView,
    ServerState,
    ServerStatus,
    StateEvent,
    published,
    to_plain,
)
from common.settings import load_settings
from services.dashboard import views
from services.dashboard.auth import LoginLimiter, SessionStore, credentials_match
from services.dashboard.htmlkit import Html, esc, html, show
from services.dashboard.state import MAX_EVENTS, DashboardState, SchedulerLinkStatus, apply_event


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------ auth


def test_credentials_match_needs_both_fields():
    assert credentials_match("admin", "pw", "admin", "pw")
    assert not credentials_match("admin", "pw", "admin", "pW")
    assert not credentials_match("Admin", "pw", "admin", "pw")
    assert not credentials_match("", "", "admin", "pw")


def test_sessions_expire_and_end():
    clock = Clock()
    store = SessionStore(60, clock=clock)
    cookie, session = store.create("admin")
    assert store.get(cookie) is session
    clock.now += 59
    assert store.get(cookie) is session
    clock.now += 2
    assert store.get(cookie) is None and store.count() == 0
    cookie, _ = store.create("admin")
    store.end(cookie)
    assert store.get(cookie) is None


def test_session_cookies_of_another_key_are_refused():
    a, b = SessionStore(60, key=b"a" * 32), SessionStore(60, key=b"b" * 32)
    cookie, _ = a.create("admin")
    assert b.get(cookie) is None
    assert a.get(cookie + "x") is None and a.get("") is None and a.get(None) is None


def test_sessions_are_bounded():
    store = SessionStore(60, max_sessions=3)
    cookies = [store.create("admin")[0] for _ in range(5)]
    assert store.count() == 3
    assert store.get(cookies[0]) is None and store.get(cookies[-1]) is not None


def test_flash_messages_are_taken_once():
    store = SessionStore(60)
    _, session = store.create("admin")
    for i in range(8):
        store.add_flash(session, "ok", f"m{i}")
    assert [m for _, m in store.take_flash(session)] == ["m3", "m4", "m5", "m6", "m7"]
    assert store.take_flash(session) == []


def test_limiter_per_address_window():
    clock = Clock()
    limiter = LoginLimiter(3, 100, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
        clock.now += 1
    assert limiter.retry_after("a") == pytest.approx(57)
    assert limiter.retry_after("b") == 0
    clock.now += 57.5
    assert limiter.retry_after("a") == 0  # the first failure aged out


def test_limiter_global_window():
    clock = Clock()
    limiter = LoginLimiter(5, 4, 30, clock=clock)
    for n in range(4):
        limiter.failed(f"addr{n}")
    assert limiter.retry_after("anyone") == pytest.approx(30)
    clock.now += 31
    assert limiter.retry_after("anyone") == 0


def test_limiter_success_forgets_the_address_and_memory_is_bounded():
    limiter = LoginLimiter(2, 10**6, 60, max_addresses=10)
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") > 0
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
    for n in range(50):
        limiter.failed(f"x{n}")
    assert len(limiter._by_address) == 10


# ---------------------------------------------------------------------- htmlkit


def test_html_escapes_values_but_not_markup():
    assert html("<b>{}</b>", "<i>&\"'") == "<b>&lt;i&gt;&amp;&quot;&#x27;</b>"
    assert html("<b>{}</b>", Html("<i>x</i>")) == "<b><i>x</i></b>"
    joined = html("<i>{}</i>", "a") + "<b>" + html("{}", "c")
    assert isinstance(joined, Html) and joined == "<i>a</i>&lt;b&gt;c"
    assert "<x>" + html("<i>{}</i>", "y") == "&lt;x&gt;<i>y</i>"
    assert esc(None) == "" and "—" in show(None) and "—" in show([]) and show(0) == "0"


# ------------------------------------------------------------------------ state


def event(topic, body, seq=1):
    return published(topic, body, src="scheduler", seq=seq, epoch="e")


LINK = SchedulerLinkStatus(available=True, synced_once=True)


def test_apply_event_folds_every_state_event_into_the_snapshot():
    state = to_plain(ControlState(servers=[ServerState(server_id="a", status=ServerStatus.RUNNING)]))
    apply_event(state, event("state.server", ServerState(server_id="a", status=ServerStatus.STOPPED)))
    apply_event(state, event("state.server", ServerState(server_id="b", status=ServerStatus.PENDING)))
    built = DashboardState.from_state(state, LINK)
    assert {sid: s.status for sid, s in built.servers.items()} == {"a": ServerStatus.STOPPED, "b": "pending"}
    apply_event(state, event("state.server", ServerState(server_id="a", removed=True)))
    apply_event(state, event("state.config", ConfigState(ok=False, errors=["bad"])))
    apply_event(state, event("state.agents", AgentsState({"alb-agent": "unavailable"}, {"alb-agent": "silent"})))
    apply_event(state, event("state.routing", RoutingView(simulated=True, known=True)))
    for n in range(MAX_EVENTS + 5):
        apply_event(state, event("state.event", StateEvent(message=f"e{n}", ts=1.7e9)))
    built = DashboardState.from_state(state, LINK)
    assert list(built.servers) == ["b"] and built.config.errors == ["bad"]
    assert built.agents.agent_errors == {"alb-agent": "silent"} and built.routing.simulated
    assert len(built.events) == MAX_EVENTS and built.events[-1].message == f"e{MAX_EVENTS + 4}"


def test_a_state_the_protocol_refuses_shows_empty_with_the_reason():
    built = DashboardState.from_state({"servers": [{"server_id": "a", "status": "sideways"}]}, LINK)
    assert built.servers == {} and not built.link.available
    assert "servers[0].status" in built.link.error and "sideways" not in built.link.error
    assert DashboardState.from_state({}, LINK).servers == {}


# ------------------------------------------------------------------------ views


@pytest.mark.parametrize(
    "status,group",
    [
        (ServerStatus.RUNNING, "running"),
        (ServerStatus.STARTING, "starting"),
        (ServerStatus.PENDING, "starting"),
        (ServerStatus.STOPPED, "stopped"),
        (ServerStatus.STOPPING, "stopped"),
        (ServerStatus.CRASH_LOOPING, "crash-looping"),
        (ServerStatus.ERROR, "error"),
        (ServerStatus.INVALID, "error"),
        (ServerStatus.UNKNOWN, "unknown"),
        (ServerStatus.REMOVED, "unknown"),
        (ServerStatus.DISABLED, "disabled"),
    ],
)
def test_status_groups(status, group):
    assert views.status_group(ServerState(server_id="s", status=status)) == group


def test_every_status_has_a_group():
    assert set(views.STATUS_GROUP) == set(ServerStatus)
    assert set(views.STATUS_GROUP.values()) <= set(views.GROUP_ORDER)


def test_disabled_and_stopped_by_hand_labels():
    assert views.status_group(ServerState(server_id="s", status=ServerStatus.RUNNING, enabled=False)) == "disabled"
    held = ServerState(server_id="s", status=ServerStatus.STOPPED, stopped_by_hand=True)
    assert views.status_label(held) == "stopped by hand"
    assert views.status_label(ServerState(server_id="s", status=ServerStatus.CRASH_LOOPING)) == "crash looping"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T22:13:20.5+00:00", 1700000000.5),
        ("2023-11-14T22:13:20.123456789Z", 1700000000.123456),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_parse_time(value, expected):
    got = views.parse_time(value)
    assert got == (pytest.approx(expected) if expected else None)


def test_uptime_only_while_running():
    now = 1700000100.0
    running = ServerState(server_id="s", status=ServerStatus.RUNNING, started_at="2023-11-14T22:13:20Z")
    assert views.started_at(running, now) == 1700000000
    assert views.started_at(ServerState(server_id="s", status=ServerStatus.STOPPED, started_at="x"), now) is None
    assert views.format_duration(3725) == "1h 2m" and views.format_duration(90061) == "1d 1h"
    assert views.format_duration(None) is None


def _state(servers=(), routing=None):
    return DashboardState(
        servers={s.server_id: s for s in servers},
        routing=routing or RoutingView(),
        link=LINK,
    )


def test_litellm_names_and_yaml():
    ids = ["a-b", "a_b", "c.d", "123", "off-x"]
    servers = [ServerState(server_id=sid, url=f"https://alb.example/mcp/{sid}/mcp") for sid in ids]
    servers.append(ServerState(server_id="gone", enabled=False, url="https://alb.example/mcp/gone/mcp"))
    servers.append(ServerState(server_id="portless"))
    view = views.litellm(_state(servers), base_url="https://alb.example")
    names = {e["server_id"]: e["name"] for e in view["servers"]}
    assert names == {"123": "mcp_123", "a-b": "a_b", "a_b": "a_b_2", "c.d": "c_d", "off-x": "off_x"}
    yaml = view["yaml"]
    assert "gone" not in yaml and all("-" not in name for name in names.values())
    assert '  a_b:\n    url: "https://alb.example/mcp/a-b/mcp"\n    transport: "http"\n' in yaml
    assert views.litellm(_state(), base_url="")["yaml"] == "mcp_servers: {}\n"


def test_routing_errors_come_from_the_agent_and_the_route_list():
    routing = RoutingView(
        known=True,
        error="AWS said no",
        routes=[
            RouteInfo(server_id="t", port=8001, priority=10001, health="healthy"),
            RouteInfo(server_id="q", error="rule quota of 100 reached"),
            RouteInfo(server_id="z", error="said twice"),
        ],
        alb=RoutingStatus(known=True, errors=[AwsProblem("ValidationError", "said twice", server_id="z")]),
    )
    view = views.routing_view(_state(routing=routing), simulated_default=True)
    assert view["simulated"] is False and view["known"] is True
    assert view["errors"] == [
        {"server_id": "z", "code": "ValidationError", "message": "said twice", "quota": False},
        {"server_id": "q", "code": None, "message": "rule quota of 100 reached", "quota": True},
    ]
    assert view["failure"] == {"code": None, "message": "AWS said no"}


def test_routing_unknown_uses_the_settings_for_simulated():
    state = DashboardState(link=SchedulerLinkStatus())
    view = views.routing_view(state, simulated_default=True)
    assert view["known"] is False and view["simulated"] is True and view["rules"] == []


# ---------------------------------------------------------- connection limits


def test_connection_count_refuses_over_the_total_and_per_address():
    count = ConnectionCount(max_total=3, max_per_address=2)
    count.opened("10.0.0.1")
    count.opened("10.0.0.1")
    assert count.refusal("10.0.0.1") is OVER_ADDRESS
    assert count.refusal("10.0.0.2") is None
    count.opened("10.0.0.2")
    assert count.refusal("10.0.0.3") is OVER_TOTAL and count.total == 3
    count.closed("10.0.0.1")
    assert count.refusal("10.0.0.1") is None and count.refusal("10.0.0.3") is None


def test_refusals_are_complete_http_answers_that_close():
    head, _, body = OVER_ADDRESS.response().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"Connection: close" in head and f"Content-Length: {len(body)}".encode() in head
    assert body == b"too many open connections from your address\n"


def test_max_connections_fit_the_open_file_limit():
    assert connections_that_fit(1000, 20000) == 1000
    assert connections_that_fit(1000, 1024) == 1024 - RESERVED_FILES
    assert connections_that_fit(1000, 10) == 1


def test_refusal_log_sums_up_at_most_once_per_interval():
    clock = Clock()
    refusals = RefusalLog(interval=10, clock=clock)
    assert refusals.summary() is None
    refusals.note(OVER_ADDRESS, "10.0.0.1")
    assert refusals.summary() == ("connections closed: 1 from 10.0.0.1 (too many open connections from your address)")
    for _ in range(500):
        refusals.note(OVER_ADDRESS, "10.0.0.1")
    refusals.note(REQUEST_TIMEOUT, "10.0.0.2")
    clock.now += 9
    assert refusals.summary() is None
    clock.now += 1
    line = refusals.summary()
    assert line.startswith("connections closed: 500 from 10.0.0.1") and "1 from 10.0.0.2" in line
    clock.now += 60
    assert refusals.summary() is None  # nothing new


# ------------------------------------------------------------- MCP auth notice


def test_mcp_auth_warning_follows_the_bridge_settings():
    loopback = load_settings(None, environ={})
    assert views.mcp_auth_warning(loopback)["level"] == "info"
    assert "listen on 127.0.0.1 only" in views.mcp_auth_warning(loopback)["message"]
    none = load_settings(None, environ={"MCP_ORCHESTRATOR_BRIDGE_AUTH": "none"})
    assert views.mcp_auth_warning(none)["level"] == "danger"
    tokens = load_settings(None, environ={"MCP_ORCHESTRATOR_BRIDGE_TOKENS": "t" * 32})
    assert views.mcp_auth_warning(tokens) is None
    assert "t" * 32 not in str(views.mcp_auth_warning(loopback))
