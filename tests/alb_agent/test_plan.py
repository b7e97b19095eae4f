"""The route planner on plain data: no AWS involved."""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from services.alb_agent import naming
from services.alb_agent.actions import CreateRule, CreateTargetGroup, DeleteRule, ModifyRule
from services.alb_agent.model import (
    INVALID_ROUTE, PATH_CONFLICT, QUOTA, TARGET_GROUP_MISMATCH, DesiredRoute, ObservedRule,
    ObservedState, ObservedTargetGroup, Target)
from services.alb_agent.plan import (
    PlanSettings, Quotas, plan_routes, target_groups_to_read)

ALB = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/lb/1"
CLUSTER = "c1"
INSTANCE = "i-1"
SETTINGS = PlanSettings(
    cluster_name=CLUSTER, instance_id=INSTANCE, alb_arn=ALB, vpc_id="vpc-1",
    priority_start=100, priority_end=199, health_check_interval_seconds=15,
    health_check_timeout_seconds=5, healthy_threshold_count=2, unhealthy_threshold_count=3,
    deregistration_delay_seconds=30)


def tg_arn(sid: str, cluster: str = CLUSTER) -> str:
    return f"arn:tg/{cluster}/{sid}"


def our_tg(sid: str, port: Optional[int], *, cluster: str = CLUSTER,
           name: Optional[str] = None, targets=None, delay: Optional[str] = "30",
           attached: bool = True, arn: Optional[str] = None, **changes) -> ObservedTargetGroup:
    tags = naming.ownership_tags(cluster, sid)
    if port is not None:
        tags[naming.TAG_TARGET] = naming.target_tag_value(INSTANCE, port)
    if delay is not None:
        tags[naming.TAG_DEREGISTRATION_DELAY] = delay
    tg = ObservedTargetGroup(
        arn=arn or tg_arn(sid, cluster), name=name or naming.target_group_name(sid, cluster),
        vpc_id="vpc-1", protocol="HTTP", target_type="instance",
        health_check=SETTINGS.health_check(sid),
        load_balancer_arns=(ALB,) if attached else (), tags=tags, targets=targets)
    return replace(tg, **changes)


def our_rule(sid: str, priority: int, *, cluster: str = CLUSTER, forward: Optional[str] = None,
             paths=None, arn: Optional[str] = None) -> ObservedRule:
    return ObservedRule(
        arn=arn or f"arn:rule/{cluster}/{sid}/{priority}", priority=priority, is_default=False,
        path_patterns=tuple(paths or naming.path_patterns(sid)), other_conditions=False,
        forward_target_group_arns=(forward or tg_arn(sid, cluster),), other_actions=False,
        tags=naming.ownership_tags(cluster, sid))


def foreign_rule(priority: int, paths=("/app/*",), tags=None, forward="arn:tg/foreign"):
    return ObservedRule(
        arn=f"arn:rule/foreign/{priority}", priority=priority, is_default=False,
        path_patterns=tuple(paths), other_conditions=False,
        forward_target_group_arns=(forward,), other_actions=False,
        tags=dict(tags or {}))


DEFAULT_RULE = ObservedRule(arn="arn:rule/default", priority=None, is_default=True,
                            path_patterns=(), other_conditions=False,
                            forward_target_group_arns=(), other_actions=True, tags={})


def routed(ports: dict[str, int], first_priority: int = 100, extra_rules=(), extra_tgs=()
           ) -> ObservedState:
    """A listener on which every server in `ports` is fully and correctly routed."""
    tgs = [our_tg(sid, port) for sid, port in ports.items()]
    rules = [our_rule(sid, first_priority + i) for i, sid in enumerate(ports)]
    return ObservedState(tuple(tgs) + tuple(extra_tgs),
                         tuple(rules) + tuple(extra_rules) + (DEFAULT_RULE,))


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
    assert kinds(plan) == ["CreateTargetGroup", "SetDeregistrationDelay", "RegisterTarget",
                           "TagTargetGroup", "CreateRule"]
    create, delay, register, tag, rule = plan.actions
    assert create.name == naming.target_group_name("time", CLUSTER)
    assert create.health_check.path == "/mcp/time/health"
    assert create.health_check.interval_seconds == 15
    assert delay.seconds == 30
    assert register.target == Target(INSTANCE, 8001)
    assert dict(tag.tags) == {naming.TAG_TARGET: "i-1:8001",
                              naming.TAG_DEREGISTRATION_DELAY: "30"}
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
    state = ObservedState((), (foreign_rule(100), foreign_rule(101, ("/x",)), foreign_rule(
        103, ("/y",), tags={naming.TAG_CLUSTER: "other", naming.TAG_SERVER_ID: "z"}),
        DEFAULT_RULE))
    plan = plan_routes(want(a=1, b=2, c=3), state, SETTINGS)
    assert [a.priority for a in plan.actions if isinstance(a, CreateRule)] == [102, 104, 105]


def test_existing_priorities_are_kept_when_servers_come_and_go():
    state = routed({"m": 1, "z": 2}, first_priority=150)
    plan = plan_routes(want(a=5, m=1, z=2), state, SETTINGS)
    assert [(a.server_id, a.priority) for a in plan.actions if isinstance(a, CreateRule)] == [
        ("a", 100)]
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
    settings = replace(SETTINGS, priority_start=100, priority_end=101)
    state = ObservedState((), (foreign_rule(100), DEFAULT_RULE))
    plan = plan_routes(want(a=1, b=2), state, settings)
    assert [a.server_id for a in plan.actions if isinstance(a, CreateRule)] == ["a"]
    assert plan.errors["b"].code == QUOTA and "no free rule priority" in plan.errors["b"].message
    assert not any(a.server_id == "b" for a in plan.actions)


