"""AlbRouter against moto running as an HTTP server: real boto3, real HTTP, real paging."""

from __future__ import annotations

from common.protocol import TargetInfo
from services.alb_agent import naming
from services.alb_agent.aws_client import ApiCallCounter
from services.alb_agent.model import (
    NAME_CONFLICT,
    PATH_CONFLICT,
    QUOTA,
    QUOTA_REACHED,
    ROUTE_CHANGED,
    ROUTE_CREATED,
    ROUTE_REMOVED,
    TARGET_HEALTH_CHANGED,
    DesiredRoute,
)
from services.alb_agent.router import AlbRouter
from tests.alb_agent.listener_view import assert_routes_exactly, foreign_snapshot, groups, routing_of, rules
from tests.alb_agent.moto_world import make_world

WRITES_PER_NEW_SERVER = 5  # create group, set draining delay, register, tag, create rule


def routes(ports: dict[str, int], disabled=()) -> dict[str, DesiredRoute]:
    return {sid: DesiredRoute(port, enabled=sid not in disabled) for sid, port in ports.items()}


def numbered(n: int, first_port: int = 8000) -> dict[str, int]:
    return {f"srv-{i:03d}": first_port + i for i in range(n)}


def event_kinds(result) -> list[tuple[str, str]]:
    return [(e.kind, e.server_id) for e in result.events]


def test_sixty_servers_from_nothing_then_a_no_op(aws):
    router = AlbRouter(aws.config())
    counter = ApiCallCounter(router.client)
    ports = numbered(60)

    result = router.apply(routes(ports))
    assert result.ok, result.errors or result.failure
    assert counter.writes == WRITES_PER_NEW_SERVER * 60
    # 60 rules: describe_rules pages at 50 in moto, so routing_of below sees two pages.
    routing = assert_routes_exactly(aws, "default", ports)
    assert sorted(r["priority"] for r in routing.values()) == list(range(10000, 10060))
    assert len(rules(aws)) == 60
    assert [k for k, _ in event_kinds(result)].count(ROUTE_CREATED) == 60

    counter.reset()
    again = router.apply(routes(ports))
    assert again.ok and again.plan.empty and not again.events
    assert counter.writes == 0, counter.summary()
    # One target-group listing and two pages of rules: tags and targets are known.
    assert counter.reads <= 3, counter.summary()
    assert counter.calls["DescribeRules"] == 2

    # The two rule pages were really read: a server on the second page is seen as routed.
    assert routing_of(aws, "default")["srv-059"]["priority"] == 10059


def test_port_change_disable_remove_and_re_add(aws):
    router = AlbRouter(aws.config())
    counter = ApiCallCounter(router.client)
    ports = {"time": 8001, "git": 8002, "fetch": 8003}
    assert router.apply(routes(ports)).ok
    first = assert_routes_exactly(aws, "default", ports)

    # Port change: new port in, old port out, the tag; rule and group untouched.
    counter.reset()
    ports["time"] = 9001
    result = router.apply(routes(ports))
    assert result.ok
    # One target read to plan, one to confirm the swap; moto keys targets by instance
    # only, so it loses the new port with the old one and it is registered again.
    assert dict(counter.calls) == {
        "DescribeTargetGroups": 1,
        "DescribeRules": 1,
        "DescribeTargetHealth": 2,
        "RegisterTargets": 2,
        "DeregisterTargets": 1,
        "AddTags": 1,
    }
    assert [type(a).__name__ for a in result.plan.actions] == ["RegisterTarget", "DeregisterTarget", "TagTargetGroup"]
    assert event_kinds(result) == [(ROUTE_CHANGED, "time")]
    after = assert_routes_exactly(aws, "default", ports)
    assert after["time"]["priority"] == first["time"]["priority"]

    # Disabled: its rule, target and group go; the others stay as they are.
    result = router.apply(routes(ports, disabled={"git"}))
    assert result.ok
    assert event_kinds(result) == [(ROUTE_REMOVED, "git")]
    assert result.events[0].detail["reason"] == "disabled"
    assert_routes_exactly(aws, "default", {"time": 9001, "fetch": 8003})

    # Removed from the set altogether.
    del ports["git"]
    result = router.apply(routes({"time": 9001}))
    assert result.ok and event_kinds(result) == [(ROUTE_REMOVED, "fetch")]
    remaining = assert_routes_exactly(aws, "default", {"time": 9001})
    assert remaining["time"]["priority"] == first["time"]["priority"]

    # Re-added: a new rule at the lowest free priority, the same group name.
    result = router.apply(routes({"time": 9001, "fetch": 8013}))
    assert result.ok and event_kinds(result) == [(ROUTE_CREATED, "fetch")]
    back = assert_routes_exactly(aws, "default", {"time": 9001, "fetch": 8013})
    assert back["fetch"]["target_group"] == first["fetch"]["target_group"]
    assert back["fetch"]["priority"] == min(first["git"]["priority"], first["fetch"]["priority"])

    # Everything removed: nothing of ours is left.
    assert router.apply({}).ok
    assert routing_of(aws, "default") == {}
    assert not [g for g in groups(aws) if naming.TAG_CLUSTER in g.tags]


