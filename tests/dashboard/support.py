"""Helpers of the dashboard tests: a sample state, a fake Control, a cookie-keeping user."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Optional
from urllib.parse import urlencode

from falcon import testing

from common.protocol import (
    AwsProblem,
    ConfigState,
    ControlState,
    ListenerInfo,
    RouteState,
    RoutingStatus,
    RoutingView,
    RuleInfo,
    ServerState,
    ServerStatus,
    StateEvent,
    TargetGroupInfo,
    TargetInfo,
    TrafficReport,
    from_plain,
    to_plain,
)
from common.settings import Settings, load_settings
from services.dashboard.auth import SESSION_COOKIE
from services.dashboard.control import ActionResult, TrafficResult
from services.dashboard.state import DashboardState, SchedulerLinkStatus

PASSWORD = "correct horse battery"
# An env value that must never reach a response.
CANARY = "canary-SECRET-value-7f3a9c"
XSS = "<script>alert(1)</script>"
# A hostile server id that fits in one URL path segment (no "/").
XSS_ID = "<img src=x onerror=alert(1)>"
FORM = "application/x-www-form-urlencoded"


def sample_state() -> dict:
    """A scheduler snapshot (ControlState as plain data) with every kind of server and
    some hostile content."""
    servers = [
        ServerState(
            server_id="time",
            status=ServerStatus.RUNNING,
            image="mcp/time:latest",
            host_port=8001,
            container_id="c0ffee" * 10,
            health="healthy",
            route=RouteState.ROUTED,
            restarts=1,
            env_names=["API_KEY", "REGION"],
            started_at="2024-05-01T10:00:00.123456789Z",
            stderr_tail=["starting", "ready"],
            mounts=["/srv/data:/data:ro"],
            url="http://127.0.0.1:8001/mcp/time/mcp",
            route_health="healthy",
            route_target_group="mcpo-time-abc",
            route_priority=10000,
        ),
        ServerState(
            server_id=XSS,
            status=ServerStatus.ERROR,
            image=f"evil/{XSS}:1",
            last_error=f"failed: {XSS}",
            stderr_tail=[f"line {XSS}"],
        ),
        ServerState(
            server_id=XSS_ID,
            status=ServerStatus.RUNNING,
            image=f"img/{XSS}",
            host_port=8002,
            stderr_tail=[f"stderr {XSS}"],
            env_names=[f"NAME_{XSS}"],
        ),
        ServerState(
            server_id="loop",
            status=ServerStatus.CRASH_LOOPING,
            exit_code=3,
            restarts=7,
            image="busybox",
            next_restart_at=1.9e9,
        ),
        ServerState(server_id="halt", status=ServerStatus.STOPPED, image="busybox"),
        ServerState(server_id="off", status=ServerStatus.DISABLED, enabled=False),
        ServerState(server_id="new", status=ServerStatus.PENDING),
    ]
    alb = RoutingStatus(
        known=True,
        listener=ListenerInfo("arn:listener", "HTTP", 80),
        rules=[
            RuleInfo(
                arn="arn:rule-time",
                priority=10000,
                path_patterns=["/mcp/time", "/mcp/time/*"],
                owned=True,
                server_id="time",
                target_group_arns=["arn:tg-time"],
            ),
            RuleInfo(arn="arn:rule-other", priority=5, path_patterns=["/other/*"]),
        ],
        target_groups=[
            TargetGroupInfo(
                server_id="time",
                name="mcpo-time-abc",
                arn="arn:tg-time",
                health_check_path="/mcp/time/health",
                targets=[TargetInfo("i-1", 8001, "healthy")],
            )
        ],
        errors=[AwsProblem(code="quota_exceeded", message="100 target groups per ALB reached", server_id="loop")],
    )
    state = to_plain(
        ControlState(
            servers=servers,
            config=ConfigState(path="/etc/mcp.config.json", ok=False, errors=[f"server 'x': unsupported flag {XSS}"]),
            agents={"container-agent": "available", "alb-agent": "unavailable"},
            routing=RoutingView(simulated=True, known=True, alb=alb),
            events=[StateEvent(message=f"time started {XSS}", server_id="time", ts=1.7e9)],
        )
    )
    # Fields no scheduler sends are ignored, never shown.
    state["servers"][0].update(env={"API_KEY": CANARY}, secret_value=CANARY, future_field="not shown")
    return state


def sample_traffic(now: float = 1.7e9) -> TrafficReport:
    """What the bridge served: "time" busy with two tools (one failing now and then,
    one called but not listed), the hostile server with hostile names; the others not
    served."""
    start = (now // 10) * 10 - 590

    def series(calls: list[int], errors: list[int]) -> dict:
        p95 = [4.5 + i / 10 if c else None for i, c in enumerate(calls)]
        return {"start": start, "calls": calls, "errors": errors, "p95_ms": p95}

    busy = series([i % 7 for i in range(60)], [1 if i % 13 == 0 else 0 for i in range(60)])
    schema = {"type": "object", "properties": {"timezone": {"type": "string", "description": XSS}}}
    time_report = {
        "server_id": "time",
        "bucket_seconds": 10,
        "now": now,
        "series": busy,
        "window": {
            "seconds": 300,
            "calls": 90,
            "errors": 3,
            "calls_per_minute": 18.0,
            "error_rate": 0.0333,
            "p50_ms": 2.5,
            "p95_ms": 9.75,
        },
        "tools": [
            {"tool": "get_current_time", "calls": 80, "errors": 0, "p50_ms": 2.0, "p95_ms": 8.0, "series": busy},
            {"tool": "retired_tool", "calls": 10, "errors": 3, "p50_ms": 30.0, "p95_ms": 1200.0, "series": busy},
        ],
        "recent": [
            {
                "t": now - 1,
                "method": "tools/call",
                "tool": "get_current_time",
                "era": "2026-07-28",
                "outcome": "ok",
                "status": 200,
                "ms": 2.25,
            },
            {
                "t": now - 2,
                "method": "tools/call",
                "tool": "retired_tool",
                "era": "2025-11-25",
                "outcome": "error",
                "status": 200,
                "ms": 31.0,
            },
        ],
        "catalog": {
            "tools": [
                {
                    "name": "get_current_time",
                    "title": "Current time",
                    "description": "Now, in a timezone",
                    "input_schema_json": json.dumps(schema, indent=2),
                },
                {"name": "convert_time", "title": None, "description": "", "input_schema_json": ""},
            ],
            "prompts": [
                {
                    "name": "greet",
                    "description": "Say hello",
                    "arguments": [{"name": "who", "description": "", "required": True}, {"name": "tone"}],
                }
            ],
            "resources": [{"name": "clock", "uri": "time://clock", "description": "", "mime_type": "text/plain"}],
            "error": None,
        },
    }
    hostile = {
        "server_id": XSS_ID,
        "bucket_seconds": 10,
        "now": now,
        "series": series([1] * 60, [0] * 60),
        "window": {"seconds": 300, "calls": 30, "errors": 0, "calls_per_minute": 6.0, "p95_ms": 1.0},
        "tools": [{"tool": XSS, "calls": 30, "errors": 0}],
        "recent": [{"t": now, "method": XSS, "tool": XSS, "era": XSS, "outcome": XSS, "status": 200, "ms": 1.0}],
        "catalog": {
            "tools": [{"name": XSS, "title": XSS, "description": XSS, "input_schema_json": XSS}],
            "prompts": [{"name": XSS, "description": XSS, "arguments": [{"name": XSS}]}],
            "resources": [{"name": XSS, "uri": XSS, "description": XSS, "mime_type": XSS}],
            "error": XSS,
        },
    }
    return from_plain(TrafficReport, {"servers": [time_report, hostile]})


class FakeControl:
    def __init__(self, raw: Optional[dict] = None, *, available: bool = True) -> None:
        self.raw = raw if raw is not None else sample_state()
        self.link = SchedulerLinkStatus(available=available, synced_once=True, last_heard=1.7e9)
        self.calls: list[tuple[str, Optional[str]]] = []
        self.result = ActionResult(True, "queued")
        self.traffic_result = TrafficResult(report=sample_traffic())
        self.traffic_asked: list[tuple[Optional[str], bool]] = []

    def traffic(self, server_id: Optional[str], detail: bool) -> TrafficResult:
        self.traffic_asked.append((server_id, detail))
        report = self.traffic_result.report
        if report is None or server_id is None:
            return self.traffic_result
        kept = [s for s in report.servers if s.server_id == server_id]
        return TrafficResult(report=dataclasses.replace(report, servers=kept))

    def state(self) -> DashboardState:
        return DashboardState.from_state(self.raw, self.link)

    def act(self, action: str, server_id: Optional[str]) -> ActionResult:
        self.calls.append((action, server_id))
        return self.result


def make_settings(**dashboard: Any) -> Settings:
    base = load_settings(None, environ={})
    values = {"password": PASSWORD, **dashboard}
    return dataclasses.replace(base, dashboard=dataclasses.replace(base.dashboard, **values))


class WebUser:
    """A cookie-keeping user of the app under falcon's TestClient."""

    def __init__(self, client: testing.TestClient, prefix: str = "/monitor") -> None:
        self.client = client
        self.prefix = prefix
        self.cookies: dict[str, str] = {}
        self.csrf: Optional[str] = None
        self.remote_addr = "10.0.0.1"

    def _headers(self, headers: Optional[dict]) -> dict:
        out = dict(headers or {})
        if self.cookies:
            out["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return out

    def _keep(self, result: testing.Result) -> testing.Result:
        for name, cookie in result.cookies.items():
            if cookie.value == "" or cookie.max_age == 0:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie.value
        return result

    def get(self, path: str, headers: Optional[dict] = None, **kw: Any) -> testing.Result:
        return self._keep(
            self.client.simulate_get(path, headers=self._headers(headers), remote_addr=self.remote_addr, **kw)
        )

    def post(
        self, path: str, form: Optional[dict] = None, headers: Optional[dict] = None, json: Any = None
    ) -> testing.Result:
        headers = dict(headers or {})
        kw: dict[str, Any] = {}
        if json is not None:
            kw["json"] = json
        else:
            headers.setdefault("Content-Type", FORM)
            kw["body"] = urlencode(form or {})
        return self._keep(
            self.client.simulate_post(path, headers=self._headers(headers), remote_addr=self.remote_addr, **kw)
        )

    def login_form(self, username: str = "admin", password: str = PASSWORD, next_path: str = "") -> testing.Result:
        page = self.get(f"{self.prefix}/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"csrf_token": token, "username": username, "password": password}
        if next_path:
            form["next"] = next_path
        return self.post(f"{self.prefix}/login", form)

    def login(self) -> "WebUser":
        result = self.login_form()
        assert result.status_code == 303, result.text
        assert SESSION_COOKIE in self.cookies
        self.csrf = self.get(f"{self.prefix}/api/session").json["csrf_token"]
        return self