def test_spare_priorities_skip_the_planned_ones():
    plan = plan_routes(want(a=1, b=2), ObservedState((), (foreign_rule(102), DEFAULT_RULE)),
                       SETTINGS)
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
        ("DeregisterTarget", Target("i-old", 8000))]


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
    assert kinds(plan) == ["DeleteRule", "DeleteRule", "DeregisterTarget", "DeregisterTarget",
                           "DeleteTargetGroup", "DeleteTargetGroup"]
    assert {a.server_id for a in plan.actions} == {"off", "gone"}
    assert plan.changes == {"off": "removed", "gone": "removed"}


def test_creates_come_before_any_delete():
    plan = plan_routes(want(new=5), routed({"old": 1}), SETTINGS)
    names = kinds(plan)
    assert names.index("CreateRule") < names.index("DeleteRule") < names.index(
        "DeregisterTarget") < names.index("DeleteTargetGroup")


def test_health_check_drift_is_fixed_in_place():
    tg = our_tg("time", 8000)
    drifted = replace(tg, health_check=replace(tg.health_check, path="/", interval_seconds=30))
    state = ObservedState((drifted,), (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["UpdateTargetGroup"]
    assert plan.actions[0].health_check == SETTINGS.health_check("time")


def test_changed_deregistration_delay_is_set_and_recorded():
    state = ObservedState((our_tg("time", 8000, delay="300"),),
                          (our_rule("time", 100), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["SetDeregistrationDelay", "TagTargetGroup"]
    assert dict(plan.actions[1].tags) == {naming.TAG_DEREGISTRATION_DELAY: "30"}


def test_rule_drift_is_modified_keeping_its_priority():
    state = ObservedState((our_tg("time", 8000),), (
        our_rule("time", 142, paths=("/mcp/time/*",), forward="arn:tg/elsewhere"),
        DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert kinds(plan) == ["ModifyRule"]
    assert plan.actions[0].priority == 142
    assert plan.actions[0].target_group_arn == tg_arn("time")


def test_duplicate_rules_keep_the_correct_one():
    state = ObservedState((our_tg("time", 8000),), (
        our_rule("time", 101, arn="arn:r1", forward="arn:tg/elsewhere"),
        our_rule("time", 150, arn="arn:r2"), DEFAULT_RULE))
    plan = plan_routes(want(time=8000), state, SETTINGS)
    assert [(type(a).__name__, getattr(a, "rule_arn", None)) for a in plan.actions] == [
        ("DeleteRule", "arn:r1")]


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
    state = ObservedState((other_cluster_tg, untagged_tg),
                          (other_rule, untagged_rule, DEFAULT_RULE))
    for desired in ({}, want(a=1), want(time=8000), want(x=1)):
        plan = plan_routes(desired, state, SETTINGS)
        touched = {getattr(a, "target_group_arn", None) for a in plan.actions} | {
            getattr(a, "rule_arn", None) for a in plan.actions}
        assert not touched & {other_cluster_tg.arn, untagged_tg.arn, other_rule.arn,
                              untagged_rule.arn}


def test_a_path_routed_by_someone_else_is_a_conflict():
    state = ObservedState((), (foreign_rule(120, ("/mcp/time", "/mcp/time/*")), DEFAULT_RULE))
    plan = plan_routes(want(time=1, other=2), state, SETTINGS)
    assert plan.errors["time"].code == PATH_CONFLICT
    assert "120" in plan.errors["time"].message
    assert {a.server_id for a in plan.actions} == {"other"}


def test_a_stale_group_still_used_by_a_foreign_rule_is_left_alone():
    state = ObservedState((our_tg("old", 1),),
                          (foreign_rule(120, forward=tg_arn("old")), DEFAULT_RULE))
    plan = plan_routes({}, state, SETTINGS)
    assert plan.empty
    assert plan.errors["old"].code == TARGET_GROUP_MISMATCH


def test_a_group_in_another_vpc_is_reported_not_touched():
    state = ObservedState((our_tg("time", 8000, vpc_id="vpc-other"),),
                          (our_rule("time", 100), DEFAULT_RULE))
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
    ok_id = "a" * (128 - len("/mcp/") - len("/*"))
    long_id = ok_id + "b"
    plan = plan_routes({ok_id: DesiredRoute(1), long_id: DesiredRoute(2)}, EMPTY, SETTINGS)
    assert ok_id not in plan.errors
    assert plan.errors[long_id].code == QUOTA and "128" in plan.errors[long_id].message


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
    groups = [our_tg("same", 1), our_tg("moved", 2), our_tg("untagged", None),
              our_tg("stale", 4), our_tg("stale-untagged", None),
              our_tg("foreign", None, cluster="other")]
    desired = want(same=1, moved=3, untagged=3)
    assert target_groups_to_read(desired, groups, SETTINGS) == [
        tg_arn("moved"), tg_arn("untagged"), tg_arn("stale-untagged")]
    assert target_groups_to_read(desired, groups, SETTINGS, verify=True) == [
        tg.arn for tg in groups[:5]]


def test_plan_to_dict_is_plain_data():
    plan = plan_routes(want(time=8001), routed({"old": 1}), SETTINGS)
    data = plan.to_dict()
    assert data["changes"] == {"old": "removed", "time": "created"}
    assert data["actions"][0]["action"] == "CreateTargetGroup"
    assert data["actions"][0]["health_check"]["path"] == "/mcp/time/health"
    assert all(isinstance(a["summary"], str) for a in data["actions"])
