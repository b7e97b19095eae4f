"""The route planner on plain data: no AWS involved."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from common import server_ids
from common.settings import AwsSettings
from services.alb_agent import naming
from services.alb_agent.actions import CreateRule, CreateTargetGroup, DeleteRule, ModifyRule
from services.alb_agent.controls import TAG_CONTROLS, controls_from_config, rule_actions, rule_conditions
from services.alb_agent.model import (
    INVALID_ROUTE,
    PATH_CONFLICT,
    QUOTA,
    RULE_CONFLICT,
    TARGET_GROUP_MISMATCH,
    DesiredRoute,
    ObservedRule,
    ObservedState,
    ObservedTargetGroup,
    RuleControl,
    Target,
)
from services.alb_agent.observe import observed_rule
from services.alb_agent.plan import PlanSettings, Quotas, plan_routes, target_groups_to_read

ALB = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/lb/1"
CLUSTER = "c1"
INSTANCE = "i-1"
SETTINGS = PlanSettings(
    aws=AwsSettings(cluster_name=CLUSTER, alb_arn=ALB, rule_priority_start=100, rule_priority_end=199),
    instance_id=INSTANCE,
    vpc_id="vpc-1",
)


def tg_arn(sid: str, cluster: str = CLUSTER) -> str:
    return f"arn:tg/{cluster}/{sid}"


def our_tg(
    sid: str,
    port: Optional[int],
    *,
    cluster: str = CLUSTER,
    name: Optional[str] = None,
    targets=None,
    delay: Optional[str] = "30",
    attached: bool = True,
    arn: Optional[str] = None,
    **changes,
) -> ObservedTargetGroup:
    tags = naming.ownership_tags(cluster, sid)
    if port is not None:
        tags[naming.TAG_TARGET] = naming.target_tag_value(INSTANCE, port)
    if delay is not None:
        tags[naming.TAG_DEREGISTRATION_DELAY] = delay
    tg = ObservedTargetGroup(
        arn=arn or tg_arn(sid, cluster),
        name=name or naming.target_group_name(sid, cluster),
        vpc_id="vpc-1",
        protocol="HTTP",
        target_type="instance",
        health_check=SETTINGS.health_check(sid),
        load_balancer_arns=(ALB,) if attached else (),
        tags=tags,
        targets=targets,
    )
    return replace(tg, **changes)


def our_rule(
    sid: str,
    priority: int,
    *,
    cluster: str = CLUSTER,
    forward: Optional[str] = None,
    paths=None,
    arn: Optional[str] = None,
) -> ObservedRule:
    return ObservedRule(
        arn=arn or f"arn:rule/{cluster}/{sid}/{priority}",
        priority=priority,
        is_default=False,
        path_patterns=tuple(paths or server_ids.path_patterns(sid)),
        forward_target_group_arns=(forward or tg_arn(sid, cluster),),
        tags=naming.ownership_tags(cluster, sid),
    )


def foreign_rule(priority: int, paths=("/app/*",), tags=None, forward="arn:tg/foreign"):
    return ObservedRule(
        arn=f"arn:rule/foreign/{priority}",
        priority=priority,
        is_default=False,
        path_patterns=tuple(paths),
        forward_target_group_arns=(forward,),
        tags=dict(tags or {}),
    )


DEFAULT_RULE = ObservedRule(
    arn="arn:rule/default",
    priority=None,
    is_default=True,
    path_patterns=(),
    forward_target_group_arns=(),
    tags={},
    actions=(RuleControl("fixed-response", {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}),),
)


def routed(ports: dict[str, int], first_priority: int = 100, extra_rules=(), extra_tgs=()) -> ObservedState:
    """A listener on which every server in `ports` is fully and correctly routed."""
    tgs = [our_tg(sid, port) for sid, port in ports.items()]
    rules = [our_rule(sid, first_priority + i) for i, sid in enumerate(ports)]
    return ObservedState(tuple(tgs) + tuple(extra_tgs), tuple(rules) + tuple(extra_rules) + (DEFAULT_RULE,))


def want(**ports: int) -> dict[str, DesiredRoute]:
    return {sid: DesiredRoute(port) for sid, port in ports.items()}


def kinds(plan) -> list[str]:
    return [type(a).__name__ for a in plan.actions]


EMPTY = ObservedState((), (DEFAULT_RULE,))


# -- basics -------------------------------------------------------------------------------


def test_nothing_wanted_nothing_there_is_an_empty_plan():
    plan = plan_routes({}, EMPTY, SETTINGS)
    assert plan.empty and not plan.errors and not plan.changes


def test_one_new_server_in_safe_order():
    plan = plan_routes(want(time=8001), EMPTY, SETTINGS)
    assert kinds(plan) == [
        "CreateTargetGroup",
        "SetDeregistrationDelay",
        "RegisterTarget",
        "TagTargetGroup",
        "CreateRule",
    ]
    create, delay, register, tag, rule = plan.actions
    assert create.name == naming.target_group_name("time", CLUSTER)
    assert create.health_check.path == "/mcp/time/health"
    assert create.health_check.interval_seconds == 15
    assert delay.seconds == 30
    assert register.target == Target(INSTANCE, 8001)
    assert dict(tag.tags) == {naming.TAG_TARGET: "i-1:8001", naming.TAG_DEREGISTRATION_DELAY: "30"}
    assert rule.priority == 100 and rule.path_patterns == ("/mcp/time", "/mcp/time/*")
    assert rule.target_group_arn is None  # the group created above
    assert plan.changes == {"time": "created"}


def test_a_routed_set_is_a_no_op():
    ports = {f"s{i}": 8000 + i for i in range(100)}
    plan = plan_routes({k: DesiredRoute(v) for k, v in ports.items()}, routed(ports), SETTINGS)
    assert plan.empty and not plan.errors and not plan.changes


def test_many_new_servers_get_all_tg_work_before_any_rule():
    plan = plan_routes(want(a=1, b=2, c=3), EMPTY, SETTINGS)
    names = kinds(plan)
    assert names.index("CreateRule") > max(i for i, n in enumerate(names) if n != "CreateRule")
    assert [a.priority for a in plan.actions if isinstance(a, CreateRule)] == [100, 101, 102]


# -- priorities ---------------------------------------------------------------------------


def test_foreign_priorities_are_always_taken():
    state = ObservedState(
        (),
        (
            foreign_rule(100),
            foreign_rule(101, ("/x",)),
            foreign_rule(103, ("/y",), tags={naming.TAG_CLUSTER: "other", naming.TAG_SERVER_ID: "z"}),
            DEFAULT_RULE,
        ),
    )
    plan = plan_routes(want(a=1, b=2, c=3), state, SETTINGS)
    assert [a.priority for a in plan.actions if isinstance(a, CreateRule)] == [102, 104, 105]


def test_existing_priorities_are_kept_when_servers_come_and_go():
    state = routed({"m": 1, "z": 2}, first_priority=150)
    plan = plan_routes(want(a=5, m=1, z=2), state, SETTINGS)
    assert [(a.server_id, a.priority) for a in plan.actions if isinstance(a, CreateRule)] == [("a", 100)]
    assert not any(isinstance(a, (ModifyRule, DeleteRule)) for a in plan.actions)


def test_a_priority_freed_in_this_apply_is_not_reused_in_it():
    state = routed({"old": 1})  # at priority 100
    plan = plan_routes(want(new=2), state, SETTINGS)
    create = next(a for a in plan.actions if isinstance(a, CreateRule))
    assert create.priority == 101  # 100 is deleted only after the new rule exists


def test_priorities_outside_the_range_are_kept():
    state = ObservedState((our_tg("a", 1),), (our_rule("a", 5), DEFAULT_RULE))
    assert plan_routes(want(a=1), state, SETTINGS).empty


def test_no_free_priority_is_a_per_server_error():
    settings = replace(SETTINGS, aws=replace(SETTINGS.aws, rule_priority_start=100, rule_priority_end=101))
    state = ObservedState((), (foreign_rule(100), DEFAULT_RULE))
    plan = plan_routes(want(a=1, b=2), state, settings)
    assert [a.server_id for a in plan.actions if isinstance(a, CreateRule)] == ["a"]
    assert plan.errors["b"].code == QUOTA and "no free rule priority" in plan.errors["b"].message
    assert not any(a.server_id == "b" for a in plan.actions)


def test_spare_priorities_skip_the_planned_ones():
    plan = plan_routes(want(a=1, b=2), ObservedState((), (foreign_rule(102), DEFAULT_RULE)), SETTINGS)
    assert plan.spare_priorities[:3] == (103, 104, 105)


# -- changes ------------------------------------------------------------------------------


def test_port_change_registers_new_before_deregistering_old():
    plan = plan_routes(want(time=9000), routed({"time": 8000}), SETTINGS)
    assert kinds(plan) == ["RegisterTarget", "DeregisterTarget", "TagTargetGroup"]
    register, deregister, tag = plan.actions
    assert register.target == Target(INSTANCE, 9000)
    assert deregister.target == Target(INSTANCE, 8000)
    assert dict(tag.tags) == {naming.TAG_TARGET: "i-1:9000"}
    assert plan.changes == {"time": "changed"}


def test_read_targets_win_over_the_tag():
    tg = our_tg("time", 8000, targets=(Target(INSTANCE, 7000), Target("i-old", 8000)))
    state = ObservedState((tg,), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert [(type(a).__name__, getattr(a, "target", None)) for a in plan.actions] == [
        ("RegisterTarget", Target(INSTANCE, 8000)),
        ("DeregisterTarget", Target(INSTANCE, 7000)),
        ("DeregisterTarget", Target("i-old", 8000)),
    ]


def test_a_swarm_route_holds_exactly_the_nodes_named_new_ones_first():
    """[cluster] engine = swarm: the scheduler names the instances that serve the server."""
    desired = {"time": DesiredRoute(8000, targets=("i-a", "i-b"))}
    created = plan_routes(desired, EMPTY, SETTINGS)
    assert [a.target for a in created.actions if type(a).__name__ == "RegisterTarget"] == [
        Target("i-a", 8000),
        Target("i-b", 8000),
    ]
    tag = next(a for a in created.actions if type(a).__name__ == "TagTargetGroup")
    assert dict(tag.tags)[naming.TAG_TARGET] == "i-a,i-b:8000"
    # A replica moved from i-a to i-c: i-c registered before i-a leaves.
    tg = our_tg("time", 8000, targets=(Target("i-a", 8000), Target("i-b", 8000)))
    state = ObservedState((tg,), (our_rule("time", 100), DEFAULT_RULE))
    moved = plan_routes({"time": DesiredRoute(8000, targets=("i-b", "i-c"))}, state, SETTINGS)
    assert [(type(a).__name__, a.target) for a in moved.actions if hasattr(a, "target")] == [
        ("RegisterTarget", Target("i-c", 8000)),
        ("DeregisterTarget", Target("i-a", 8000)),
    ]
    # A swarm's group is sticky: a handshake-era session stays on the host that holds it.
    delay = next(a for a in created.actions if type(a).__name__ == "SetDeregistrationDelay")
    assert (delay.seconds, delay.stickiness_seconds) == (30, 86400)
    assert dict(tag.tags)[naming.TAG_DEREGISTRATION_DELAY] == "30;lb_cookie=86400"
    # No node serves it (yet): the group stays, empty.
    emptied = plan_routes({"time": DesiredRoute(8000, targets=())}, state, SETTINGS)
    assert sorted(a.target.instance_id for a in emptied.actions if type(a).__name__ == "DeregisterTarget") == [
        "i-a",
        "i-b",
    ]
    assert "DeleteRule" not in kinds(emptied)


def test_more_hosts_than_a_target_group_holds_is_a_quota_error():
    settings = replace(SETTINGS, quotas=Quotas(targets_per_target_group=2))
    plan = plan_routes({"time": DesiredRoute(8000, targets=("i-a", "i-b", "i-c"))}, EMPTY, settings)
    assert plan.errors["time"].code == QUOTA and "at most 2 targets" in plan.errors["time"].message
    assert not plan.actions


def test_a_correct_registration_without_its_tag_only_records_it():
    tg = our_tg("time", None, targets=(Target(INSTANCE, 8000),))
    state = ObservedState((tg,), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["TagTargetGroup"]
    assert "time" not in plan.changes


def test_disabled_and_removed_servers_lose_rule_then_targets_then_group():
    state = routed({"keep": 1, "off": 2, "gone": 3})
    desired = {"keep": DesiredRoute(1), "off": DesiredRoute(2, enabled=False)}
    plan = plan_routes(desired, state, SETTINGS)
    assert kinds(plan) == [
        "DeleteRule",
        "DeleteRule",
        "DeregisterTarget",
        "DeregisterTarget",
        "DeleteTargetGroup",
        "DeleteTargetGroup",
    ]
    assert {a.server_id for a in plan.actions} == {"off", "gone"}
    assert plan.changes == {"off": "removed", "gone": "removed"}


def test_creates_come_before_any_delete():
    plan = plan_routes(want(new=5), routed({"old": 1}), SETTINGS)
    names = kinds(plan)
    assert (
        names.index("CreateRule")
        < names.index("DeleteRule")
        < names.index("DeregisterTarget")
        < names.index("DeleteTargetGroup")
    )


def test_health_check_drift_is_fixed_in_place():
    tg = our_tg("time", 8000)
    drifted = replace(tg, health_check=replace(tg.health_check, path="/", interval_seconds=30))
    state = ObservedState((drifted,), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["UpdateTargetGroup"]
    assert plan.actions[0].health_check == SETTINGS.health_check("time")


def test_changed_deregistration_delay_is_set_and_recorded():
    state = ObservedState((our_tg("time", 8000, delay="300"),), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["SetDeregistrationDelay", "TagTargetGroup"]
    assert dict(plan.actions[1].tags) == {naming.TAG_DEREGISTRATION_DELAY: "30"}


def test_rule_drift_is_modified_keeping_its_priority():
    state = ObservedState(
        (our_tg("time", 8000),),
        (our_rule("time", 142, paths=("/mcp/time/*",), forward="arn:tg/elsewhere"), DEFAULT_RULE),
    )
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["ModifyRule"]
    assert plan.actions[0].priority == 142
    assert plan.actions[0].target_group_arn == tg_arn("time")


def test_duplicate_rules_keep_the_correct_one():
    state = ObservedState(
        (our_tg("time", 8000),),
        (
            our_rule("time", 101, arn="arn:r1", forward="arn:tg/elsewhere"),
            our_rule("time", 150, arn="arn:r2"),
            DEFAULT_RULE,
        ),
    )
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert [(type(a).__name__, getattr(a, "rule_arn", None)) for a in plan.actions] == [("DeleteRule", "arn:r1")]


def test_duplicate_target_groups_keep_the_expected_name():
    extra = our_tg("time", 8000, name="mcp-time-old", arn="arn:tg/extra")
    state = ObservedState((extra, our_tg("time", 8000)), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["DeregisterTarget", "DeleteTargetGroup"]
    assert plan.actions[-1].target_group_arn == "arn:tg/extra"


def test_a_group_without_its_rule_gets_a_rule_only():
    state = ObservedState((our_tg("time", 8000, attached=False),), (DEFAULT_RULE,))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["CreateRule"]
    assert plan.actions[0].target_group_arn == tg_arn("time")


# -- ownership ----------------------------------------------------------------------------


def test_foreign_resources_are_never_in_a_plan():
    other_cluster_tg = our_tg("time", 8000, cluster="other")
    untagged_tg = replace(our_tg("x", 1), arn="arn:tg/untagged", tags={})
    other_rule = our_rule("time", 120, cluster="other")
    untagged_rule = foreign_rule(121, ("/legacy/*",), forward="arn:tg/untagged")
    state = ObservedState((other_cluster_tg, untagged_tg), (other_rule, untagged_rule, DEFAULT_RULE))
    for desired in ({}, want(a=1), want(time=8000), want(x=1)):
        plan = plan_routes(desired, state, SETTINGS)
        touched = {getattr(a, "target_group_arn", None) for a in plan.actions} | {
            getattr(a, "rule_arn", None) for a in plan.actions
        }
        assert not touched & {other_cluster_tg.arn, untagged_tg.arn, other_rule.arn, untagged_rule.arn}


def test_a_path_routed_by_someone_else_is_a_conflict():
    state = ObservedState((), (foreign_rule(120, ("/mcp/time", "/mcp/time/*")), DEFAULT_RULE))
    plan = plan_routes(want(time=1, other=2), state, SETTINGS)
    assert plan.errors["time"].code == PATH_CONFLICT
    assert "120" in plan.errors["time"].message
    assert {a.server_id for a in plan.actions} == {"other"}


def test_a_stale_group_still_used_by_a_foreign_rule_is_left_alone():
    state = ObservedState((our_tg("old", 1),), (foreign_rule(120, forward=tg_arn("old")), DEFAULT_RULE))
    plan = plan_routes({}, state, SETTINGS)
    assert plan.empty
    assert plan.errors["old"].code == TARGET_GROUP_MISMATCH


def test_a_group_in_another_vpc_is_reported_not_touched():
    state = ObservedState((our_tg("time", 8000, vpc_id="vpc-other"),), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=9000), state, SETTINGS)
    assert plan.empty and plan.errors["time"].code == TARGET_GROUP_MISMATCH


# -- quotas -------------------------------------------------------------------------------


def test_rule_quota_counts_foreign_and_our_rules():
    ours = {f"s{i}": 8000 + i for i in range(60)}
    foreign = [foreign_rule(300 + i, (f"/f{i}",)) for i in range(39)]
    state = routed(ours, extra_rules=foreign)
    desired = {k: DesiredRoute(v) for k, v in ours.items()}
    desired.update(want(new1=1, new2=2, new3=3))
    plan = plan_routes(desired, state, SETTINGS)
    assert [a.server_id for a in plan.actions if isinstance(a, CreateRule)] == ["new1"]
    for sid in ("new2", "new3"):
        assert plan.errors[sid].code == QUOTA and "100 rules" in plan.errors[sid].message
        assert not any(a.server_id == sid for a in plan.actions)


def test_target_group_quota():
    settings = replace(SETTINGS, quotas=Quotas(target_groups_per_load_balancer=2))
    plan = plan_routes(want(a=1, b=2, c=3), routed({"a": 1}), settings)
    assert [a.server_id for a in plan.actions if isinstance(a, CreateTargetGroup)] == ["b"]
    assert plan.errors["c"].code == QUOTA and "target groups" in plan.errors["c"].message


def test_stale_resources_still_count_during_the_apply_that_removes_them():
    settings = replace(SETTINGS, quotas=Quotas(rules_per_load_balancer=1))
    plan = plan_routes(want(new=2), routed({"old": 1}), settings)
    assert plan.errors["new"].code == QUOTA
    assert kinds(plan) == ["DeleteRule", "DeregisterTarget", "DeleteTargetGroup"]
    # ... and the next apply, with the old route gone, creates it.
    assert "new" not in plan_routes(want(new=2), EMPTY, settings).errors


def test_path_pattern_length_quota():
    # Valid ids always fit AWS's 128; a lower quota (as the planner is told) still applies.
    settings = replace(SETTINGS, quotas=Quotas(path_pattern_length=20))
    ok_id = "a" * (20 - len("/mcp/") - len("/*"))
    long_id = ok_id + "b"
    plan = plan_routes({ok_id: DesiredRoute(1), long_id: DesiredRoute(2)}, EMPTY, settings)
    assert ok_id not in plan.errors
    assert plan.errors[long_id].code == QUOTA and "20" in plan.errors[long_id].message


def test_condition_value_quota():
    settings = replace(SETTINGS, quotas=Quotas(condition_values_per_rule=1))
    plan = plan_routes(want(a=1), EMPTY, settings)
    assert plan.errors["a"].code == QUOTA and plan.empty


def test_invalid_routes_are_per_server_errors():
    desired = {"ok": DesiredRoute(1), "a/b": DesiredRoute(2), "bad-port": DesiredRoute(70000)}
    plan = plan_routes(desired, EMPTY, SETTINGS)
    assert plan.errors["a/b"].code == INVALID_ROUTE
    assert plan.errors["bad-port"].code == INVALID_ROUTE
    assert {a.server_id for a in plan.actions} == {"ok"}


def test_an_erroring_server_keeps_what_it_has():
    state = routed({"time": 8000}, extra_rules=[foreign_rule(120, ("/mcp/other",))])
    plan = plan_routes({"time": DesiredRoute(70000)}, state, SETTINGS)
    assert plan.empty and plan.errors["time"].code == INVALID_ROUTE


# -- what to read -------------------------------------------------------------------------


def test_targets_are_read_only_where_the_tag_does_not_settle_it():
    groups = [
        our_tg("same", 1),
        our_tg("moved", 2),
        our_tg("untagged", None),
        our_tg("stale", 4),
        our_tg("stale-untagged", None),
        our_tg("foreign", None, cluster="other"),
    ]
    desired = want(same=1, moved=3, untagged=3)
    assert target_groups_to_read(desired, groups, SETTINGS) == [
        tg_arn("moved"),
        tg_arn("untagged"),
        tg_arn("stale-untagged"),
    ]
    assert target_groups_to_read(desired, groups, SETTINGS, verify=True) == [tg.arn for tg in groups[:5]]


def test_plan_to_dict_is_plain_data():
    plan = plan_routes(want(time=8001), routed({"old": 1}), SETTINGS)
    data = plan.to_dict()
    assert data["changes"] == {"old": "removed", "time": "created"}
    assert data["actions"][0]["action"] == "CreateTargetGroup"
    assert data["actions"][0]["health_check"]["path"] == "/mcp/time/health"
    assert all(isinstance(a["summary"], str) for a in data["actions"])


# -- operator-owned controls and the settings' controls ---------------------------------

OPERATOR_OIDC = RuleControl(
    "authenticate-oidc",
    {
        "Type": "authenticate-oidc",
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/a",
            "TokenEndpoint": "https://idp.example.com/t",
            "UserInfoEndpoint": "https://idp.example.com/u",
            "ClientId": "theirs",
            "Scope": "openid email",
            "OnUnauthenticatedRequest": "deny",
            "AuthenticationRequestExtraParams": {"prompt": "login"},
        },
    },
)
OPERATOR_SOURCE_IP = RuleControl("source-ip", {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}})
OPERATOR_HEADER = RuleControl(
    "http-header", {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Team", "Values": ["a", "b"]}}
)


def with_controls(rule: ObservedRule, conditions=(), actions=(), **tags) -> ObservedRule:
    return replace(
        rule,
        conditions=tuple(conditions),
        actions=tuple(actions),
        tags=dict(rule.tags, **{TAG_CONTROLS: v for v in tags.values()}),
    )


def oidc_settings(secret_written=frozenset(), **overrides) -> PlanSettings:
    values = dict(
        alb_authenticate="oidc",
        alb_oidc_issuer="https://idp.example.com",
        alb_oidc_authorization_endpoint="https://idp.example.com/a",
        alb_oidc_token_endpoint="https://idp.example.com/t",
        alb_oidc_user_info_endpoint="https://idp.example.com/u",
        alb_oidc_client_id="ours",
        alb_oidc_client_secret="s3cr3t-value",
    )
    values.update(overrides)
    config = AwsSettings(region="r", alb_arn=ALB, listener_arn="l", **values)
    return replace(SETTINGS, controls=controls_from_config(config), secret_written=frozenset(secret_written))


def cidr_settings(cidrs: str) -> PlanSettings:
    config = AwsSettings(region="r", alb_arn=ALB, listener_arn="l", alb_source_cidrs=cidrs)
    return replace(SETTINGS, controls=controls_from_config(config))


def test_controls_an_operator_added_are_not_drift():
    rule = with_controls(our_rule("time", 100), [OPERATOR_SOURCE_IP, OPERATOR_HEADER], [OPERATOR_OIDC])
    plan = plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), SETTINGS)
    assert plan.empty and not plan.errors and not plan.changes


def test_a_drifted_forward_is_fixed_keeping_the_operators_controls_in_order():
    rule = with_controls(
        our_rule("time", 100, forward="arn:tg/elsewhere"), [OPERATOR_HEADER, OPERATOR_SOURCE_IP], [OPERATOR_OIDC]
    )
    plan = plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), SETTINGS)
    (modify,) = plan.actions
    assert isinstance(modify, ModifyRule) and modify.target_group_arn == tg_arn("time")
    assert modify.kept_conditions == (OPERATOR_HEADER, OPERATOR_SOURCE_IP)
    assert modify.kept_actions == (OPERATOR_OIDC,)
    assert modify.source_cidrs == () and modify.authenticate is None
    assert modify.controls_tag is None  # nothing of ours to record
    assert "keeping 3" in modify.describe()
    # What is written: theirs first as they were, our path pattern, our forward last.
    conditions = rule_conditions(modify.path_patterns, modify.source_cidrs, modify.kept_conditions)
    assert conditions == [
        OPERATOR_HEADER.raw,
        OPERATOR_SOURCE_IP.raw,
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/mcp/time", "/mcp/time/*"]}},
    ]
    actions = rule_actions(tg_arn("time"), modify.authenticate, modify.kept_actions)
    assert [(a["Type"], a["Order"]) for a in actions] == [("authenticate-oidc", 1), ("forward", 2)]
    config = actions[0]["AuthenticateOidcConfig"]
    assert config["UseExistingClientSecret"] is True and "ClientSecret" not in config
    assert {k: v for k, v in config.items() if k != "UseExistingClientSecret"} == OPERATOR_OIDC.raw[
        "AuthenticateOidcConfig"
    ]
    assert actions[1]["TargetGroupArn"] == tg_arn("time")


def test_drifted_paths_are_fixed_and_the_operators_conditions_kept():
    rule = with_controls(our_rule("time", 100, paths=("/mcp/time/*",)), [OPERATOR_HEADER])
    plan = plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), SETTINGS)
    (modify,) = plan.actions
    assert modify.path_patterns == ("/mcp/time", "/mcp/time/*")
    assert modify.kept_conditions == (OPERATOR_HEADER,)


def test_condition_values_of_the_operator_count_against_the_quota():
    three = RuleControl(
        "host-header",
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com", "b.example.com", "c.example.com"]}},
    )
    rule = with_controls(our_rule("time", 100, forward="arn:tg/elsewhere"), [three, OPERATOR_SOURCE_IP])
    plan = plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), SETTINGS)
    assert plan.empty and plan.errors["time"].code == QUOTA
    message = plan.errors["time"].message
    assert "needs 6 condition values" in message and "allows 5" in message
    assert "4 in conditions added to the rule by hand" in message


def test_a_final_action_put_in_place_of_our_forward_is_left_alone_and_reported():
    maintenance = RuleControl(
        "fixed-response", {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    )
    rule = replace(our_rule("time", 100), forward_target_group_arns=(), actions=(maintenance,))
    plan = plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), SETTINGS)
    assert plan.empty and plan.errors["time"].code == RULE_CONFLICT
    assert "fixed-response" in plan.errors["time"].message


def test_settings_controls_go_on_new_rules_with_their_record():
    settings = oidc_settings()
    settings = replace(settings, controls=replace(settings.controls, source_cidrs=("10.0.0.0/8",)))
    plan = plan_routes(want(time=8000), EMPTY, settings)
    create = plan.actions[-1]
    assert isinstance(create, CreateRule)
    assert create.source_cidrs == ("10.0.0.0/8",)
    assert create.authenticate.kind == "authenticate-oidc"
    assert create.controls_tag == "authenticate,source-ip"
    # The secret lives only in the applier's call, never in the plan.
    assert "s3cr3t-value" not in repr(plan.to_dict()) and "s3cr3t-value" not in repr(plan)
    actions = rule_actions("arn:tg/x", create.authenticate, (), "s3cr3t-value")
    assert actions[0]["AuthenticateOidcConfig"]["ClientSecret"] == "s3cr3t-value"
    assert actions[0]["AuthenticateOidcConfig"]["OnUnauthenticatedRequest"] == "deny"
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]


def _ours_in_place(rule: ObservedRule, settings: PlanSettings) -> ObservedRule:
    """`rule` as the applier leaves it with these settings' controls."""
    controls = settings.controls
    conditions = (
        [RuleControl("source-ip", {"Field": "source-ip", "SourceIpConfig": {"Values": list(controls.source_cidrs)}})]
        if controls.source_cidrs
        else []
    )
    actions = [controls.authenticate] if controls.authenticate else []
    return replace(
        rule,
        conditions=tuple(conditions) + rule.conditions,
        actions=tuple(actions) + rule.actions,
        tags=dict(rule.tags, **{TAG_CONTROLS: controls.tag_value}),
    )


