from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from services.alb_agent.model import INVALID_ROUTE, DesiredRoute, parse_routes


def test_the_aws_section_is_checked_once_when_the_settings_load():
    # The alb-agent takes [aws] as loaded: every problem is found here, naming the key.
    problems = _settings_problems(
        "[aws]\nalb_arn = arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1\n"
        "rule_priority_start = 5\nrule_priority_end = 4\n"
        "health_check_timeout_seconds = 20\nhealth_check_interval_seconds = 10\nhealthy_threshold_count = 1\n"
    )
    for key in ("listener_arn", "rule_priority_start", "health_check_timeout_seconds", "healthy_threshold_count"):
        assert key in problems


def test_routes_from_wire_data():
    routes, errors = parse_routes(
        {
            "time": 8001,
            "git": {"port": 8002},
            "off": {"port": 8003, "enabled": False},
            "off-no-port": {"enabled": False},
            "bad/id": 8004,
            "bad-port": "8005",
            "too-big": 70000,
            "flag": {"port": 1, "enabled": "yes"},
            "bool": True,
            "swarm": {"port": 8006, "targets": ["i-b", "i-a", "i-b"]},
            "nobody": {"port": 8007, "targets": []},
            "bad-targets": {"port": 8008, "targets": "i-a"},
            "hostile-target": {"port": 8009, "targets": ["i-a", "i a; rm"]},
        }
    )
    assert routes == {
        "time": DesiredRoute(8001),
        "git": DesiredRoute(8002),
        "off": DesiredRoute(8003, enabled=False),
        "off-no-port": DesiredRoute(0, enabled=False),
        "swarm": DesiredRoute(8006, targets=("i-a", "i-b")),
        "nobody": DesiredRoute(8007, targets=()),
    }
    assert set(errors) == {"bad/id", "bad-port", "too-big", "flag", "bool", "bad-targets", "hostile-target"}
    assert all(e.code == INVALID_ROUTE for e in errors.values())


def test_routes_must_be_a_map():
    with pytest.raises(ValueError):
        parse_routes([("time", 8001)])


def _settings_problems(text: str, environ=None) -> str:
    from common.settings import SettingsError, load_settings

    path = Path(tempfile.mkdtemp()) / "settings.conf"
    path.write_text(text)
    try:
        load_settings(path, environ or {})
    except SettingsError as exc:
        return "\n".join(exc.problems)
    finally:
        path.unlink()
        path.parent.rmdir()
    return ""


def test_alb_access_control_settings_are_checked_and_the_secret_never_shown():
    secret = "oidc-client-secret-1"
    problems = _settings_problems(
        "[aws]\nalb_authenticate = oidc\nalb_oidc_issuer = http://idp.example.com\n",
        {"MCP_ORCHESTRATOR_AWS_ALB_OIDC_CLIENT_SECRET": secret},
    )
    assert "alb_oidc_issuer = 'http://idp.example.com': must be an https:// URL" in problems
    assert (
        "alb_authenticate = oidc needs alb_oidc_issuer, alb_oidc_authorization_endpoint, "
        "alb_oidc_token_endpoint, alb_oidc_user_info_endpoint, alb_oidc_client_id"
    ) in problems
    assert secret not in problems
    problems = _settings_problems(
        "[aws]\nalb_cognito_domain = login\nalb_source_cidrs = 10.0.0.1/8\nalb_on_unauthenticated = redirect\n"
    )
    assert "alb_cognito_domain set but alb_authenticate = none" in problems
    assert "'10.0.0.1/8' has host bits set: write 10.0.0.0/8" in problems
    assert "alb_on_unauthenticated = 'redirect': must be one of deny, authenticate, allow" in problems
    assert "at most 3" in _settings_problems(
        "[aws]\nalb_source_cidrs = 10.0.0.0/8, 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16\n"
    )
    assert "api_timeout_seconds" in _settings_problems("[aws]\napi_timeout_seconds = 0\n")
    assert (
        _settings_problems(
            "[aws]\nalb_authenticate = cognito\nalb_source_cidrs = 192.0.2.7/32\n"
            "alb_cognito_user_pool_arn = arn:aws:cognito-idp:us-east-1:123456789012:userpool/p1\n"
            "alb_cognito_client_id = c\nalb_cognito_domain = d\napi_timeout_seconds = 2.5\n"
        )
        == ""
    )


def test_config_holds_the_client_secret_masked():
    from common.settings import load_settings

    secret = "oidc-client-secret-2"
    environ = {
        f"MCP_ORCHESTRATOR_AWS_ALB_OIDC_{key.upper()}": f"https://idp.example.com/{key}"
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "user_info_endpoint")
    }
    environ.update(
        {
            "MCP_ORCHESTRATOR_AWS_ALB_AUTHENTICATE": "oidc",
            "MCP_ORCHESTRATOR_AWS_ALB_OIDC_CLIENT_ID": "client",
            "MCP_ORCHESTRATOR_AWS_ALB_OIDC_CLIENT_SECRET": secret,
            "MCP_ORCHESTRATOR_AWS_API_TIMEOUT_SECONDS": "2.5",
        }
    )
    settings = load_settings(None, environ)
    config = settings.aws
    assert config.api_timeout_seconds == 2.5
    assert config.alb_oidc_client_secret == secret
    assert secret not in repr(config) and secret not in repr(settings.public_dict())