def make_foreign(aws) -> dict[str, int]:
    """Rules and groups we do not own: untagged, another cluster's, and near-misses.

    Returns the priorities they hold (several inside our range).
    """
    elbv2 = aws.elbv2

    def group(name, tags):
        arn = elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=80,
            VpcId=aws.vpc_id,
            TargetType="instance",
            **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": aws.instance_id, "Port": 80}])
        return arn

    def rule(priority, paths, tg, tags):
        elbv2.create_rule(
            ListenerArn=aws.listener_arn,
            Priority=priority,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": paths}}],
            Actions=[{"Type": "forward", "TargetGroupArn": tg}],
            **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
        )

    legacy = group("legacy-app", {})
    other = group("other-cluster-time", {naming.TAG_CLUSTER: "other", naming.TAG_SERVER_ID: "srv-001"})
    half = group("half-tagged", {naming.TAG_CLUSTER: "default"})  # no server-id: not ours
    group("unattached-foreign", {})
    rule(10000, ["/legacy", "/legacy/*"], legacy, {})
    rule(
        10002,
        ["/mcp/other-time", "/mcp/other-time/*"],
        other,
        {naming.TAG_CLUSTER: "other", naming.TAG_SERVER_ID: "srv-001"},
    )
    rule(10003, ["/half/*"], half, {naming.TAG_CLUSTER: "default"})
    rule(5, ["/api/*"], legacy, {"team": "web"})
    return {"legacy": 10000, "other": 10002, "half": 10003, "api": 5}


def test_foreign_resources_are_untouched_and_their_priorities_never_reused(aws):
    foreign_priorities = set(make_foreign(aws).values())
    before = foreign_snapshot(aws, "default")
    router = AlbRouter(aws.config())

    steps = [numbered(5), dict(numbered(5), **{"srv-001": 9001}), numbered(3), {}, numbered(8)]
    for ports in steps:
        result = router.apply(routes(ports))
        assert result.ok, (result.errors, result.failure)
        routing = assert_routes_exactly(aws, "default", ports)
        assert not {r["priority"] for r in routing.values()} & foreign_priorities
        assert foreign_snapshot(aws, "default") == before
    assert sorted(r["priority"] for r in routing_of(aws, "default").values()) == [10001] + list(range(10004, 10011))

    status = router.status()
    assert {r.priority for r in status.rules if not r.owned and r.priority is not None} == foreign_priorities