def test_settings_controls_in_place_are_a_no_op_and_the_oidc_secret_is_written_once():
    settings = oidc_settings()
    rule = _ours_in_place(with_controls(our_rule("time", 100), [OPERATOR_HEADER]), settings)
    state = ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE))
    first = plan_routes(want(time=8000), state, settings)
    (modify,) = first.actions  # this process has not written the secret yet
    assert "client secret" in modify.reason and modify.kept_conditions == (OPERATOR_HEADER,)
    again = plan_routes(want(time=8000), state, replace(settings, secret_written={"time"}))
    assert again.empty
    cognito = replace(
        SETTINGS,
        controls=controls_from_config(
            AwsSettings(
                region="r",
                alb_arn=ALB,
                listener_arn="l",
                alb_authenticate="cognito",
                alb_cognito_user_pool_arn="arn:aws:cognito-idp:us-east-1:123456789012:userpool/p",
                alb_cognito_client_id="c",
                alb_cognito_domain="d",
            )
        ),
    )
    rule = _ours_in_place(our_rule("time", 100), cognito)
    assert plan_routes(want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), cognito).empty


def test_changed_settings_controls_are_rewritten_and_theirs_kept():
    old = cidr_settings("10.0.0.0/8")
    rule = _ours_in_place(with_controls(our_rule("time", 100), [OPERATOR_HEADER], [OPERATOR_OIDC]), old)
    state = ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE))
    (modify,) = plan_routes(want(time=8000), state, cidr_settings("192.0.2.0/24")).actions
    assert modify.source_cidrs == ("192.0.2.0/24",) and modify.controls_tag is None
    assert modify.kept_conditions == (OPERATOR_HEADER,) and modify.kept_actions == (OPERATOR_OIDC,)
    # Turned off: our source-ip goes (the record says it was ours), theirs stays.
    (modify,) = plan_routes(want(time=8000), state, SETTINGS).actions
    assert modify.source_cidrs == () and modify.controls_tag == "none"
    assert modify.kept_conditions == (OPERATOR_HEADER,) and modify.kept_actions == (OPERATOR_OIDC,)


