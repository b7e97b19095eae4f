"""mcp.config.json: the original design's file, real configs, and every error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import server_ids
from common.config import load_config

SHARED = Path(__file__).resolve().parents[3] / "shared" / "real-configs"

ORIGINAL = {
    "mcpServers": {
        "example-mcp-server": {
            "command": "docker",
            "args": ["run", "--rm", "--interactive", "--env", "FASTMCP_LOG_LEVEL=ERROR", "mcp/example:latest"],
            "env": {"ADDITIONAL_ENV_VAR": "value"},
            "disabled": False,
            "autoApprove": [],
        }
    }
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "mcp.config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def docker(*args, **extra) -> dict:
    return {"command": "docker", "args": ["run", "-i", "--rm", *args], **extra}


def test_original_design_config_loads_unchanged(tmp_path):
    config = load_config(write(tmp_path, ORIGINAL), environ={})
    assert config.ok, [str(i) for i in config.issues]
    server = config.servers["example-mcp-server"]
    assert server.container_name == "mcp-example-mcp-server"
    assert server.spec.image == "mcp/example:latest"
    assert not server.disabled and server.auto_approve == ()
    # env keys without a matching -e are not passed by docker: a warning says so.
    warnings = [str(i) for i in config.issues if i.severity == "warning"]
    assert any("ADDITIONAL_ENV_VAR" in w for w in warnings), warnings


def test_repository_config_is_valid():
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "mcp.config.json", environ={})
    assert config.ok, [str(i) for i in config.issues]
    assert config.enabled


def test_client_keys_are_kept_and_non_docker_servers_skipped(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "time": docker("mcp/time", alwaysAllow=["get_current_time"], timeout=60, transportType="stdio"),
                    "node-one": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
                    "remote": {"url": "https://example.com/mcp", "type": "http"},
                    "uvx-one": {"command": "uvx", "args": ["mcp-server-git"]},
                }
            },
        ),
        environ={},
    )
    assert config.ok
    assert set(config.servers) == {"time"}
    assert config.servers["time"].client_keys == {
        "alwaysAllow": ["get_current_time"],
        "timeout": 60,
        "transportType": "stdio",
    }
    assert set(config.skipped) == {"node-one", "remote", "uvx-one"}
    assert "not docker" in config.skipped["node-one"]
    assert "remote server" in config.skipped["remote"]
    assert all(i.severity == "info" for i in config.issues if i.server_id != "time")


def test_docker_container_run_and_full_path_are_docker(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "a": {"command": "/usr/bin/docker", "args": ["container", "run", "-i", "mcp/time"]},
                }
            },
        ),
        environ={},
    )
    assert config.ok and config.servers["a"].spec.image == "mcp/time"


def test_one_bad_server_leaves_the_others_valid(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "good": docker("mcp/time"),
                    "bad": docker("--frobnicate", "mcp/time"),
                }
            },
        ),
        environ={},
    )
    assert not config.ok
    assert set(config.servers) == {"good"} and config.invalid == ("bad",)
    assert all(i.server_id == "bad" for i in config.errors)


def test_disabled_server_problems_only_warn(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "off": docker("-e", "NOT_SET_ANYWHERE", "mcp/time", disabled=True),
                }
            },
        ),
        environ={},
    )
    assert config.ok
    assert any("(disabled)" in str(i) and i.severity == "warning" for i in config.issues)


def test_bare_env_resolves_from_block_then_process_env(tmp_path):
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "s": docker(
                        "-e", "FROM_BLOCK", "-e", "FROM_PROCESS", "mcp/time", env={"FROM_BLOCK": "block-value"}
                    ),
                }
            },
        ),
        environ={"FROM_PROCESS": "process-value", "FROM_BLOCK": "ignored"},
    )
    assert config.ok
    env = {k: v.reveal() for k, v in config.servers["s"].spec.env}
    assert env["FROM_BLOCK"] == "block-value" and env["FROM_PROCESS"] == "process-value"


BAD = [
    ("bad json", '{"mcpServers": {"a": {"command": "docker" "args": []}}}', "not valid JSON at line 1"),
    ("json comment", '{\n  // a comment\n  "mcpServers": {}\n}', "JSON does not allow comments"),
    ("trailing comma", '{"mcpServers": {"a": {"command": "docker"},\n}\n}', "trailing comma"),
    ("top-level array", "[]", "the top level must be a JSON object"),
    ("no mcpServers", {"servers_x": {}}, 'no "mcpServers" object'),
    ("vs code key", {"servers": {}}, 'rename it to "mcpServers"'),
    ("mcpServers list", {"mcpServers": []}, '"mcpServers" must be an object'),
    (
        "duplicate id",
        '{"mcpServers": {"a": {"command": "docker", "args": ["run", "x"]}, '
        '"a": {"command": "docker", "args": ["run", "y"]}}}',
        "'a' appears twice",
    ),
    ("entry not object", {"mcpServers": {"a": "docker run x"}}, "must be a JSON object"),
    ("id with space", {"mcpServers": {"my server": docker("x")}}, "the server id must start"),
    ("id with slash", {"mcpServers": {"a/b": docker("x")}}, "URL path"),
    ("id starting with dot", {"mcpServers": {".hidden": docker("x")}}, "must start with a letter or digit"),
    ("id too long", {"mcpServers": {"a" * 101: docker("x")}}, "101 characters long"),
    (
        "case clash",
        {"mcpServers": {"Time": docker("x"), "time": docker("x")}},
        "differs from server 'Time' only in letter case",
    ),
    ("no command", {"mcpServers": {"a": {"args": ["run", "x"]}}}, '"command" is missing'),
    (
        "args not list",
        {"mcpServers": {"a": {"command": "docker", "args": "run x"}}},
        '"args" must be an array of strings',
    ),
    (
        "args with number",
        {"mcpServers": {"a": {"command": "docker", "args": ["run", 5]}}},
        '"args" must be an array of strings',
    ),
    (
        "not run",
        {"mcpServers": {"a": {"command": "docker", "args": ["exec", "x"]}}},
        "must start with \"run\" (as in docker run ...), not 'exec'",
    ),
    ("empty args", {"mcpServers": {"a": {"command": "docker", "args": []}}}, "not 'nothing'"),
    ("env not object", {"mcpServers": {"a": docker("x", env=["A=1"])}}, '"env" must be an object'),
    ("env number", {"mcpServers": {"a": docker("x", env={"PORT": 8080})}}, "env PORT must be a string"),
    (
        "env bad name",
        {"mcpServers": {"a": docker("x", env={"MY-VAR X": "1"})}},
        "is not a valid environment variable name",
    ),
    ("disabled string", {"mcpServers": {"a": docker("x", disabled="yes")}}, '"disabled" must be true or false'),
    (
        "autoApprove string",
        {"mcpServers": {"a": docker("x", autoApprove="all")}},
        '"autoApprove" must be an array of strings',
    ),
    ("unknown flag", {"mcpServers": {"a": docker("--frobnicate", "x")}}, "--frobnicate"),
    ("unresolvable -e", {"mcpServers": {"a": docker("-e", "NOWHERE_TO_BE_FOUND", "x")}}, "NOWHERE_TO_BE_FOUND"),
    (
        "publish in range",
        {"mcpServers": {"a": docker("-p", "8500:80", "x")}},
        "lie in the orchestrator's port range 8000-9000",
    ),
    (
        "http port",
        {"mcpServers": {"a": docker("x", orchestrator={"http": {"port": "80"}})}},
        '"orchestrator.http.port" must be the container port',
    ),
    (
        "orchestrator unknown",
        {"mcpServers": {"a": docker("x", orchestrator={"mode": "http"})}},
        '"orchestrator" must be an object with "http" and/or "replicas"',
    ),
]


@pytest.mark.parametrize("data,expected", [(d, e) for _, d, e in BAD], ids=[b[0] for b in BAD])
def test_bad_config_gives_specific_error(tmp_path, data, expected):
    config = load_config(write(tmp_path, data), environ={})
    assert not config.ok
    messages = [str(i) for i in config.errors]
    assert any(expected in m for m in messages), messages


def test_missing_file(tmp_path):
    config = load_config(tmp_path / "nope.json", environ={})
    assert not config.readable and "file not found" in str(config.errors[0])


def test_error_names_the_server_and_flag(tmp_path):
    config = load_config(write(tmp_path, {"mcpServers": {"weather": docker("--frobnicate", "x")}}), environ={})
    (issue,) = config.errors
    assert issue.server_id == "weather" and issue.flag == "--frobnicate"
    assert str(issue).startswith("server 'weather': --frobnicate: ")


@pytest.mark.parametrize(
    "server_id", ["github", "example-mcp-server", "awslabs.aws-documentation-mcp-server", "my_server.v2", "A1"]
)
def test_real_server_ids_are_accepted(server_id):
    assert server_ids.problem(server_id) is None


def test_secret_canary_never_leaks(tmp_path):
    canary = "canary-SECRET-4f9a1c"
    config = load_config(
        write(
            tmp_path,
            {
                "mcpServers": {
                    "ok": docker("-e", "TOKEN", "mcp/time", env={"TOKEN": canary, "UNUSED": canary}),
                    "bad": docker("-e", "TOKEN", "--frobnicate", "mcp/time", env={"TOKEN": canary}),
                    "typed": docker("mcp/time", env={"TOKEN": 12345}),
                }
            },
        ),
        environ={},
    )
    text = json.dumps(config.public_dict()) + repr(config) + "".join(map(str, config.issues))
    assert canary not in text and "12345" not in text
    assert "TOKEN" in json.dumps(config.public_dict())  # the name is shown


REAL_CONFIGS = sorted(SHARED.glob("*.json")) if SHARED.exists() else []


@pytest.mark.skipif(not REAL_CONFIGS, reason="shared real configs not present")
@pytest.mark.parametrize("path", REAL_CONFIGS, ids=[p.stem for p in REAL_CONFIGS])
def test_real_published_configs_load_deliberately(tmp_path, path):
    """Each published config is accepted, or rejected with a message naming the problem."""
    data = json.loads(path.read_text())["config"]
    # Values that `-e NAME` expects from the client's environment.
    environ = {
        "LOCAL_TIMEZONE": "UTC",
        "BRAVE_API_KEY": "k",
        "SLACK_BOT_TOKEN": "t",
        "SLACK_TEAM_ID": "T1",
        "SLACK_CHANNEL_IDS": "C1",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
        "AWS_SESSION_TOKEN": "x",
        "GITLAB_PERSONAL_ACCESS_TOKEN": "g",
        "GITLAB_API_URL": "https://gitlab.example.com",
        "TFE_TOKEN": "t",
        "TFE_ADDRESS": "https://tfe.example.com",
    }
    config = load_config(write(tmp_path, data), environ=environ)
    assert config.readable
    for sid in data["mcpServers"]:
        assert sid in config.servers or sid in config.invalid or sid in config.skipped
        if sid in config.invalid:
            errors = [i for i in config.errors if i.server_id == sid]
            assert errors and all(len(e.message) > 20 for e in errors)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    path = tmp_path / "mcp.config.json"
    path.write_text('{"mcpServers": ' + "[" * 30000 + "]" * 30000 + "}")
    config = load_config(path)
    assert not config.readable
    assert any("nested too deeply" in issue.message for issue in config.errors)


def test_replicas_are_read_and_checked(tmp_path):
    config = load_config(
        write(tmp_path, {"mcpServers": {"a": docker("x", orchestrator={"replicas": 3}), "b": docker("y")}}),
        environ={},
    )
    assert config.ok
    assert config.servers["a"].replicas == 3 and config.servers["b"].replicas is None
    # On one host a count above 1 means nothing: said, not an error.
    assert any("engine = swarm" in str(i) for i in config.issues if i.severity == "info")
    for bad in (0, 101, "2", True, 1.5):
        broken = load_config(write(tmp_path, {"mcpServers": {"a": docker("x", orchestrator={"replicas": bad})}}))
        assert any('"orchestrator.replicas" must be a whole number from 1 to 100' in str(i) for i in broken.errors)


def test_replicas_do_not_change_the_spec_hash(tmp_path):
    """A change of replicas scales a service; it is not a new spec."""
    one = load_config(write(tmp_path, {"mcpServers": {"a": docker("x", orchestrator={"replicas": 1})}}), environ={})
    three = load_config(write(tmp_path, {"mcpServers": {"a": docker("x", orchestrator={"replicas": 3})}}), environ={})
    assert one.servers["a"].spec_hash == three.servers["a"].spec_hash


def test_swarm_engine_refuses_what_a_service_cannot_express(tmp_path):
    data = {"mcpServers": {"priv": docker("--privileged", "x"), "fine": docker("--memory", "64m", "x")}}
    on_one_host = load_config(write(tmp_path, data), environ={})
    assert on_one_host.ok and set(on_one_host.servers) == {"priv", "fine"}
    swarm = load_config(write(tmp_path, data), environ={}, engine="swarm")
    assert set(swarm.servers) == {"fine"} and swarm.invalid == ("priv",)
    (error,) = swarm.errors
    assert error.server_id == "priv" and error.flag == "--privileged" and "engine = swarm" in error.message