def test_two_clusters_share_one_listener(aws):
    blue = AlbRouter(aws.config(cluster_name="blue"))
    green = AlbRouter(aws.config(cluster_name="green"))
    assert blue.apply(routes({"time": 8001, "git": 8002})).ok
    green_before = foreign_snapshot(aws, "blue")
    result = green.apply(routes({"fetch": 8101, "time": 8102}))
    # The same path cannot be routed twice: green is told, blue keeps its route.
    assert result.errors["time"].code == PATH_CONFLICT
    assert_routes_exactly(aws, "green", {"fetch": 8101})
    assert_routes_exactly(aws, "blue", {"time": 8001, "git": 8002})

    green_now = foreign_snapshot(aws, "blue")
    assert blue.apply(routes({"git": 8002})).ok
    assert blue.apply(routes({"git": 8003})).ok
    assert foreign_snapshot(aws, "blue") == green_now  # blue's changes never touch green
    assert green.apply({}).ok
    assert_routes_exactly(aws, "blue", {"git": 8003})
    assert routing_of(aws, "green") == {}
    assert green_before != green_now  # (green's rule was really there in between)


def test_priorities_and_names_survive_a_restart(aws):
    ports = numbered(12)
    first = AlbRouter(aws.config())
    assert first.apply(routes(ports)).ok
    before = assert_routes_exactly(aws, "default", ports)

    restarted = AlbRouter(aws.config())  # a new process: nothing remembered
    counter = ApiCallCounter(restarted.client)
    result = restarted.apply(routes(ports))
    assert result.ok and result.plan.empty and counter.writes == 0, counter.summary()
    assert routing_of(aws, "default") == before

    # Churn after the restart: survivors keep their priority and group name.
    del ports["srv-003"], ports["srv-007"]
    ports.update({"new-a": 9001, "new-b": 9002, "new-c": 9003})
    assert AlbRouter(aws.config()).apply(routes(ports)).ok
    after = assert_routes_exactly(aws, "default", ports)
    for sid in ports:
        if sid in before:
            assert after[sid]["priority"] == before[sid]["priority"]
            assert after[sid]["target_group"] == before[sid]["target_group"]
    assert sorted(after[s]["priority"] for s in ("new-a", "new-b", "new-c")) == [10012, 10013, 10014]


def test_the_101st_server_gets_a_quota_error_and_the_first_100_keep_their_routes(aws):
    router = AlbRouter(aws.config())
    ports = numbered(101)
    result = router.apply(routes(ports))
    last = "srv-100"
    assert set(result.errors) == {last}
    assert result.errors[last].code == QUOTA
    assert "100" in result.errors[last].message
    assert (QUOTA_REACHED, last) in event_kinds(result)
    first_100 = {k: v for k, v in ports.items() if k != last}
    assert_routes_exactly(aws, "default", first_100)

    # Reconciling again: still refused, nothing written, the event not repeated.
    counter = ApiCallCounter(router.client)
    again = router.apply(routes(ports))
    assert again.errors[last].code == QUOTA and counter.writes == 0 and not again.events
    # Room made by removing one server: the next reconcile routes the waiting one.
    del ports["srv-000"]
    router.apply(routes(ports))
    assert router.apply(routes(ports)).ok
    assert_routes_exactly(aws, "default", ports)


def test_a_raised_rule_quota_is_the_settings_and_target_groups_stay_at_100(aws):
    # Rules: [aws] max_rules (here lowered to 3, as a raised one is used the same way).
    router = AlbRouter(aws.config(max_rules=3))
    ports = numbered(4)
    result = router.apply(routes(ports))
    assert set(result.errors) == {"srv-003"} and "the limit is 3" in result.errors["srv-003"].message
    assert_routes_exactly(aws, "default", {k: v for k, v in ports.items() if k != "srv-003"})
    assert AlbRouter(aws.config(max_rules=400)).quotas.target_groups_per_load_balancer == 100


def test_dry_run_plans_without_writing(aws):
    router = AlbRouter(aws.config())
    counter = ApiCallCounter(router.client)
    dry = router.apply(routes({"time": 8001}), dry_run=True)
    assert dry.dry_run and counter.writes == 0
    assert [a["action"] for a in dry.to_dict()["plan"]["actions"]] == [
        "CreateTargetGroup",
        "SetDeregistrationDelay",
        "RegisterTarget",
        "TagTargetGroup",
        "CreateRule",
    ]
    assert routing_of(aws, "default") == {}
    real = router.apply(routes({"time": 8001}))
    assert real.plan.actions == dry.plan.actions
    assert_routes_exactly(aws, "default", {"time": 8001})


