"""What each server's status says, from the facts the scheduler holds."""

from __future__ import annotations

from dataclasses import replace

from common.config import load_config
from common.protocol import ContainerInfo, RouteInfo, RoutingStatus
from common.settings import Settings
from services.scheduler.backoff import BackoffPolicy, CrashRecord
from services.scheduler.server_state import ServerFacts, public_url, server_state

POLICY = BackoffPolicy()


def config(tmp_path, disabled=False):
    path = tmp_path / "mcp.config.json"
    path.write_text(
        '{"mcpServers": {"a": {"command": "docker", "args": ["run", "-i", "-e", '
        '"TOKEN", "img"], "env": {"TOKEN": "s3cr3t-value"}, "disabled": %s}}}' % ("true" if disabled else "false")
    )
    return load_config(path, environ={}).servers["a"]


def running(**kw):
    return ContainerInfo(
        server_id="a",
        container_id="c1",
        state="running",
        bridge="ready",
        host_port=8000,
        started_at="2026-01-01T00:00:00Z",
        **kw,
    )


def state(facts):
    return server_state(facts, Settings(), POLICY, now=100.0)


def test_running_routed_server(tmp_path):
    s = state(
        ServerFacts(
            "a",
            config(tmp_path),
            port=8000,
            container=running(),
            containers_known=True,
            routes_known=True,
            route_wanted=True,
            route=RouteInfo(server_id="a", port=8000, rule_arn="r", target_group_arn="t", priority=10000),
        )
    )
    assert (s.status, s.health, s.route, s.route_priority) == ("running", "ready", "routed", 10000)
    assert s.env_names == ["TOKEN"] and "s3cr3t" not in repr(s)
    assert s.started_at and s.exit_code is None


def test_statuses_for_each_situation(tmp_path):
    server = config(tmp_path)
    exited = ContainerInfo(
        server_id="a", container_id="c1", state="exited", exit_code=3, finished_at="t", stderr_tail=["boom"]
    )
    looping = CrashRecord(failures=3, next_start_at=104.0, delay=4.0, exit_code=3, last_failure="exit|c1|t|3")
    cases = {
        "unknown": ServerFacts("a", server),
        "pending": ServerFacts("a", server, port=8000, containers_known=True),
        "error": ServerFacts("a", server, port_error="no free host port", containers_known=True),
        "crash-looping": ServerFacts("a", server, port=8000, container=exited, containers_known=True, crash=looping),
        "stopped": ServerFacts("a", server, port=8000, container=exited, containers_known=True, held=True),
        "stopping": ServerFacts("a", server, port=8000, container=running(), containers_known=True, held=True),
        "starting": ServerFacts("a", server, port=8000, containers_known=True, container=running(pending="ensure")),
        "disabled": ServerFacts("a", config(tmp_path, disabled=True), containers_known=True),
        "invalid": ServerFacts("a", None, protected=True, containers_known=True),
        "removed": ServerFacts("a", None, container=running(), containers_known=True),
    }
    assert {name: state(f).status for name, f in cases.items()} == {n: n for n in cases}
    loop = state(cases["crash-looping"])
    assert (loop.exit_code, loop.backoff_seconds, loop.failures) == (3, 4.0, 3)
    assert loop.next_restart_at == 104.0 and loop.stderr_tail == ["boom"]
    assert state(cases["removed"]).removed and not state(cases["invalid"]).removed
    assert state(cases["error"]).last_error == "no free host port"
    unusable = state(ServerFacts("a", None, container=running(), containers_known=True, config_usable=False))
    assert unusable.status == "unknown" and not unusable.removed


def test_public_url():
    assert public_url(Settings(), "a", 8000) == "http://127.0.0.1:8000/mcp/a/mcp"
    s = Settings()
    s = replace(s, service=replace(s.service, public_base_url="https://mcp.example.com/"))
    assert public_url(s, "a", None) == "https://mcp.example.com/mcp/a/mcp"


def test_an_alb_agent_restart_forgets_its_whole_view():
    from services.scheduler.model import Model

    model = Model(Settings())
    model.observe_routes(
        [RouteInfo(server_id="a", port=8000, rule_arn="r", target_group_arn="t", priority=10000)],
        status={"listener_arn": "old", "rules": [{"priority": 10000}]},
    )
    model.forget("routes")
    assert model.routes is None and model.routing_error is None
    assert model.routing_status == RoutingStatus()  # the routing page must not show the old agent's rules
