"""settings.conf: defaults, the original design's file, overrides and every error."""

from __future__ import annotations

import textwrap

import pytest

from common.settings import (
    DEFAULT_PASSWORD,
    Settings,
    SettingsError,
    load_settings,
    reference_rows,
)

ORIGINAL = """\
[aws]
region = us-west-2      # AWS region
alb_arn =               # ARN of your Application Load Balancer
listener_arn =          # ARN of your ALB listener
vpc_id =                # ID of your VPC

[service]
reconciliation_interval_seconds = 60  # How often to check and reconcile state
port_range_start = 8000               # Start of port range for container mapping
port_range_end = 9000                 # End of port range for container mapping

[dashboard]
username = admin        # Dashboard login username
password = changeme     # Dashboard login password (change this!)
path = /monitor         # URL path for dashboard

[logging]
level = INFO            # Logging level (DEBUG, INFO, WARNING, ERROR)
"""

ALB = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/my-alb/50dc6c495c0c9188"
LISTENER = "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/my-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"


def write(tmp_path, text: str):
    path = tmp_path / "settings.conf"
    path.write_text(textwrap.dedent(text))
    return path


def test_original_design_file_loads_unchanged(tmp_path):
    s = load_settings(write(tmp_path, ORIGINAL), environ={})
    assert s.aws.region == "us-west-2"
    assert s.aws.alb_arn == "" and s.aws.listener_arn == "" and s.aws.vpc_id == ""
    assert s.service.reconciliation_interval_seconds == 60
    assert (s.service.port_range_start, s.service.port_range_end) == (8000, 9000)
    assert (s.dashboard.username, s.dashboard.password, s.dashboard.path) == ("admin", "changeme", "/monitor")
    assert s.logging.level == "INFO"
    assert s.dashboard.port == 5000
    assert s.routing_simulated and s.default_password


def test_defaults_without_a_file():
    s = load_settings(None, environ={})
    assert s == load_settings(None, environ={})
    assert s.dashboard.password == DEFAULT_PASSWORD
    assert s.zmq.scheduler_control.startswith("ipc://")
    assert "{runtime_dir}" not in s.zmq.scheduler_control
    assert s.zmq.scheduler_control.startswith("ipc://" + s.zmq.runtime_dir + "/")


def test_real_alb_settings(tmp_path):
    s = load_settings(
        write(
            tmp_path,
            f"""
        [aws]
        alb_arn = {ALB}
        listener_arn = {LISTENER}
        """,
        ),
        environ={},
    )
    assert not s.routing_simulated


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, ORIGINAL)
    s = load_settings(
        path,
        environ={
            "MCP_ORCHESTRATOR_DASHBOARD_PASSWORD": "s3cret-pw",
            "MCP_ORCHESTRATOR_SERVICE_PORT_RANGE_END": "8100",
            "MCP_ORCHESTRATOR_LOGGING_LEVEL": "debug",
            "MCP_ORCHESTRATOR_CONFIG": "/x/mcp.config.json",
            "UNRELATED": "1",
        },
    )
    assert s.dashboard.password == "s3cret-pw"
    assert s.service.port_range_end == 8100
    assert s.logging.level == "DEBUG"


def test_public_dict_masks_password(tmp_path):
    s = load_settings(None, environ={"MCP_ORCHESTRATOR_DASHBOARD_PASSWORD": "canary-pw-123"})
    assert "canary-pw-123" not in repr(s.public_dict())
    assert s.public_dict()["dashboard"]["password"] == "***"


def test_runtime_dir_is_substituted(tmp_path):
    s = load_settings(
        write(
            tmp_path,
            f"""
        [zmq]
        runtime_dir = {tmp_path}/rt
        routes = tcp://127.0.0.1:7001
        """,
        ),
        environ={},
    )
    assert s.zmq.containers == f"ipc://{tmp_path}/rt/containers.sock"
    assert s.zmq.routes == "tcp://127.0.0.1:7001"


