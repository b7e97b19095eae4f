from __future__ import annotations

import pytest

from services.alb_agent.config import AlbConfig
from services.alb_agent.model import INVALID_ROUTE, DesiredRoute, parse_routes


def test_config_from_an_ini_section_of_strings():
    config = AlbConfig.from_mapping({
        "region": "eu-west-1", "alb_arn": "arn:alb", "listener_arn": "arn:l",
        "rule_priority_start": "200", "rule_priority_end": "299", "unknown_key": "x"})
    assert config.rule_priority_start == 200 and config.rule_priority_end == 299
    assert config.cluster_name == "default" and config.imds_endpoint == "http://169.254.169.254"
    assert config.problems() == []


def test_config_from_an_object_with_attributes():
    class Section:
        region = "us-east-1"
        alb_arn = "arn:alb"
        listener_arn = "arn:l"
        api_max_attempts = 7

    assert AlbConfig.from_mapping(Section()).api_max_attempts == 7


def test_config_problems_name_the_key():
    config = AlbConfig(region="r", alb_arn="", listener_arn="l", rule_priority_start=5,
                       rule_priority_end=4, health_check_timeout_seconds=20,
                       health_check_interval_seconds=10, healthy_threshold_count=1)
    problems = "\n".join(config.problems())
    for key in ("alb_arn", "rule priorities", "health_check_timeout_seconds",
                "healthy_threshold_count"):
        assert key in problems


def test_routes_from_wire_data():
    routes, errors = parse_routes({
        "time": 8001, "git": {"port": 8002}, "off": {"port": 8003, "enabled": False},
        "off-no-port": {"enabled": False}, "bad/id": 8004, "bad-port": "8005",
        "too-big": 70000, "flag": {"port": 1, "enabled": "yes"}, "bool": True})
    assert routes == {"time": DesiredRoute(8001), "git": DesiredRoute(8002),
                      "off": DesiredRoute(8003, enabled=False),
                      "off-no-port": DesiredRoute(0, enabled=False)}
    assert set(errors) == {"bad/id", "bad-port", "too-big", "flag", "bool"}
    assert all(e.code == INVALID_ROUTE for e in errors.values())


def test_routes_must_be_a_map():
    with pytest.raises(ValueError):
        parse_routes([("time", 8001)])
