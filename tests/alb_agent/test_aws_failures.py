"""AWS failures: throttling, races, quota refusals, access denied, an unreachable endpoint.

moto cannot produce most of these, so botocore's Stubber plays AWS here and expects the
exact calls; a call recorder registered before it proves nothing else was sent (above
all no delete). Where moto can take part (a real race, a dead endpoint, throttled HTTP
answers that botocore itself retries) it does.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from services.alb_agent.aws_client import ApiCallCounter, make_client
from services.alb_agent.model import (
    ACCESS_DENIED,
    AWS_ERROR,
    AWS_ERROR_EVENT,
    AWS_RECOVERED,
    QUOTA,
    QUOTA_REACHED,
    ROUTE_CREATED,
    THROTTLED,
    UNREACHABLE,
    DesiredRoute,
)
from services.alb_agent.router import AlbRouter
from tests.alb_agent.listener_view import assert_routes_exactly, foreign_snapshot, rules
from tests.alb_agent.stub_world import StubWorld, rule_arn, stub_config, tg_arn

READS = ["DescribeListeners", "DescribeTargetGroups", "DescribeRules"]


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def stubbed(moto_url, dead_url):
    """A router whose client answers from a Stubber, and a recorder of every call it makes."""
    router = AlbRouter(stub_config(dead_url))
    recorder = ApiCallCounter(router.client)  # registered before the Stubber: sees every call
    return router, recorder


def routes(**ports: int) -> dict[str, DesiredRoute]:
    return {sid: DesiredRoute(port) for sid, port in ports.items()}


def kinds(result) -> list[tuple[str, Any]]:
    return [(e.kind, e.server_id) for e in result.events]


# -- throttling ---------------------------------------------------------------------------


def test_throttling_that_outlives_the_retries_then_success(stubbed):
    router, recorder = stubbed
    with StubWorld(router) as world:
        world.expect_setup()
        world.stubber.add_client_error("describe_target_groups", "Throttling", "Rate exceeded", 400)
        result = router.apply(routes(time=8001))
        world.stubber.assert_no_pending_responses()
        assert result.failure.code == THROTTLED
        assert "describe_target_groups" in result.failure.message
        assert result.plan.empty and router.degraded
        assert kinds(result) == [(AWS_ERROR_EVENT, None)]
        assert recorder.order == ["DescribeListeners", "DescribeTargetGroups"]

        # The next reconcile gets through.
        world.expect_read()
        world.expect_new_servers({"time": 8001})
        world.expect_rule("time", 10000)
        result = router.apply(routes(time=8001))
        world.stubber.assert_no_pending_responses()
    assert result.ok and not router.degraded
    assert kinds(result) == [(AWS_RECOVERED, None), (ROUTE_CREATED, "time")]


def test_throttled_rule_creation_stops_the_apply_and_deletes_nothing_of_ours(stubbed):
    router, recorder = stubbed
    with StubWorld(router, {"old": (8000, 10000)}) as world:
        world.expect_setup()
        world.expect_read()
        world.expect_new_servers({"new": 8001})
        world.stubber.add_client_error("create_rule", "Throttling", "Rate exceeded", 400)
        # The group made in this apply is not referenced by anything: it goes again.
        world.stubber.add_response("delete_target_group", {}, {"TargetGroupArn": tg_arn("new")})
        result = router.apply(routes(new=8001))
        world.stubber.assert_no_pending_responses()
    assert result.failure.code == THROTTLED
    assert "DeleteRule" not in recorder.order and "DeregisterTargets" not in recorder.order
    assert recorder.order[-2:] == ["CreateRule", "DeleteTargetGroup"]


def test_throttled_http_answers_are_retried_by_botocore(aws):
    """Real retries: the first two HTTP answers say Throttling, the third is moto's."""
    router = AlbRouter(aws.config(api_max_attempts=3))
    sent = []

    def throttle(request: Any, **_: Any):
        sent.append(request.url)
        if len(sent) <= 2:
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error><RequestId>1</RequestId>"
                b"</ErrorResponse>"
            )
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Raw(body))
        return None

    router.client.meta.events.register("before-send.elastic-load-balancing-v2.DescribeTargetGroups", throttle)
    calls = ApiCallCounter(router.client)
    result = router.apply(routes(time=8001))
    assert result.ok, result.failure
    assert len(sent) == 3 and calls.calls["DescribeTargetGroups"] == 1
    assert_routes_exactly(aws, "default", {"time": 8001})


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any):
        yield self.body


# -- priority races -----------------------------------------------------------------------


def test_priority_in_use_race_takes_the_next_free_priority(stubbed):
    router, recorder = stubbed
    with StubWorld(router) as world:
        world.expect_setup()
        world.expect_read()
        world.expect_new_servers({"time": 8001})
        world.expect_rule_error("time", 10000, "PriorityInUse")
        world.expect_rule("time", 10001)
        result = router.apply(routes(time=8001))
        world.stubber.assert_no_pending_responses()
    assert result.ok
    assert result.priorities == {"time": 10001}
    assert result.events[0].detail["priority"] == 10001


