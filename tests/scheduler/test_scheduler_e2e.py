"""The scheduler end to end: real scheduler, container-agent and alb-agent processes, real
Docker, the alb-agent's moto stand-in, MCP calls through the bridge.

One set of processes serves the whole module; the tests run in file order and each
starts from the configuration the one before left (they say which).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from common import container_labels as labels
from tests.harness.labels import TEST_LABEL
from tests.harness.servers import docker_server, echo_server
from tests.harness.waiting import wait_for
from tests.scheduler.mcp_http import call_tool, try_call
from tests.scheduler.support import Orchestrator

pytestmark = [pytest.mark.docker, pytest.mark.slow]

P = "s" + uuid.uuid4().hex[:6]  # container names are global: ids unique to this run
CLOCK, ECHO, ECHO2, EXTRA, BOOM, LATE = (f"{P}-{n}" for n in ("clock", "echo", "echo2", "extra", "boom", "late"))
TIME_ARGS = {"timezone": "UTC"}
CLI = [sys.executable, "-m", "services.cli"]


@pytest.fixture(scope="module")
def orch(docker_client, busybox_image, time_server_image):
    o = Orchestrator(docker_client)
    o.images = {"busybox": busybox_image, "time": time_server_image}
    o.base = {
        CLOCK: docker_server(time_server_image),
        ECHO: echo_server(busybox_image, "echo-one"),
        ECHO2: echo_server(busybox_image, "echo-two"),
    }
    o.write_config(o.base)
    o.start_all()
    yield o
    o.close()


def port_of(servers: dict, sid: str) -> int:
    return servers[sid]["host_port"]


def echo_answer(port: int, sid: str):
    result = try_call(port, sid, "anything", {})
    return result["content"][0]["text"] if result else None


def test_three_servers_converge_and_answer_through_the_bridge(orch):
    servers = orch.wait_converged({CLOCK, ECHO, ECHO2})
    lo, hi = orch.port_range
    ports = {sid: port_of(servers, sid) for sid in (CLOCK, ECHO, ECHO2)}
    assert len(set(ports.values())) == 3 and all(lo <= p <= hi for p in ports.values())
    result = call_tool(ports[CLOCK], CLOCK, "get_current_time", TIME_ARGS)
    assert result["isError"] is False and "UTC" in result["content"][0]["text"]
    assert echo_answer(ports[ECHO], ECHO) == "echo-one"
    # Routes in the stand-in: /mcp/{id} and /mcp/{id}/* for each server.
    rules = orch.rules()
    for sid in (CLOCK, ECHO, ECHO2):
        assert f"/mcp/{sid}" in rules and f"/mcp/{sid}/*" in rules
    # Containers carry the test label and the port the scheduler gave out.
    containers = orch.containers()
    for sid, port in ports.items():
        assert containers[sid].labels[TEST_LABEL] == "1"
        assert containers[sid].labels[labels.HOST_PORT] == str(port)
        assert servers[sid]["url"] == f"http://127.0.0.1:{port}/mcp/{sid}/mcp"
    # Env values stay out of the published state and the scheduler's log.
    assert "echo-one" not in str(orch.status())
    assert "echo-one" not in orch.output("scheduler")


def test_edits_converge_without_restart_and_disturb_nothing_else(orch):
    before = orch.container_ids()
    # add
    config = {**orch.base, EXTRA: echo_server(orch.images["busybox"], "extra-v1")}
    orch.write_config(config)
    servers = orch.wait_converged({CLOCK, ECHO, ECHO2, EXTRA})
    assert echo_answer(port_of(servers, EXTRA), EXTRA) == "extra-v1"
    assert {k: v for k, v in orch.container_ids().items() if k in before} == before
    # disable
    config[ECHO2] = echo_server(orch.images["busybox"], "echo-two", disabled=True)
    orch.write_config(config)
    servers = orch.wait_converged({CLOCK, ECHO, EXTRA}, absent={ECHO2})
    assert servers[ECHO2]["status"] == "disabled"
    assert ECHO2 not in orch.container_ids()
    assert f"/mcp/{ECHO2}" not in orch.rules()
    # change: only that server's container is replaced, and the new spec answers
    extra_id = orch.container_ids()[EXTRA]
    config[EXTRA] = echo_server(orch.images["busybox"], "extra-v2")
    orch.write_config(config)
    wait_for(lambda: orch.container_ids().get(EXTRA) not in (None, extra_id), 60, "the changed server's new container")
    servers = orch.wait_converged({CLOCK, ECHO, EXTRA})
    wait_for(lambda: echo_answer(port_of(servers, EXTRA), EXTRA) == "extra-v2", 30, "the new spec to answer")
    ids = orch.container_ids()
    assert ids[CLOCK] == before[CLOCK] and ids[ECHO] == before[ECHO]
    # remove
    del config[EXTRA]
    orch.write_config(config)
    orch.wait_converged({CLOCK, ECHO}, absent={EXTRA})
    wait_for(lambda: EXTRA not in orch.servers(), 30, "the removed server to leave the status")
    assert EXTRA not in orch.container_ids() and f"/mcp/{EXTRA}" not in orch.rules()
    assert {k: orch.container_ids()[k] for k in (CLOCK, ECHO)} == {k: before[k] for k in (CLOCK, ECHO)}
    orch.base = config


def test_a_killed_container_serves_again(orch, docker_client):
    servers = orch.wait_converged({CLOCK, ECHO})
    port = port_of(servers, CLOCK)
    restarts = servers[CLOCK]["restarts"]
    docker_client.containers.get(orch.container_ids()[CLOCK]).kill()
    killed = time.monotonic()
    wait_for(lambda: orch.servers()[CLOCK]["restarts"] > restarts, 30, "the restart to be seen")
    wait_for(lambda: try_call(port, CLOCK, "get_current_time", TIME_ARGS), 30, "the time server to answer again")
    print(f"\nkilled container served again after {time.monotonic() - killed:.2f} s")


def test_a_crashing_server_backs_off_and_the_others_are_unaffected(orch):
    before = orch.container_ids()
    config = {**orch.base, BOOM: docker_server(orch.images["busybox"], "sh", "-c", "echo boom >&2; exit 3")}
    orch.write_config(config)
    seen: list[float] = []

    def growing():
        s = orch.servers().get(BOOM) or {}
        if s.get("status") == "crash-looping" and s.get("backoff_seconds"):
            if not seen or s["backoff_seconds"] > seen[-1]:
                seen.append(s["backoff_seconds"])
        return len(seen) >= 3 and s

    boom = wait_for(growing, 90, "a crash loop with a growing back-off")
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert boom["exit_code"] == 3 and boom["failures"] >= 3
    assert any("boom" in line for line in boom["stderr_tail"])
    assert boom["next_restart_at"] is not None
    servers = orch.wait_converged({CLOCK, ECHO})
    assert {k: orch.container_ids()[k] for k in (CLOCK, ECHO)} == {k: before[k] for k in (CLOCK, ECHO)}
    assert try_call(port_of(servers, CLOCK), CLOCK, "get_current_time", TIME_ARGS)
    plan = orch.request("control.plan")
    assert any(step.action == "wait" and step.server_id == BOOM for step in plan.steps)
    orch.write_config(orch.base)
    orch.wait_converged({CLOCK, ECHO}, absent={BOOM})


def test_an_invalid_config_changes_nothing_until_fixed(orch):
    servers = orch.wait_converged({CLOCK, ECHO})
    before = orch.container_ids()
    rules = orch.rules()
    orch.write_raw_config('{"mcpServers": {')  # cut short
    state = wait_for(
        lambda: (orch.status() or {}).get("config", {}).get("kept_last_good") and orch.status(),
        20,
        "the error to be reported",
    )
    assert state["config"]["ok"] is False and "not valid JSON" in state["config"]["errors"][0]
    assert {s["server_id"]: s["status"] for s in state["servers"]} == {
        CLOCK: "running",
        ECHO: "running",
        ECHO2: "disabled",
    }
    assert orch.request("control.plan").steps == []
    assert try_call(port_of(servers, ECHO), ECHO, "x", {})
    # A server with a bad flag keeps its last good spec; a new bad one is not started.
    bad = dict(orch.base)
    bad[ECHO] = docker_server(orch.images["busybox"], "sh", "-c", "cat")
    bad[ECHO]["args"].insert(1, "--no-such-flag")
    bad[LATE] = dict(bad[ECHO])
    orch.write_config(bad)
    wait_for(lambda: (orch.servers().get(ECHO) or {}).get("config_error"), 20, "the per-server error to be reported")
    assert orch.servers()[LATE]["status"] == "invalid"
    assert orch.container_ids() == before and orch.rules() == rules
    # Fixed, with one more server: reconciling resumes.
    fixed = {**orch.base, LATE: echo_server(orch.images["busybox"], "late")}
    orch.write_config(fixed)
    orch.wait_converged({CLOCK, ECHO, LATE})
    assert orch.status()["config"]["ok"] is True
    assert {k: orch.container_ids()[k] for k in before} == before
    orch.base = fixed


def test_stop_by_hand_holds_until_started(orch):
    orch.wait_converged({CLOCK, ECHO, LATE})
    accepted = orch.action("stop", LATE)
    assert accepted.action == "stop"
    wait_for(lambda: orch.servers()[LATE]["status"] == "stopped", 30, "the hand stop")
    orch.action("sync")
    reconciles = orch.status()["reconciles"]
    wait_for(lambda: orch.status()["reconciles"] > reconciles, 20, "a full reconcile")
    s = orch.servers()[LATE]
    assert s["status"] == "stopped" and s["stopped_by_hand"]
    assert orch.containers()[LATE].status == "exited"
    orch.action("start", LATE)
    orch.wait_converged({CLOCK, ECHO, LATE})
    assert orch.servers()[LATE]["restarts"] == 0  # a stop by hand is no crash


def test_cli_status_plan_and_litellm_config(orch):
    orch.wait_converged({CLOCK, ECHO, LATE})

    def run(*args):
        return subprocess.run(
            [*CLI, *args, "--settings", str(orch.settings)], capture_output=True, text=True, timeout=60, env=orch.env
        )

    status = run("status")
    assert status.returncode == 0, status.stderr
    assert CLOCK in status.stdout and "routed" in status.stdout and "simulated" in status.stdout
    as_json = run("status", "--json")
    assert {s["server_id"] for s in yaml.safe_load(as_json.stdout)["servers"]} >= {CLOCK, ECHO}
    plan = run("plan")
    assert plan.returncode == 0 and "nothing to do" in plan.stdout
    lite = run("litellm-config", "--config", str(orch.config))
    assert lite.returncode == 0, lite.stderr
    block = yaml.safe_load(lite.stdout)["mcp_servers"]
    servers = orch.servers()
    assert set(block) == {s.replace("-", "_") for s in (CLOCK, ECHO, LATE)}
    for sid in (CLOCK, ECHO, LATE):
        entry = block[sid.replace("-", "_")]
        assert entry == {"url": f"http://127.0.0.1:{servers[sid]['host_port']}/mcp/{sid}/mcp", "transport": "http"}


def test_sighup_and_the_reload_action_read_the_file_again(orch):
    checked = orch.status()["config"]["checked_at"]
    orch.procs["scheduler"].signal(signal.SIGHUP)
    wait_for(lambda: orch.status()["config"]["checked_at"] > checked, 20, "a reload on SIGHUP")
    checked = orch.status()["config"]["checked_at"]
    accepted = orch.action("reload")
    assert accepted.action == "reload" and "3 enabled" in accepted.message
    assert orch.status()["config"]["checked_at"] > checked
    assert "SIGHUP" in orch.output("scheduler")


def test_scheduler_kill9_keeps_traffic_and_restart_recreates_nothing(orch):
    servers = orch.wait_converged({CLOCK, ECHO, LATE})
    ids, rules = orch.container_ids(), orch.rules()
    orch.kill9("scheduler")
    for _ in range(3):
        assert call_tool(port_of(servers, CLOCK), CLOCK, "get_current_time", TIME_ARGS)
        assert echo_answer(port_of(servers, ECHO), ECHO) == "echo-one"
    orch.start("scheduler")
    again = orch.wait_converged({CLOCK, ECHO, LATE})
    assert orch.container_ids() == ids
    assert orch.rules() == rules
    assert {sid: again[sid]["host_port"] for sid in ids} == {sid: servers[sid]["host_port"] for sid in ids}
    assert " create (" not in orch.output("scheduler")


def test_alb_agent_kill9_is_reported_and_recovered(orch):
    orch.wait_converged({CLOCK, ECHO, LATE})
    orch.kill9("alb-agent")
    state = wait_for(
        lambda: (orch.status() or {}).get("agents", {}).get("alb-agent") == "unavailable" and orch.status(),
        30,
        "the alb-agent to show unavailable",
    )
    assert state["agents"]["container-agent"] == "available"
    orch.start("alb-agent")
    orch.wait_converged({CLOCK, ECHO, LATE})
    assert orch.status()["agents"]["alb-agent"] == "available"
    # A new stand-in: routes made again. (Under load the scheduler has been seen to report
    # "routed" a moment before the new stand-in lists the rule: wait for it, and say so.)
    wait_for(lambda: f"/mcp/{LATE}" in orch.rules(), 30, "the new stand-in to hold the rule")


def test_cli_without_a_scheduler(orch):
    orch.stop("scheduler")
    env = orch.env
    status = subprocess.run(
        [*CLI, "status", "--settings", str(orch.settings)], capture_output=True, text=True, timeout=60, env=env
    )
    assert status.returncode == 1 and "does not answer" in status.stderr
    lite = subprocess.run(
        [*CLI, "litellm-config", "--settings", str(orch.settings), "--config", str(orch.config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert lite.returncode == 0, lite.stderr
    block = yaml.safe_load(lite.stdout)["mcp_servers"]
    assert set(block) == {s.replace("-", "_") for s in (CLOCK, ECHO, LATE)}
    assert all(v["transport"] == "http" and v["url"].endswith("/mcp") for v in block.values())