BAD = [
    ("[service]\nport_range_start = 9000\nport_range_end = 8000\n", "the port range is empty"),
    ("[service]\nport_range_start = 0\n", "[service] port_range_start = '0': must be between 1 and 65535"),
    ("[service]\nport_range_end = 70000\n", "port_range_end = '70000': must be between 1 and 65535"),
    ("[service]\nport_range_start = eight\n", "port_range_start = 'eight': must be a whole number"),
    ("[service]\nreconciliation_interval_seconds = 0\n", "must be between 1 and 86400"),
    ("[dashboard]\npath = monitor\n", "[dashboard] path = 'monitor': must start with '/'"),
    ("[dashboard]\npath = /monitor/\n", "must not end with '/'"),
    ("[dashboard]\npath = /mon itor\n", "may contain only letters"),
    ("[dashboard]\nport = 8500\n", "[dashboard] port 8500 lies inside the MCP server port range"),
    ("[dashboard]\npassword =\n", "[dashboard] password = '***': must not be empty"),
    ("[logging]\nlevel = VERBOSE\n", "[logging] level = 'VERBOSE': must be one of DEBUG, INFO"),
    ("[servce]\nport_range_start = 8000\n", "unknown section [servce] (did you mean 'service'?)"),
    (
        "[service]\nport_rang_start = 8000\n",
        "unknown key 'port_rang_start' in [service] (did you mean 'port_range_start'?)",
    ),
    ("port_range_start = 8000\n", "a key outside any [section]"),
    ("[service]\nport_range_start = 8000\nport_range_start = 8001\n", "[service] port_range_start is set twice"),
    ("[aws]\n[aws]\n", "section [aws] appears twice"),
    (f"[aws]\nalb_arn = {ALB}\n", "alb_arn and listener_arn must be set together"),
    ("[aws]\nalb_arn = my-alb\nlistener_arn = my-listener\n", "must be an Application Load Balancer loadbalancer ARN"),
    ("[aws]\nendpoint_url = localhost:5000\n", "must be an http:// or https:// URL"),
    ("[aws]\nrule_priority_start = 200\nrule_priority_end = 100\n", "no priority is available"),
    ("[aws]\nrule_priority_end = 60000\n", "must be between 1 and 50000"),
    ("[aws]\ncluster_name = my cluster\n", "cluster_name = 'my cluster': must be 1-63 letters"),
    (
        "[aws]\nhealth_check_interval_seconds = 5\nhealth_check_timeout_seconds = 5\n",
        "must be less than health_check_interval_seconds",
    ),
    ("[zmq]\nroutes = localhost:5555\n", "must be an ipc://PATH or tcp://HOST:PORT"),
    (
        "[zmq]\nroutes = tcp://127.0.0.1:5555\ncontainers = tcp://127.0.0.1:5555\n",
        "use the same endpoint tcp://127.0.0.1:5555",
    ),
    ("[service\nport_range_start = 1\n", "a key outside any [section]"),
    ("[service]\njust some words\n", "cannot parse line(s) 2: expected 'key = value'"),
    ("[cluster]\nengine = kubernetes\n", "[cluster] engine = 'kubernetes': must be one of docker, swarm"),
    ("[cluster]\ndefault_replicas = 0\n", "default_replicas = '0': must be between 1 and 100"),
    ("[cluster]\nzone_label = the zone\n", "zone_label = 'the zone': must be a node label name"),
    ("[cluster]\nmax_replicas_per_node = -1\n", "must be between 0 and 100"),
]


@pytest.mark.parametrize("text,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_settings_give_specific_errors(tmp_path, text, expected):
    path = tmp_path / "settings.conf"
    path.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(path, environ={})
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(
        tmp_path,
        """
        [service]
        port_range_start = x
        [logging]
        level = LOUD
        [dashbord]
        """,
    )
    with pytest.raises(SettingsError) as err:
        load_settings(path, environ={})
    assert len(err.value.problems) == 3


def test_bad_environment_override_is_named():
    with pytest.raises(SettingsError) as err:
        load_settings(None, environ={"MCP_ORCHESTRATOR_DASHBOARD_PASWORD": "x", "MCP_ORCHESTRATOR_NOPE": "1"})
    text = "\n".join(err.value.problems)
    assert "environment MCP_ORCHESTRATOR_DASHBOARD_PASWORD: unknown key 'pasword'" in text
    assert "did you mean 'password'" in text
    assert "MCP_ORCHESTRATOR_NOPE does not name a setting" in text


def test_secret_setting_value_never_in_errors():
    with pytest.raises(SettingsError) as err:
        load_settings(
            None, environ={"MCP_ORCHESTRATOR_DASHBOARD_PASSWORD": " ", "MCP_ORCHESTRATOR_DASHBOARD_PORT": "canary-xyz"}
        )
    assert "canary-xyz" in str(err.value)  # not secret: shown
    with pytest.raises(SettingsError) as err:
        load_settings(None, environ={"MCP_ORCHESTRATOR_DASHBOARD_PASSWORD": "", "MCP_ORCHESTRATOR_ZMQ_ROUTES": "bad"})
    assert "password = '***'" in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="file not found"):
        load_settings(tmp_path / "nope.conf", environ={})


def test_reference_rows_cover_every_setting():
    rows = reference_rows()
    keys = {(s, k) for s, k, _, _ in rows}
    assert ("aws", "region") in keys and ("dashboard", "port") in keys
    assert all(help for _, _, _, help in rows)
    assert isinstance(Settings(), Settings)


def test_cluster_section(tmp_path):
    assert Settings().cluster.engine == "docker"  # one host unless said otherwise
    s = load_settings(write(tmp_path, "[cluster]\nengine = swarm\ndefault_replicas = 3\nzone_label =\n"), environ={})
    assert (s.cluster.engine, s.cluster.default_replicas, s.cluster.zone_label) == ("swarm", 3, "")


def test_bridge_section():
    s = load_settings(
        None,
        environ={"MCP_ORCHESTRATOR_BRIDGE_SSE_KEEPALIVE_SECONDS": "20", "MCP_ORCHESTRATOR_BRIDGE_ALLOWED_ORIGINS": "*"},
    )
    assert s.bridge.sse_keepalive_seconds == 20.0 and s.bridge.allowed_origins == "*"


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("SSE_KEEPALIVE_SECONDS", "60", "must be above 0 and below 60"),
        ("ALLOWED_ORIGINS", "example.com", "is not an origin"),
        ("REQUEST_TIMEOUT_SECONDS", "0", "must be above 0"),
        ("MAX_BODY_BYTES", "12", "must be between 1024"),
    ],
)
def test_bad_bridge_settings(key, value, expected):
    with pytest.raises(SettingsError, match=expected):
        load_settings(None, environ={f"MCP_ORCHESTRATOR_BRIDGE_{key}": value})
