"""Pure parts of the operator CLI: LiteLLM names and YAML, the status table, the
one-shot verdict, the bare (original) command form."""

from __future__ import annotations

import yaml

from common.litellm import LiteLLMServer, litellm_names, render_mcp_servers
from services.cli.main import with_default_command
from services.cli.status_view import judge, render_plan, render_status


def test_litellm_names_have_no_dashes_or_dots_and_stay_unique():
    names = litellm_names(["aws-docs", "aws_docs", "time.v2", "9lives"])
    assert names == {"9lives": "mcp_9lives", "aws-docs": "aws_docs", "aws_docs": "aws_docs_2", "time.v2": "time_v2"}


def test_litellm_block_is_valid_yaml_in_litellm_shape():
    text = render_mcp_servers(
        [
            LiteLLMServer("my-time", "https://mcp.example.com/mcp/my-time/mcp"),
            LiteLLMServer("git", "http://127.0.0.1:8001/mcp/git/mcp"),
        ],
        comments=["made by a test"],
    )
    data = yaml.safe_load(text)
    assert data == {
        "mcp_servers": {
            "git": {"url": "http://127.0.0.1:8001/mcp/git/mcp", "transport": "http"},
            "my_time": {"url": "https://mcp.example.com/mcp/my-time/mcp", "transport": "http"},
        }
    }
    assert yaml.safe_load(render_mcp_servers([])) == {"mcp_servers": {}}


def state(servers, **kw):
    base = {
        "config": {"path": "/x/mcp.config.json", "ok": True},
        "agents": {"container-agent": "available", "alb-agent": "available"},
        "routing": {"simulated": True},
        "reconciles": 5,
        "servers": servers,
    }
    base.update(kw)
    return base


RUNNING = {
    "server_id": "a",
    "status": "running",
    "route": "routed",
    "bridge": "ready",
    "host_port": 8000,
    "container_id": "0123456789abcdef",
    "health": "ready",
    "url": "http://127.0.0.1:8000/mcp/a/mcp",
    "restarts": 0,
}
LOOPING = {
    "server_id": "b",
    "status": "crash-looping",
    "route": "routed",
    "exit_code": 3,
    "failures": 4,
    "backoff_seconds": 4.0,
    "last_error": "exited at once",
    "stderr_tail": ["boom"],
    "host_port": 8001,
}


def test_status_table_shows_servers_and_problems():
    text = render_status(state([RUNNING, LOOPING]))
    assert "SERVER" in text and "0123456789ab " in text and "simulated" in text
    assert "crash-looping: exit code 3" in text and "stderr: boom" in text
    assert "http://127.0.0.1:8000/mcp/a/mcp" in text
    bad = render_status(state([], config={"path": "p", "ok": False, "kept_last_good": True, "errors": ["not JSON"]}))
    assert "last good" in bad and "not JSON" in bad


def test_plan_rendering():
    assert "nothing to do" in render_plan([])
    assert "create" in render_plan([{"action": "create", "server_id": "a", "reason": "new"}])


def test_one_shot_verdicts():
    assert not judge(state([RUNNING]), baseline=5).done  # no pass since the start
    ok = judge(state([RUNNING]), baseline=4)
    assert ok.done and ok.converged
    waiting = judge(state([{**RUNNING, "route": "pending"}]), baseline=0)
    assert not waiting.done
    failed = judge(state([RUNNING, LOOPING]), baseline=2)
    assert failed.done and not failed.converged and "exit code 3" in failed.reasons[0]
    agent_down = judge(
        state([RUNNING], agents={"container-agent": "available", "alb-agent": "unavailable"}), baseline=0
    )
    assert not agent_down.done and "alb-agent" in agent_down.reasons[0]


def test_bare_form_means_run():
    assert with_default_command([]) == ["run"]
    assert with_default_command(["--one-shot", "--config", "x"]) == ["run", "--one-shot", "--config", "x"]
    assert with_default_command(["status"]) == ["status"]
    assert with_default_command(["--help"]) == ["--help"]


def test_yaml_special_names_stay_strings():
    yaml = __import__("yaml")
    names = litellm_names(["true", "null", "No", "time"])
    assert names == {"true": "mcp_true", "null": "mcp_null", "No": "mcp_No", "time": "time"}
    text = render_mcp_servers([LiteLLMServer("true", "http://h:1/mcp/true/mcp")])
    assert list(yaml.safe_load(text)["mcp_servers"]) == ["mcp_true"]


def test_status_says_which_managers_control_plane_acts():
    control = {"role": "standby", "hostname": "sw2", "active_node": "sw1", "reason": "another one holds the lease"}
    swarm = {**state([RUNNING]), "cluster": {"engine": "swarm", "control": control}}
    assert "control:  standby on sw2; active: sw1; another one holds the lease" in render_status(swarm)
    control.update(role="active", active_node="sw2")
    assert "control:  active on this node (sw2)" in render_status(swarm)
    assert "control:" not in render_status(state([RUNNING]))


def test_status_says_where_the_replicas_of_a_swarm_service_run():
    swarm = {**RUNNING, "replicas": 3, "replicas_running": 2, "nodes": ["node-a", "node-b"]}
    assert "a: replicas 2/3 running on node-a, node-b" in render_status(state([swarm]))
    assert "replicas" not in render_status(state([RUNNING]))  # one host: one container, nothing to say