def test_a_kind_the_settings_ask_for_is_ours_even_if_an_operator_added_it():
    rule = with_controls(our_rule("time", 100), [OPERATOR_SOURCE_IP, OPERATOR_HEADER])
    (modify,) = plan_routes(
        want(time=8000), ObservedState((our_tg("time", 8000),), (rule, DEFAULT_RULE)), cidr_settings("192.0.2.0/24")
    ).actions
    assert modify.source_cidrs == ("192.0.2.0/24",) and modify.kept_conditions == (OPERATOR_HEADER,)
    assert modify.controls_tag == "source-ip"


def test_settings_cidrs_count_against_the_condition_value_quota():
    plan = plan_routes(
        want(a=1), EMPTY, replace(cidr_settings("10.0.0.0/8,192.0.2.0/24"), quotas=Quotas(condition_values_per_rule=3))
    )
    assert plan.errors["a"].code == QUOTA and "alb_source_cidrs" in plan.errors["a"].message


def test_observed_rules_carry_every_field_of_the_operators_controls():
    raw = {
        "RuleArn": "arn:r",
        "Priority": "7",
        "IsDefault": False,
        "Conditions": [
            OPERATOR_SOURCE_IP.raw,
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/mcp/time", "/mcp/time/*"]}},
            OPERATOR_HEADER.raw,
        ],
        "Actions": [
            {"Type": "forward", "TargetGroupArn": "arn:tg", "Order": 3},
            {
                "Type": "authenticate-oidc",
                "Order": 1,
                "AuthenticateOidcConfig": dict(OPERATOR_OIDC.raw["AuthenticateOidcConfig"], ClientSecret="theirs!"),
            },
        ],
    }
    rule = observed_rule(raw, {})
    assert rule.path_patterns == ("/mcp/time", "/mcp/time/*")
    assert rule.forward_target_group_arns == ("arn:tg",)
    assert rule.conditions == (OPERATOR_SOURCE_IP, OPERATOR_HEADER)
    assert rule.actions == (OPERATOR_OIDC,)  # no Order, and no client secret kept
    assert "theirs!" not in repr(rule)
