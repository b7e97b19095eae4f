"""Every process serves Prometheus metrics on its `[metrics]` address: the real four
processes are scraped over HTTP after real work (a server started and called through the
bridge with the official SDK client, AWS calls against the stand-in, dashboard logins
and an action), and the counters moved by exactly that work."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard.processes import DashboardUser
from tests.harness.ports import free_port
from tests.harness.servers import docker_server
from tests.harness.waiting import wait_for
from tests.scheduler.support import Orchestrator

pytest.importorskip("mcp.client.client")

from mcp.client.client import Client  # noqa: E402

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PASSWORD = "metrics-test-password-5821"
PROCESSES = ("scheduler", "container-agent", "alb-agent", "dashboard")


def scrape(port: int) -> tuple[str, Counter]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    values: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, values


def total(values: Counter, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in values.items() if n == name and wanted <= set(found))


@pytest.fixture(scope="module")
def observed(docker_client, time_server_image):
    ports = {name: free_port() for name in PROCESSES}
    orch = Orchestrator(
        docker_client,
        settings={
            "metrics": {name.replace("-", "_"): f"127.0.0.1:{port}" for name, port in ports.items()},
            "dashboard": {"password": PASSWORD},
        },
    )
    sid = f"{orch.cluster}-time"
    orch.write_config({sid: docker_server(time_server_image)})
    orch.start_all(dashboard=True)
    yield orch, ports, sid
    orch.close()


def test_each_process_is_scraped_and_counts_what_it_did(observed):
    orch, ports, sid = observed
    servers = orch.wait_converged({sid}, timeout=120)
    for name in PROCESSES:
        assert f"Prometheus metrics on http://127.0.0.1:{ports[name]}/metrics" in orch.output(name), name
    _, agent_before = scrape(ports["container-agent"])

    async def calls() -> None:
        url = f"http://127.0.0.1:{servers[sid]['host_port']}/mcp/{sid}/mcp"
        async with Client(url, mode="legacy") as client:
            for _ in range(3):
                await client.call_tool("get_current_time", {"timezone": "UTC"})
            await client.call_tool("get_current_time", {"timezone": "Nowhere/Atlantis"})

    asyncio.run(asyncio.wait_for(calls(), 60))
    _, agent = scrape(ports["container-agent"])
    calls_of = "mcp_bridge_tool_calls_total"
    assert (
        total(agent, calls_of, server_id=sid, outcome="ok") - total(agent_before, calls_of, server_id=sid, outcome="ok")
        == 3
    )
    assert (
        total(agent, calls_of, server_id=sid, outcome="tool_error")
        - total(agent_before, calls_of, server_id=sid, outcome="tool_error")
        == 1
    )
    assert total(agent, "mcp_bridge_server_up", server_id=sid) == 1
    assert total(agent, "process_resident_memory_bytes") > 0

    # The scheduler: the pass that started the server, the server running, both agents up.
    _, scheduler = scrape(ports["scheduler"])
    assert total(scheduler, "mcp_orchestrator_scheduler_reconciles_total", result="ok") >= 1
    assert total(scheduler, "mcp_orchestrator_scheduler_reconcile_duration_seconds_count") >= 1
    assert total(scheduler, "mcp_orchestrator_scheduler_container_steps_total", action="create", result="ok") >= 1
    assert total(scheduler, "mcp_orchestrator_scheduler_servers", status="running") == 1
    assert total(scheduler, "mcp_orchestrator_scheduler_agent_up", agent="container-agent") == 1
    assert total(scheduler, "mcp_orchestrator_scheduler_agent_up", agent="alb-agent") == 1

    # The alb-agent: its calls to the AWS stand-in, each timed.
    _, alb = scrape(ports["alb-agent"])
    aws_ok = total(alb, "mcp_orchestrator_alb_aws_calls_total", outcome="ok")
    assert aws_ok >= 1 and total(alb, "mcp_orchestrator_alb_aws_calls_total", operation="CreateTargetGroup") >= 1
    assert total(alb, "mcp_orchestrator_alb_aws_call_duration_seconds_count") == total(
        alb, "mcp_orchestrator_alb_aws_calls_total"
    )

    # The dashboard: one failed login, one good one, one action.
    _, dash_before = scrape(ports["dashboard"])
    wrong = DashboardUser(orch.dashboard_port).http.post(
        f"http://127.0.0.1:{orch.dashboard_port}/monitor/api/login",
        json={"username": "admin", "password": "not-the-password"},
        timeout=5,
    )
    assert wrong.status_code == 401
    user = DashboardUser(orch.dashboard_port).login(PASSWORD)
    assert user.act("sync").status_code == 200
    text, dash = scrape(ports["dashboard"])
    logins = "mcp_orchestrator_dashboard_logins_total"
    assert total(dash, logins, outcome="failed") - total(dash_before, logins, outcome="failed") == 1
    assert total(dash, logins, outcome="ok") - total(dash_before, logins, outcome="ok") == 1
    actions = "mcp_orchestrator_dashboard_actions_total"
    assert (
        total(dash, actions, action="sync", outcome="ok") - total(dash_before, actions, action="sync", outcome="ok")
        == 1
    )
    for name in PROCESSES:
        assert PASSWORD not in scrape(ports[name])[0]

    # The same calls on the dashboard's JSON twins: asked by the dashboard, passed on
    # by the scheduler, answered by the container-agent from the bridge's numbers.
    t = user.api(f"servers/{sid}")["traffic"]
    by_tool = {row["tool"]: row for row in t["tools"]}
    assert (by_tool["get_current_time"]["calls"], by_tool["get_current_time"]["errors"]) == (4, 1)
    assert [c["outcome"] for c in t["recent"] if c["method"] == "tools/call"] == ["tool_error", "ok", "ok", "ok"]
    assert {tool["name"] for tool in t["catalog"]["tools"]} == {"get_current_time", "convert_time"}
    row = next(r for r in user.api("overview")["servers"] if r["server_id"] == sid)
    assert row["traffic"]["errors"] == 1 and row["traffic"]["calls"] == t["calls"] >= 4

    # Without a container-agent the pages say why, at once, and show the rest.
    orch.stop("container-agent")
    wait_for(
        lambda: "container-agent" in (user.api("overview")["traffic"]["error"] or ""),
        30,
        "the dashboard to say the container-agent is not there",
    )
    assert user.api(f"servers/{sid}")["traffic"] is None


def test_a_port_in_use_is_reported_and_the_process_serves_on(docker_client, time_server_image):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        orch = Orchestrator(docker_client, settings={"metrics": {"container_agent": f"127.0.0.1:{port}"}})
        try:
            sid = f"{orch.cluster}-time"
            orch.write_config({sid: docker_server(time_server_image)})
            orch.start_all()
            orch.wait_converged({sid}, timeout=120)
            wait_for(
                lambda: "cannot serve /metrics on" in orch.output("container-agent"),
                10,
                "the error about the port",
            )
            assert "[metrics] container_agent" in orch.output("container-agent")
            assert "Prometheus metrics on" not in orch.output("scheduler")  # off unless configured
        finally:
            orch.close()
