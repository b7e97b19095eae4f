"""The alb-agent as a real process: real ZeroMQ sockets, moto as its AWS."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

zmq = pytest.importorskip("zmq")

from common.protocol import RouteEntry, RoutesApply, RoutesStatusQuery  # noqa: E402
from common.pubsub import Subscriber  # noqa: E402
from common.reqrep import RemoteError, ReqClient  # noqa: E402
from services.alb_agent import naming  # noqa: E402
from tests.alb_agent.listener_view import assert_routes_exactly, routing_of, rules  # noqa: E402
from tests.harness.files import write_settings  # noqa: E402
from tests.harness.processes import Process, specs_for  # noqa: E402
from tests.harness.waiting import wait_for  # noqa: E402


class AgentProcess:
    def __init__(self, aws, endpoint_url: str, apply_wait: float, **aws_overrides: str) -> None:
        # ipc paths must stay short (Unix sockets take about 107 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="alb-agent-", dir="/tmp"))
        self.routes = f"ipc://{self.dir}/routes.sock"
        self.events = f"ipc://{self.dir}/route-events.sock"
        aws_values = {
            "region": "us-east-1",
            "alb_arn": aws.alb_arn,
            "listener_arn": aws.listener_arn,
            "vpc_id": aws.vpc_id,
            "endpoint_url": endpoint_url,
            "instance_id": aws.instance_id,
            "imds_endpoint": endpoint_url,
            "api_max_attempts": "1",
        }
        aws_values.update(aws_overrides)
        settings = write_settings(
            self.dir / "settings.conf",
            {
                "aws": aws_values,
                "zmq": {"routes": self.routes, "route_events": self.events, "heartbeat_interval_seconds": 0.2},
                "logging": {"level": "INFO"},
            },
        )
        spec = specs_for(settings)["alb-agent"]
        self.process = Process.of(spec, self.dir / "agent.log", "--apply-wait", str(apply_wait))
        self.ctx = zmq.Context()
        self.sub = Subscriber(self.ctx, self.events, topics=("route.",))
        self.events_seen: list = []
        self.heartbeats = 0
        wait_for(self.answers, 20, "the agent to answer ping")
        # PUB/SUB joins late: events sent before the subscription is live are lost.
        wait_for(lambda: self.drain() is not None and self.heartbeats, 10, "a heartbeat")

    def client(self, timeout_ms: int = 3000) -> ReqClient:
        return ReqClient(self.ctx, self.routes, timeout_ms=timeout_ms, retries=0, src="test")

    def answers(self) -> bool:
        assert self.process.alive(), self.output()
        with self.client(timeout_ms=300) as c:
            try:
                c.request("ping")
                return True
            except Exception:
                return False

    def drain(self) -> list:
        while True:
            msg = self.sub.receive()
            if msg is None:
                return self.events_seen
            if msg.type == "heartbeat":
                self.heartbeats += 1
            else:
                self.events_seen.append(msg)

    def output(self) -> str:
        return self.process.output()

    def stop(self) -> Optional[int]:
        code = self.process.stop()
        self.sub.close()
        self.ctx.destroy(linger=0)
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


@pytest.fixture
def start_agent(aws):
    started: list[AgentProcess] = []

    def start(endpoint_url: Optional[str] = None, apply_wait: float = 1.0, **overrides: str) -> AgentProcess:
        agent = AgentProcess(aws, endpoint_url or aws.url, apply_wait, **overrides)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def apply(agent: AgentProcess, ports: dict[str, int], dry_run: bool = False, disabled=()):
    body = RoutesApply(
        routes=[RouteEntry(sid, port, sid not in disabled) for sid, port in ports.items()], dry_run=dry_run
    )
    with agent.client(timeout_ms=15000) as c:
        return c.call("routes.apply", body)


def test_routes_apply_status_snapshot_and_events(aws, start_agent):
    agent = start_agent(apply_wait=10.0)  # replies carry results, however slow the machine
    ports = {"time": 8001, "git": 8002, "fetch": 8003}
    first = apply(agent, ports)
    assert first.errors == [] and len(first.changes) == 15
    assert {r.server_id: r.priority for r in first.routes} == {"fetch": 10000, "git": 10001, "time": 10002}
    created = wait_for(
        lambda: {m.body.server_id for m in agent.drain() if m.type == "route.created"} >= set(ports) or None,
        20,
        "route.created for every server",
    )
    assert created
    routing = assert_routes_exactly(aws, "default", ports)

    def status_ready():
        with agent.client() as c:
            routes = c.call("routes.status", RoutesStatusQuery()).routes
        return routes if {r.server_id for r in routes} == set(ports) else None

    routes = {r.server_id: r for r in wait_for(status_ready, 20, "routes.status")}
    assert routes["time"].priority == routing["time"]["priority"]
    assert routes["time"].port == 8001 and routes["time"].health == "healthy"
    assert routes["time"].target_group_name == routing["time"]["target_group"]

    with agent.client() as c:
        one = c.call("routes.status", RoutesStatusQuery(server_id="git")).routes
        snapshot = c.call("snapshot.get")
    assert [r.server_id for r in one] == ["git"]
    assert snapshot.seq >= 3 and snapshot.state["degraded"] is False
    assert sorted(r["server_id"] for r in snapshot.state["rules"] if r["owned"]) == sorted(ports)

    # The dry run changes nothing.
    dry = apply(agent, {"time": 8001, "git": 8002}, dry_run=True)
    assert dry.dry_run and [(c.action, c.resource) for c in dry.changes] == [
        ("delete", "rule"),
        ("deregister", "target"),
        ("delete", "target-group"),
    ]
    assert sorted(routing_of(aws, "default")) == sorted(ports)
    result = apply(agent, {"time": 9001, "git": 8002}, disabled={"git"})
    assert result.errors == [] and not result.dry_run
    assert {(c.action, c.resource, c.server_id) for c in result.changes} >= {
        ("register", "target", "time"),
        ("delete", "rule", "git"),
        ("delete", "rule", "fetch"),
    }
    assert_routes_exactly(aws, "default", {"time": 9001})
    kinds = wait_for(
        lambda: (
            {(m.type, m.body.server_id) for m in agent.drain()}
            >= {("route.changed", "time"), ("route.removed", "git"), ("route.removed", "fetch")}
        ),
        10,
        "the change events",
    )
    assert kinds

    assert agent.stop() == 0


def test_an_invalid_entry_is_reported_and_the_rest_applied(aws, start_agent):
    agent = start_agent(apply_wait=10.0)
    result = apply(agent, {"ok": 8001, "bad/id": 8002})
    assert [e.split(":")[0:2] for e in result.errors] == [["bad/id", " invalid_route"]]
    assert {r.server_id: r.error is None for r in result.routes} == {"ok": True, "bad/id": False}
    assert_routes_exactly(aws, "default", {"ok": 8001})


def test_a_slow_apply_is_answered_in_progress(aws, start_agent):
    agent = start_agent(apply_wait=0.0)
    result = apply(agent, {"time": 8001})
    assert result.pending and result.errors == []
    wait_for(lambda: any(m.type == "route.created" for m in agent.drain()), 20, "route.created")
    assert_routes_exactly(aws, "default", {"time": 8001})


def test_degraded_but_answering_while_aws_is_unreachable(aws, start_agent):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    agent = start_agent(dead)

    def snapshot_state():
        with agent.client() as c:
            return c.call("snapshot.get").state

    state = wait_for(
        lambda: snapshot_state().get("degraded") and snapshot_state(), 20, "the agent to report itself degraded"
    )
    assert state["failure"]["code"] == "unreachable" and state["stale"] is True
    with agent.client() as c:
        assert c.call("routes.status", RoutesStatusQuery()).routes == []
        try:
            result = c.call("routes.apply", RoutesApply(routes=[RouteEntry("time", 8001)]))
        except RemoteError as exc:
            assert exc.code == "unavailable" and "unreachable" in exc.message
        else:
            assert result.errors  # still working on it (retrying): said so, not hidden
        c.request("ping")  # still answering
    assert agent.stop() == 0


def test_without_an_alb_routing_goes_to_a_local_stand_in(aws, start_agent):
    agent = start_agent(
        apply_wait=10.0,
        alb_arn="",
        listener_arn="",
        vpc_id="",
        endpoint_url="",
        instance_id="",
        imds_endpoint="http://127.0.0.1:1",
    )
    result = apply(agent, {"time": 8001})
    assert result.errors == []
    assert [(r.server_id, r.priority) for r in result.routes] == [("time", 10000)]
    with agent.client() as c:
        state = c.call("snapshot.get").state
    assert ":loadbalancer/app/mcp-orchestrator-standin/" in state["load_balancer_arn"]
    assert routing_of(aws, "default") == {}  # the test's own moto saw nothing of it
    # moto runs in a child of its own: the agent stays small; the child goes with it.
    standin = standin_pid(agent)
    assert parent_of(standin) == agent.process.pid
    print(f"alb-agent {rss_mb(agent.process.pid):.1f} MB, its AWS stand-in {rss_mb(standin):.1f} MB")
    assert rss_mb(agent.process.pid) < 80
    assert agent.stop() == 0
    wait_for(lambda: not os.path.exists(f"/proc/{standin}"), 10, "the stand-in to end with the agent")


def test_the_stand_in_ends_when_its_agent_is_killed(aws, start_agent):
    agent = start_agent(alb_arn="", listener_arn="", vpc_id="", endpoint_url="", instance_id="")
    wait_for(lambda: "local stand-in at" in agent.output(), 30, "the stand-in")
    standin = standin_pid(agent)
    agent.process.kill9()
    wait_for(lambda: not os.path.exists(f"/proc/{standin}"), 10, "the stand-in to end after a kill -9 of its agent")


def standin_pid(agent: AgentProcess) -> int:
    found = re.findall(r"local stand-in at http://127\.0\.0\.1:\d+ \(simulated, pid (\d+)\)", agent.output())
    assert found, agent.output()
    return int(found[-1])


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


# -- controls on our rules: the operator's kept, the settings' added ----------------------

OIDC_BY_HAND = {
    "Type": "authenticate-oidc",
    "Order": 1,
    "AuthenticateOidcConfig": {
        "Issuer": "https://idp.example.com",
        "AuthorizationEndpoint": "https://idp.example.com/auth",
        "TokenEndpoint": "https://idp.example.com/token",
        "UserInfoEndpoint": "https://idp.example.com/userinfo",
        "ClientId": "by-hand",
        "ClientSecret": "operators-secret",
        "SessionCookieName": "OpsCookie",
        "Scope": "openid email",
        "SessionTimeout": 3600,
        "OnUnauthenticatedRequest": "deny",
        "AuthenticationRequestExtraParams": {"prompt": "login"},
    },
}
SOURCE_IP_BY_HAND = {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.20.0.0/16"]}}


def our_rule_raw(aws, server_id: str) -> dict:
    (rule,) = [r for r in rules(aws) if r.tags.get(naming.TAG_SERVER_ID) == server_id]
    return rule.raw


def without_secret(action: dict) -> dict:
    config = {
        k: v
        for k, v in action.get("AuthenticateOidcConfig", {}).items()
        if k not in ("ClientSecret", "UseExistingClientSecret")
    }
    return dict(action, AuthenticateOidcConfig=config)


def test_controls_an_operator_adds_survive_reconciles_and_drift_repair(aws, start_agent):
    agent = start_agent(apply_wait=10.0)
    assert apply(agent, {"time": 8001}).errors == []
    raw = our_rule_raw(aws, "time")
    (forward,) = raw["Actions"]
    # An operator puts the ALB's own login and an address filter in front of our route.
    aws.elbv2.modify_rule(
        RuleArn=raw["RuleArn"],
        Conditions=[SOURCE_IP_BY_HAND] + raw["Conditions"],
        Actions=[OIDC_BY_HAND, dict(forward, Order=2)],
    )
    by_hand = our_rule_raw(aws, "time")
    for _ in range(10):
        result = apply(agent, {"time": 8001})
        assert result.errors == [] and result.changes == [], result.changes
        assert our_rule_raw(aws, "time") == by_hand

    # Our forward drifts (someone points it elsewhere): only our part is put back.
    elsewhere = aws.elbv2.create_target_group(Name="elsewhere", Protocol="HTTP", Port=80, VpcId=aws.vpc_id)[
        "TargetGroups"
    ][0]
    aws.elbv2.modify_rule(
        RuleArn=raw["RuleArn"],
        Actions=[OIDC_BY_HAND, {"Type": "forward", "Order": 2, "TargetGroupArn": elsewhere["TargetGroupArn"]}],
    )
    result = apply(agent, {"time": 8001})
    assert [(c.action, c.resource) for c in result.changes] == [("modify", "rule")]
    fixed = our_rule_raw(aws, "time")
    assert fixed["Priority"] == by_hand["Priority"]
    assert fixed["Conditions"] == by_hand["Conditions"]
    assert [a["Type"] for a in fixed["Actions"]] == ["authenticate-oidc", "forward"]
    assert without_secret(fixed["Actions"][0]) == without_secret(by_hand["Actions"][0])
    assert fixed["Actions"][1]["TargetGroupArn"] == forward["TargetGroupArn"]
    assert_routes_exactly(aws, "default", {"time": 8001})
    for _ in range(2):
        assert apply(agent, {"time": 8001}).changes == []
    assert "operators-secret" not in agent.output()
    with agent.client() as c:
        state = c.call("snapshot.get").state
    (shown,) = [r for r in state["rules"] if r["server_id"] == "time"]
    assert shown["conditions"] == ["source-ip"] and shown["actions"] == ["authenticate-oidc"]
    assert "operators-secret" not in repr(state)
    assert agent.stop() == 0


OIDC_SETTINGS = {
    "alb_authenticate": "oidc",
    "alb_oidc_issuer": "https://login.example.com",
    "alb_oidc_authorization_endpoint": "https://login.example.com/authorize",
    "alb_oidc_token_endpoint": "https://login.example.com/token",
    "alb_oidc_user_info_endpoint": "https://login.example.com/userinfo",
    "alb_oidc_client_id": "mcp-orchestrator",
    "alb_oidc_client_secret": "settings-secret-42",
}


def test_controls_from_the_settings_are_put_on_every_rule_and_then_left_alone(aws, start_agent):
    agent = start_agent(apply_wait=10.0, alb_source_cidrs="10.0.0.0/8, 192.0.2.7/32", **OIDC_SETTINGS)
    first = apply(agent, {"time": 8001, "git": 8002})
    assert first.errors == []
    for sid in ("time", "git"):
        raw = our_rule_raw(aws, sid)
        (source_ip,) = [c for c in raw["Conditions"] if c["Field"] == "source-ip"]
        assert sorted(source_ip["SourceIpConfig"]["Values"]) == ["10.0.0.0/8", "192.0.2.7/32"]
        assert [a["Type"] for a in raw["Actions"]] == ["authenticate-oidc", "forward"]
        config = raw["Actions"][0]["AuthenticateOidcConfig"]
        assert config["ClientId"] == "mcp-orchestrator"
        assert config["OnUnauthenticatedRequest"] == "deny"
        assert config["Issuer"] == "https://login.example.com"
    before = {sid: our_rule_raw(aws, sid) for sid in ("time", "git")}
    for _ in range(3):
        again = apply(agent, {"time": 8001, "git": 8002})
        assert again.errors == [] and again.changes == [], again.changes
    assert {sid: our_rule_raw(aws, sid) for sid in ("time", "git")} == before
    with agent.client() as c:
        state = c.call("snapshot.get").state
    assert "settings-secret-42" not in repr(state)
    assert "settings-secret-42" not in agent.output()
    assert agent.stop() == 0


class HungEndpoint:
    """A TCP listener that accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.held.append(conn)

    @property
    def accepted(self) -> int:
        return len(self.held)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def hung_endpoint():
    endpoint = HungEndpoint()
    yield endpoint
    endpoint.close()


def test_a_hung_aws_endpoint_shows_as_degraded_within_seconds(aws, start_agent, hung_endpoint):
    # Several attempts per call: degraded must not wait for all of them to time out.
    agent = start_agent(hung_endpoint.url, api_timeout_seconds="1.5", api_max_attempts="5")
    started = time.monotonic()
    wait_for(lambda: hung_endpoint.accepted, 10, "the agent to connect to the endpoint")

    def degraded_state():
        asked = time.monotonic()
        with agent.client(timeout_ms=1000) as c:
            state = c.call("snapshot.get").state
        assert time.monotonic() - asked < 0.5  # the socket loop never waits on AWS
        return state if state.get("degraded") else None

    state = wait_for(degraded_state, 6, "the agent to report itself degraded")
    assert time.monotonic() - started < 6
    assert state["failure"]["code"] == "unreachable"
    assert "not answered" in state["failure"]["message"]
    for _ in range(5):  # and it keeps answering promptly while AWS hangs
        asked = time.monotonic()
        with agent.client(timeout_ms=1000) as c:
            c.request("ping")
            assert c.call("routes.status", RoutesStatusQuery()).status.degraded is True
        assert time.monotonic() - asked < 0.5
    assert agent.stop() == 0