def test_a_group_left_by_an_interrupted_apply_is_taken_over(aws):
    # As if the agent died right after creating the group: tagged ours, stale target.
    name = naming.target_group_name("time", "default")
    arn = aws.elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=8001,
        VpcId=aws.vpc_id,
        TargetType="instance",
        Tags=[{"Key": k, "Value": v} for k, v in naming.ownership_tags("default", "time").items()],
    )["TargetGroups"][0]["TargetGroupArn"]
    aws.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": aws.instance_id, "Port": 7}])
    result = AlbRouter(aws.config()).apply(routes({"time": 8001}))
    assert result.ok, result.errors
    assert_routes_exactly(aws, "default", {"time": 8001})


def test_a_group_name_taken_by_someone_else_is_a_clear_error(aws):
    aws.elbv2.create_target_group(
        Name=naming.target_group_name("time", "default"), Protocol="HTTP", Port=80, VpcId=aws.vpc_id
    )
    result = AlbRouter(aws.config()).apply(routes({"time": 8001, "git": 8002}))
    assert result.errors["time"].code == NAME_CONFLICT
    assert_routes_exactly(aws, "default", {"git": 8002})


def test_drift_in_registrations_is_repaired_by_a_verifying_apply(aws):
    router = AlbRouter(aws.config())
    assert router.apply(routes({"time": 8001})).ok
    (group,) = [g for g in groups(aws) if g.tags.get(naming.TAG_SERVER_ID) == "time"]
    aws.elbv2.deregister_targets(TargetGroupArn=group.arn, Targets=[{"Id": aws.instance_id, "Port": 8001}])
    aws.elbv2.register_targets(TargetGroupArn=group.arn, Targets=[{"Id": aws.instance_id, "Port": 1234}])
    # The cheap reconcile trusts the recorded target; the periodic full one checks it.
    assert router.apply(routes({"time": 8001})).plan.empty
    fixed = router.apply(routes({"time": 8001}), verify_targets=True)
    assert [type(a).__name__ for a in fixed.plan.actions] == ["RegisterTarget", "DeregisterTarget"]
    assert_routes_exactly(aws, "default", {"time": 8001})


def test_a_full_refresh_happens_by_itself_after_its_interval(aws):
    now = [1000.0]
    router = AlbRouter(aws.config(), full_refresh_seconds=600, clock=lambda: now[0])
    assert router.apply(routes({"time": 8001})).ok
    (group,) = [g for g in groups(aws) if g.tags.get(naming.TAG_SERVER_ID) == "time"]
    aws.elbv2.deregister_targets(TargetGroupArn=group.arn, Targets=[{"Id": aws.instance_id, "Port": 8001}])
    counter = ApiCallCounter(router.client)
    now[0] += 599
    assert router.apply(routes({"time": 8001})).plan.empty
    assert counter.calls["DescribeTags"] == 0 and counter.calls["DescribeTargetHealth"] == 0
    now[0] += 1
    repaired = router.apply(routes({"time": 8001}))
    assert [type(a).__name__ for a in repaired.plan.actions] == ["RegisterTarget"]
    assert counter.calls["DescribeTags"] == 1 and counter.calls["DescribeTargetHealth"] == 1
    assert_routes_exactly(aws, "default", {"time": 8001})


def test_status_reports_rules_groups_targets_and_health_events(aws):
    make_foreign(aws)
    router = AlbRouter(aws.config())
    assert router.apply(routes({"time": 8001, "git": 8002})).ok
    status = router.status()
    assert status.known and status.degraded is False and status.stale is False
    assert status.listener.port == 80
    assert status.priority_range == [10000, 10999]
    assert [r.priority for r in status.rules if r.owned] == [10001, 10004]
    by_id = {g.server_id: g for g in status.target_groups}
    assert set(by_id) == {"time", "git"}
    assert by_id["time"].targets == [TargetInfo(aws.instance_id, 8001, "healthy", "", "")]
    assert by_id["time"].health_check_path == "/mcp/time/health"
    assert status.rules[-1].priority is None  # the default rule comes last
    events = router.take_events()
    assert sorted((e.kind, e.server_id) for e in events) == [
        (TARGET_HEALTH_CHANGED, "git"),
        (TARGET_HEALTH_CHANGED, "time"),
    ]
    router.status()
    assert router.take_events() == []  # no change, no event


