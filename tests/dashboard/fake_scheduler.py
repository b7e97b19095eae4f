"""A stand-in scheduler process that speaks the real protocol (for dashboard tests).

It binds the scheduler's REP `control` and PUB `state` endpoints from a settings file
with the common modules, serves control.status / control.action / control.plan /
snapshot.get, and publishes state.server / state.event when an action changes a
server (a stop takes effect a moment after it is accepted, like the real thing).
No Docker, no agents: the servers are made up, some with awkward content.

    python tests/dashboard/fake_scheduler.py --settings PATH [--servers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.logs import setup_logging  # noqa: E402
from common.protocol import (  # noqa: E402
    ConfigState,
    ControlAccepted,
    ControlPlan,
    ControlState,
    ListenerInfo,
    RoutingStatus,
    RoutingView,
    RuleInfo,
    ServerState,
    ServiceError,
    StateEvent,
    TargetGroupInfo,
    TargetInfo,
    TrafficReport,
    from_plain,
    to_plain,
)
from common.pubsub import Publisher  # noqa: E402
from common.reqrep import RepServer  # noqa: E402
from common.service import Service  # noqa: E402
from common.settings import load_settings  # noqa: E402

# Seconds between an accepted action and its effect (the real one goes through Docker).
EFFECT_DELAY = 0.3
STDERR_LINE = "server ready on stdio (fake)"


def initial_servers(count: int, now: float) -> dict[str, ServerState]:
    servers = {
        "alpha": ServerState(
            server_id="alpha",
            status="running",
            image="mcp/alpha:1",
            host_port=8101,
            container_id="a" * 64,
            health="healthy",
            route="routed",
            restarts=0,
            env_names=["ALPHA_TOKEN"],
            updated_at=now,
        ),
        "beta": ServerState(
            server_id="beta",
            status="running",
            image="mcp/beta:2",
            host_port=8102,
            container_id="b" * 64,
            route="routed",
            env_names=[],
            updated_at=now,
        ),
        "gamma": ServerState(
            server_id="gamma",
            status="crash-looping",
            image="mcp/gamma:3",
            host_port=8103,
            restarts=4,
            exit_code=3,
            route="routed",
            last_error="exited with code 3",
            next_restart_at=now + 30,
            updated_at=now,
        ),
    }
    for i in range(max(count - len(servers), 0)):
        sid = f"server-{i:03d}"
        servers[sid] = ServerState(
            server_id=sid, status="running", image="mcp/bulk:1", host_port=8200 + i, route="routed", updated_at=now
        )
    return servers


class FakeScheduler:
    def __init__(self, service: Service, settings: Any, count: int) -> None:
        z = settings.zmq
        self.service = service
        now = time.time()
        self.servers = initial_servers(count, now)
        self.started = {sid: now - 60 for sid, s in self.servers.items() if s.status == "running"}
        self.stderr = {"alpha": [STDERR_LINE, "listening <not html>"], "gamma": ["boom"]}
        self.events: list[StateEvent] = []
        self.config = ConfigState(
            path="/etc/mcp-orchestrator/mcp.config.json", ok=True, loaded_at=now, server_ids=sorted(self.servers)
        )
        self.pub = service.attach(
            Publisher(service.ctx, z.scheduler_state, src="scheduler", heartbeat_interval=z.heartbeat_interval_seconds)
        )
        self.rep = service.attach(
            RepServer(
                service.ctx,
                z.scheduler_control,
                {
                    "control.status": self.on_status,
                    "control.action": self.on_action,
                    "control.plan": lambda msg: ControlPlan(),
                    "control.traffic": self.on_traffic,
                    "snapshot.get": self.on_snapshot,
                },
                src="scheduler",
            )
        )

    def routing(self) -> RoutingView:
        ids = sorted(self.servers)
        alb = RoutingStatus(
            known=True,
            listener=ListenerInfo(
                "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/fake/1/2", "HTTP", 80
            ),
            rules=[
                RuleInfo(
                    arn=f"rule-{sid}",
                    priority=10000 + i,
                    path_patterns=[f"/mcp/{sid}", f"/mcp/{sid}/*"],
                    owned=True,
                    server_id=sid,
                    target_group_arns=[f"tg-{sid}"],
                )
                for i, sid in enumerate(ids)
            ],
            target_groups=[
                TargetGroupInfo(
                    server_id=sid,
                    name=f"mcpo-{sid}",
                    arn=f"tg-{sid}",
                    health_check_path=f"/mcp/{sid}/health",
                    targets=[TargetInfo("i-0fake", self.servers[sid].host_port or 1, "healthy")],
                )
                for sid in ids
            ],
        )
        return RoutingView(simulated=True, known=True, alb=alb)

    def server(self, sid: str) -> ServerState:
        started = self.started.get(sid)
        return dataclasses.replace(
            self.servers[sid],
            stderr_tail=list(self.stderr.get(sid, [])),
            started_at=datetime.fromtimestamp(started, timezone.utc).isoformat() if started else None,
        )

    def state(self) -> ControlState:
        return ControlState(
            servers=[self.server(sid) for sid in sorted(self.servers)],
            config=self.config,
            agents={"container-agent": "available", "alb-agent": "available"},
            routing=self.routing(),
            events=list(self.events),
        )

    def on_snapshot(self, msg: Any):
        return self.pub.snapshot(to_plain(self.state()))

    def on_status(self, msg: Any) -> ControlState:
        return self.state()

    def on_traffic(self, msg: Any) -> TrafficReport:
        """Made-up numbers for the running servers: a call a second, one in ten failing."""
        now = time.time()
        start = (now // 10) * 10 - 590
        series = {"start": start, "calls": [10] * 60, "errors": [1] * 60, "p95_ms": [3.0 + i % 5 for i in range(60)]}
        window = {"seconds": 300, "calls": 300, "errors": 30, "calls_per_minute": 60.0, "error_rate": 0.1}
        reports = []
        for sid, server in self.servers.items():
            if server.status != "running" or msg.body.server_id not in (None, sid):
                continue
            report: dict[str, Any] = {"server_id": sid, "now": now, "series": series, "window": window}
            if msg.body.detail:
                report["tools"] = [{"tool": "echo", "calls": 300, "errors": 30, "p95_ms": 7.0, "series": series}]
                report["recent"] = [
                    {"t": now - i, "method": "tools/call", "tool": "echo", "outcome": "ok", "status": 200, "ms": 2.0}
                    for i in range(5)
                ]
                report["catalog"] = {"tools": [{"name": "echo", "description": "Says it back <b>loud</b>"}]}
            reports.append(report)
        return from_plain(TrafficReport, {"servers": reports})

    def on_action(self, msg: Any) -> ControlAccepted:
        action, sid = msg.body.action, msg.body.server_id
        if sid is not None and sid not in self.servers:
            raise ServiceError("not_found", f"no server {sid!r} in the configuration")
        if action in ("start", "restart"):
            self.later(sid, "starting", None)
            self.service.after(EFFECT_DELAY * 2, lambda: self.set_status(sid, "running", "started"))
        elif action == "stop":
            self.service.after(EFFECT_DELAY, lambda: self.set_status(sid, "stopped", "stopped by hand"))
        else:
            self.service.after(EFFECT_DELAY, lambda: self.event(f"{action} done", None))
        return ControlAccepted(action=action, server_id=sid, message=f"{action} {sid or 'all'} queued")

    def later(self, sid: str, status: str, note: Any) -> None:
        self.service.after(EFFECT_DELAY, lambda: self.set_status(sid, status, note))

    def set_status(self, sid: str, status: str, note: Any) -> None:
        if status == "running":
            self.started[sid] = time.time()
            self.stderr[sid] = [STDERR_LINE, f"started again at {time.time():.0f}"]
        else:
            self.started.pop(sid, None)
        self.servers[sid] = dataclasses.replace(self.servers[sid], status=status, updated_at=time.time())
        self.pub.publish("state.server", self.server(sid))
        if note:
            self.event(f"{sid}: {note}", sid)

    def event(self, message: str, sid: Any) -> None:
        body = StateEvent(message=message, server_id=sid, ts=time.time())
        self.pub.publish("state.event", body)
        self.events.append(body)
        del self.events[:-100]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", required=True)
    parser.add_argument("--servers", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(args.settings, environ={})
    setup_logging(settings.logging.level, "fake-scheduler")
    service = Service("fake-scheduler")
    FakeScheduler(service, settings, args.servers)
    return service.run()


if __name__ == "__main__":
    sys.exit(main())
