"""Unit tests of a server's spec as a Swarm service: every flag a service cannot express
is one error naming it, the rest maps to the Engine API's service definition, the
orchestrator's policy (stdin, labels, replicas, placement, restarts, rolling updates) is
added, and no env value is shown anywhere but in the definition itself. Pure logic; the
real engine's view of such a service is in tests/scheduler/test_swarm_services.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.docker_args import orchestrated, parse_docker_run
from common.secrets import Secret
from common.swarm_service import ServicePolicy, service_definition, service_issues, service_name

HERE = Path(__file__).resolve().parent
REAL_CONFIGS = HERE / "parity" / "real-configs"
OURS = {"mcp-orchestrator.managed": "true", "mcp-orchestrator.server-id": "time"}


def spec_of(*args: str, env=None):
    parsed = parse_docker_run(list(args), env_block=env or {}, process_env={}, base_dir=HERE)
    assert parsed.spec is not None, parsed.issues
    spec, _ = orchestrated(parsed.spec)
    return spec


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--privileged"], "--privileged"),
        (["--device", "/dev/fuse"], "--device"),
        (["--gpus", "all"], "--gpus"),
        (["--ipc", "host"], "--ipc"),
        (["--pid", "host"], "--pid"),
        (["--uts", "host"], "--uts"),
        (["--userns", "host"], "--userns"),
        (["--cgroupns", "host"], "--cgroupns"),
        (["--runtime", "runsc"], "--runtime"),
        (["-m", "256m", "--memory-swap", "512m"], "--memory-swap"),
        (["--memory-swappiness", "10"], "--memory-swappiness"),
        (["--oom-kill-disable"], "--oom-kill-disable"),
        (["--oom-score-adj", "100"], "--oom-score-adj"),
        (["--cpu-shares", "512"], "--cpu-shares"),
        (["--cpu-period", "100000"], "--cpu-period"),
        (["--cpu-quota", "50000"], "--cpu-quota"),
        (["--cpuset-cpus", "0"], "--cpuset-cpus"),
        (["--cpuset-mems", "0"], "--cpuset-mems"),
        (["--shm-size", "64m"], "--shm-size"),
        (["--domainname", "example.org"], "--domainname"),
        (["--platform", "linux/amd64"], "--platform"),
        (["--security-opt", "no-new-privileges"], "--security-opt"),
        (["-p", "127.0.0.1:9999:80"], "-p"),
        (["--entrypoint", ""], "--entrypoint"),
        (["--tmpfs", "/scratch:noexec,size=1m"], "--tmpfs"),
        (["--tmpfs", "/scratch:size=lots"], "--tmpfs"),
    ],
)
def test_a_flag_a_service_cannot_express_is_one_error_naming_it(args, flag):
    issues = service_issues(spec_of("-i", "--rm", *args, "mcp/time"))
    errors = [i for i in issues if i.severity == "error"]
    assert [i.flag for i in errors] == [flag], issues
    assert "engine = swarm" in errors[0].message


def test_a_plain_server_needs_nothing_a_service_lacks():
    assert service_issues(spec_of("-i", "--rm", "mcp/time")) == ()


def test_everything_a_service_can_express_arrives_in_its_definition():
    spec = spec_of(
        "-i",
        "--rm",
        "-e",
        "TOKEN",
        "-e",
        "MODE=fast",
        "-v",
        "/srv/notes:/notes:ro",
        "-v",
        "cache:/cache",
        "--mount",
        "type=tmpfs,target=/run/x,tmpfs-size=1m",
        "--tmpfs",
        "/scratch:size=2m,mode=1777",
        "--add-host",
        "db.internal:10.231.0.99",
        "--dns",
        "10.231.0.53",
        "--dns-search",
        "corp",
        "--dns-option",
        "ndots:1",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "ALL",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--ulimit",
        "nofile=1024:2048",
        "-m",
        "256m",
        "--memory-reservation",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "64",
        "-u",
        "1000:1000",
        "-w",
        "/work",
        "-h",
        "tools",
        "--read-only",
        "--init",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "7",
        "--no-healthcheck",
        "--group-add",
        "audio",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "--network",
        "host",
        "-l",
        "team=tools",
        "--entrypoint",
        "/bin/serve",
        "mcp/time",
        "--local-timezone",
        "UTC",
        env={"TOKEN": Secret("s3cr3t-value-123")},
    )
    assert [i for i in service_issues(spec) if i.severity == "error"] == []
    d = service_definition("time", spec, ServicePolicy(), OURS)
    c = d["task_template"]["ContainerSpec"]
    assert c["Image"] == "mcp/time"
    assert c["Command"] == ["/bin/serve"] and c["Args"] == ["--local-timezone", "UTC"]
    assert c["Env"] == ["TOKEN=s3cr3t-value-123", "MODE=fast"]
    assert c["OpenStdin"] is True and c["TTY"] is False
    # The server's own stop signal and timeout: applied by the agent once it is drained.
    assert c["Labels"] == {
        "team": "tools",
        **OURS,
        "mcp-orchestrator.stop-signal": "SIGINT",
        "mcp-orchestrator.stop-timeout": "7",
    }
    assert c["Mounts"] == [
        {"Type": "bind", "Target": "/notes", "Source": "/srv/notes", "ReadOnly": True},
        {"Type": "volume", "Target": "/cache", "Source": "cache"},
        {"Type": "tmpfs", "Target": "/run/x", "TmpfsOptions": {"SizeBytes": 1024 * 1024}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 2 * 1024 * 1024, "Mode": 0o1777}},
    ]
    assert c["Hosts"] == ["10.231.0.99 db.internal"]
    assert c["DNSConfig"] == {"Nameservers": ["10.231.0.53"], "Search": ["corp"], "Options": ["ndots:1"]}
    assert c["CapabilityAdd"] == ["CAP_NET_ADMIN"] and c["CapabilityDrop"] == ["ALL"]
    assert c["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert c["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert (c["User"], c["Dir"], c["Hostname"]) == ("1000:1000", "/work", "tools")
    assert c["ReadOnly"] is True and c["Init"] is True
    # Swarm stops a task with a signal nobody acts on: the agent drains the replica first.
    assert c["StopSignal"] == "SIGWINCH" and c["StopGracePeriod"] == (30 + 7) * 1_000_000_000
    assert c["Healthcheck"] == {"Test": ["NONE"]}
    assert c["Groups"] == ["audio"]
    task = d["task_template"]
    assert task["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024 * 1024, "Pids": 64},
        "Reservations": {"MemoryBytes": 128 * 1024 * 1024},
    }
    assert task["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "1m"}}
    assert task["Networks"] == [{"Target": "host"}]


def test_the_orchestrator_adds_replicas_placement_restarts_and_rolling_updates():
    policy = ServicePolicy(replicas=3, zone_label="az", max_per_node=1, restart_delay_seconds=2)
    d = service_definition("time", spec_of("-i", "mcp/time"), policy, OURS)
    assert d["name"] == service_name("time") == "mcp-time"
    assert d["labels"] == OURS
    assert d["mode"] == {"Replicated": {"Replicas": 3}}
    assert service_definition("time", spec_of("-i", "mcp/time"), policy, OURS, replicas=1)["mode"] == {
        "Replicated": {"Replicas": 1}
    }
    task = d["task_template"]
    assert task["Placement"] == {
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.az"}}],
        "MaxReplicas": 1,
    }
    assert task["RestartPolicy"] == {"Condition": "any", "Delay": 2_000_000_000, "MaxAttempts": 0}
    assert d["update_config"]["Order"] == "start-first" and d["update_config"]["FailureAction"] == "rollback"
    assert d["rollback_config"]["Order"] == "start-first"
    assert "Networks" not in task and "Resources" not in task
    unbounded = service_definition(
        "time", spec_of("-i", "mcp/time"), ServicePolicy(zone_label="", max_per_node=0), OURS
    )
    assert unbounded["task_template"]["Placement"] == {}


def test_a_user_label_cannot_take_the_place_of_ours():
    spec = spec_of("-i", "-l", "team=x", "mcp/time")
    mine = {"mcp-orchestrator.server-id": "time"}
    c = service_definition("time", spec, ServicePolicy(), mine)["task_template"]["ContainerSpec"]
    assert c["Labels"]["mcp-orchestrator.server-id"] == "time"


def test_no_issue_ever_shows_an_env_value():
    secret = "tok-" + "9" * 24
    spec = spec_of("-i", "-e", "API_KEY", "--privileged", "-p", "9:9", "mcp/time", env={"API_KEY": Secret(secret)})
    for issue in service_issues(spec):
        assert secret not in issue.message and secret[:8] not in issue.message


def test_the_published_configs_either_map_or_name_their_flag():
    """Each of the published real configs: a definition, or errors that name flags."""
    mapped, refused = 0, []
    for path in sorted(REAL_CONFIGS.glob("*.json")):
        for sid, entry in json.loads(path.read_text())["config"]["mcpServers"].items():
            args = entry.get("args", [])
            if entry.get("command") != "docker" or args[:1] != ["run"]:
                continue
            env = {k: Secret(v) for k, v in (entry.get("env") or {}).items() if isinstance(v, str)}
            parsed = parse_docker_run(args[1:], env_block=env, process_env={}, base_dir=REAL_CONFIGS)
            if parsed.spec is None:
                continue
            spec, _ = orchestrated(parsed.spec)
            errors = [i for i in service_issues(spec) if i.severity == "error"]
            if errors:
                assert all(i.flag for i in errors)
                refused.append(f"{path.stem}/{sid}: {', '.join(sorted({i.flag for i in errors}))}")
            else:
                service_definition(sid, spec, ServicePolicy(), OURS)
                mapped += 1
    assert mapped > 0
    print(f"\n{mapped} published servers map to a Swarm service; refused: {refused or 'none'}")


def test_the_policy_comes_from_the_cluster_settings():
    from common.settings import ClusterSettings
    from common.swarm_service import service_policy

    policy = service_policy(ClusterSettings(default_replicas=3, zone_label="az", max_replicas_per_node=0))
    assert (policy.replicas, policy.zone_label, policy.max_per_node) == (3, "az", 0)
    assert service_policy(ClusterSettings()) == ServicePolicy()  # the defaults agree