def test_callcounts(moto_url):
    """API calls per apply, for the benchmark record (run with -s to see them)."""
    lines = []
    for n in (10, 50, 100):
        aws = make_world(moto_url)
        router = AlbRouter(aws.config())
        counter = ApiCallCounter(router.client)
        desired = routes(numbered(n))
        assert router.apply(desired).ok
        from_nothing = (counter.reads, counter.writes, counter.summary())
        counter.reset()
        assert router.apply(desired).plan.empty
        no_op = (counter.reads, counter.writes, counter.summary())
        fresh = AlbRouter(aws.config())  # a restarted agent: knows no tags yet
        fresh_counter = ApiCallCounter(fresh.client)
        assert fresh.apply(desired).plan.empty
        restarted = (fresh_counter.reads, fresh_counter.writes)
        assert no_op[1] == 0 and restarted[1] == 0
        assert from_nothing[1] == WRITES_PER_NEW_SERVER * n
        lines.append(
            f"{n:4d} servers | from nothing: {from_nothing[0]:3d} reads "
            f"{from_nothing[1]:4d} writes | no-op: {no_op[0]} reads {no_op[1]} writes "
            f"({no_op[2]}) | first apply after restart: {restarted[0]} reads "
            f"{restarted[1]} writes"
        )
    print("\nALB API calls per apply (moto server):\n" + "\n".join(lines))


def test_the_vpc_defaults_to_the_load_balancers(aws):
    router = AlbRouter(aws.config(vpc_id=""))
    assert router.apply(routes({"time": 8001})).ok
    (ours,) = [g for g in groups(aws) if g.tags]
    assert ours.raw["VpcId"] == aws.vpc_id
    assert router.status().vpc_id == aws.vpc_id


def test_settings_controls_are_written_once_and_an_operators_condition_is_kept(aws):
    cidrs = dict(alb_source_cidrs="10.0.0.0/8")
    cognito = dict(
        alb_authenticate="cognito",
        alb_on_unauthenticated="deny",
        alb_cognito_user_pool_arn="arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc",
        alb_cognito_client_id="client",
        alb_cognito_domain="mcp-login",
    )
    router = AlbRouter(aws.config(**cidrs, **cognito))
    counter = ApiCallCounter(router.client)
    assert router.apply(routes({"time": 8001})).ok
    counter.reset()
    assert router.apply(routes({"time": 8001})).plan.empty and counter.writes == 0

    (rule,) = rules(aws)
    header = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Team", "Values": ["ml"]}}
    aws.elbv2.modify_rule(RuleArn=rule.arn, Conditions=rule.raw["Conditions"] + [header])
    assert router.apply(routes({"time": 8001})).plan.empty and counter.writes == 0

    # Settings change: the cognito action goes (it was ours), the header stays (theirs).
    changed = AlbRouter(aws.config(**cidrs))
    result = changed.apply(routes({"time": 8001}))
    assert result.ok and [type(a).__name__ for a in result.plan.actions] == ["ModifyRule"]
    (rule,) = rules(aws)
    assert [a["Type"] for a in rule.raw["Actions"]] == ["forward"]
    assert header in rule.raw["Conditions"]
    assert {c["Field"] for c in rule.raw["Conditions"]} == {"http-header", "source-ip", "path-pattern"}
    assert rule.tags["mcp-orchestrator:controls"] == "source-ip"
    counter = ApiCallCounter(changed.client)
    assert changed.apply(routes({"time": 8001})).plan.empty and counter.writes == 0