def test_a_real_race_on_moto(aws):
    """Someone else creates a rule at our planned priority just before we do."""
    router = AlbRouter(aws.config())
    foreign_tg = aws.elbv2.create_target_group(Name="racer", Protocol="HTTP", Port=80, VpcId=aws.vpc_id)[
        "TargetGroups"
    ][0]
    raced = []

    def race(params: dict, **_: Any) -> None:
        if not raced:
            raced.append(params["Priority"])
            aws.elbv2.create_rule(
                ListenerArn=aws.listener_arn,
                Priority=params["Priority"],
                Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/r"]}}],
                Actions=[{"Type": "forward", "TargetGroupArn": foreign_tg["TargetGroupArn"]}],
            )

    router.client.meta.events.register("before-parameter-build.elastic-load-balancing-v2.CreateRule", race)
    result = router.apply(routes(time=8001))
    assert result.ok, result.errors
    assert raced == [10000] and result.priorities == {"time": 10001}
    routing = assert_routes_exactly(aws, "default", {"time": 8001})
    assert routing["time"]["priority"] == 10001
    assert [(r.priority, r.paths) for r in rules(aws) if r.priority == 10000] == [(10000, ("/r",))]


# -- quota refused by AWS -----------------------------------------------------------------


def test_too_many_rules_is_a_quota_error_for_that_server_only(stubbed):
    router, recorder = stubbed
    with StubWorld(router) as world:
        world.expect_setup()
        world.expect_read()
        world.expect_new_servers({"a": 8001, "b": 8002})
        world.expect_rule_error("a", 10000, "TooManyRules")
        world.stubber.add_response("delete_target_group", {}, {"TargetGroupArn": tg_arn("a")})
        world.expect_rule("b", 10001)
        result = router.apply(routes(a=8001, b=8002))
        world.stubber.assert_no_pending_responses()
    assert set(result.errors) == {"a"} and result.errors["a"].code == QUOTA
    assert "TooManyRules" in result.errors["a"].message
    assert result.failure is None
    assert kinds(result) == [(ROUTE_CREATED, "b"), (QUOTA_REACHED, "a")]
    assert recorder.calls["DeleteTargetGroup"] == 1  # only a's group from this apply


# -- access denied and validation ---------------------------------------------------------


def test_access_denied_stops_before_anything_is_deleted(stubbed):
    router, recorder = stubbed
    with StubWorld(router, {"old": (8000, 10000)}) as world:
        world.expect_setup()
        world.expect_read()
        world.stubber.add_client_error("create_target_group", "AccessDenied", "User is not authorized", 403)
        result = router.apply(routes(new=8001))
        world.stubber.assert_no_pending_responses()
    assert result.failure.code == ACCESS_DENIED
    assert "elasticloadbalancing:create_target_group" in result.failure.message
    assert recorder.order == READS + ["DescribeTags", "CreateTargetGroup"]


def test_access_denied_on_a_rule_delete_keeps_its_group_and_targets(stubbed):
    router, recorder = stubbed
    with StubWorld(router, {"old": (8000, 10000)}) as world:
        world.expect_setup()
        world.expect_read()
        world.stubber.add_client_error("delete_rule", "AccessDenied", "not allowed", 403)
        result = router.apply({})
        world.stubber.assert_no_pending_responses()
    assert result.failure.code == ACCESS_DENIED
    assert recorder.order[-1] == "DeleteRule"
    assert "DeregisterTargets" not in recorder.order
    assert "DeleteTargetGroup" not in recorder.order


def test_a_validation_error_stops_only_that_servers_removal(stubbed):
    router, recorder = stubbed
    with StubWorld(router, {"a": (8001, 10000), "b": (8002, 10001)}) as world:
        world.expect_setup()
        world.expect_read()
        world.stubber.add_client_error("delete_rule", "ValidationError", "bad rule", 400, {"RuleArn": rule_arn(10000)})
        world.expect_delete_rule("b")
        world.expect_group_removal("b")  # a's group and target stay: its rule still uses them
        result = router.apply({})
        world.stubber.assert_no_pending_responses()
    assert result.failure is None
    assert result.errors["a"].code == AWS_ERROR
    assert "ValidationError: bad rule" in result.errors["a"].message
    assert kinds(result) == [("route.removed", "b"), (AWS_ERROR_EVENT, "a")]


# -- unreachable --------------------------------------------------------------------------


def test_an_unreachable_endpoint_is_a_typed_failure_and_nothing_changes(aws, dead_url):
    router = AlbRouter(aws.config())
    assert router.apply(routes(time=8001, git=8002)).ok
    good = router.status()
    before = foreign_snapshot(aws, "nobody")  # everything, ours included

    router.client = make_client(aws.config(endpoint_url=dead_url, api_max_attempts=2))
    result = router.apply(routes(fetch=8003))
    assert result.failure.code == UNREACHABLE
    assert "unreachable" in result.failure.message.lower()
    assert result.plan.empty and router.degraded
    assert kinds(result) == [(AWS_ERROR_EVENT, None)]
    again = router.apply(routes(fetch=8003))
    assert again.failure.code == UNREACHABLE and not again.events  # reported once

    status = router.status()
    assert status.degraded and status.stale
    assert status.failure.code == UNREACHABLE
    assert status.rules == good.rules  # the last good view, marked stale
    assert foreign_snapshot(aws, "nobody") == before

    router.client = make_client(aws.config())
    result = router.apply(routes(time=8001, git=8002, fetch=8003))
    assert result.ok and not router.degraded
    assert kinds(result)[0] == (AWS_RECOVERED, None)
    assert_routes_exactly(aws, "default", {"time": 8001, "git": 8002, "fetch": 8003})


def test_a_router_that_never_reached_aws_still_answers(dead_url, moto_url):
    router = AlbRouter(stub_config(dead_url))
    result = router.apply(routes(time=8001))
    assert result.failure.code == UNREACHABLE
    status = router.status()
    assert status.degraded and status.stale and not status.known and status.rules == []
