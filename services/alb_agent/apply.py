"""Carrying out a route plan, one AWS write per step, in the plan's order.

Failure rules, so nothing is ever left half-done in a harmful way:
- a step that fails for one server stops that server's later steps (a rule that could not
  be deleted keeps its target group and targets) and the other servers go on;
- a failure that concerns every call (AWS unreachable, access denied, throttling that
  outlived botocore's retries, no credentials) stops the whole apply at once;
- a target group created in this apply for a server that then failed (before its rule
  existed) is deleted again: a group no rule forwards to is not listed for the load
  balancer, so it would be lost. (One left by a crash is found by name and taken over
  when its server is applied again.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from common.secrets import Secret
from services.alb_agent import naming
from services.alb_agent.actions import (
    Action,
    CreateRule,
    CreateTargetGroup,
    DeleteRule,
    DeleteTargetGroup,
    DeregisterTarget,
    ModifyRule,
    RegisterTarget,
    SetDeregistrationDelay,
    TagTargetGroup,
    UpdateTargetGroup,
)
from services.alb_agent.aws_client import AwsCallError, AwsError, call
from services.alb_agent.controls import TAG_CONTROLS, rule_actions, rule_conditions
from services.alb_agent.model import (
    AWS_ERROR,
    NAME_CONFLICT,
    QUOTA,
    UNREACHABLE,
    AwsFailure,
    HealthCheck,
    RouteError,
    Target,
)
from services.alb_agent.observe import TagCache, read_target_health
from services.alb_agent.plan import ListenerPlan, owner_of

log = logging.getLogger(__name__)

MAX_PRIORITY_ATTEMPTS = 5
_QUOTA_CODES = {
    "TooManyRules",
    "TooManyTargetGroups",
    "TooManyTargets",
    "TooManyRegistrationsForTargetId",
    "TooManyActions",
    "TooManyConditionValues",
    "TooManyTags",
}
_GONE_CODES = {"RuleNotFound", "TargetGroupNotFound"}


@dataclass
class ApplyOutcome:
    done: list[Action] = field(default_factory=list)
    errors: dict[str, RouteError] = field(default_factory=dict)
    failure: Optional[AwsFailure] = None
    # Priority each created rule really got (differs from the plan after a race).
    priorities: dict[str, int] = field(default_factory=dict)
    rolled_back: list[str] = field(default_factory=list)  # target group names


def _tags(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in mapping.items()]


def _health_check_params(hc: HealthCheck) -> dict[str, Any]:
    return {
        "HealthCheckProtocol": hc.protocol,
        "HealthCheckPort": hc.port,
        "HealthCheckEnabled": True,
        "HealthCheckPath": hc.path,
        "HealthCheckIntervalSeconds": hc.interval_seconds,
        "HealthCheckTimeoutSeconds": hc.timeout_seconds,
        "HealthyThresholdCount": hc.healthy_threshold,
        "UnhealthyThresholdCount": hc.unhealthy_threshold,
        "Matcher": {"HttpCode": hc.matcher},
    }


def _stickiness(seconds: int, unstick: bool) -> list[dict[str, str]]:
    if not seconds:
        return [{"Key": "stickiness.enabled", "Value": "false"}] if unstick else []
    return [
        {"Key": "stickiness.enabled", "Value": "true"},
        {"Key": "stickiness.type", "Value": "lb_cookie"},
        {"Key": "stickiness.lb_cookie.duration_seconds", "Value": str(seconds)},
    ]


def _target_param(target: Target) -> list[dict[str, Any]]:
    return [{"Id": target.instance_id, "Port": target.port}]


class PlanApplier:
    def __init__(
        self,
        client: Any,
        *,
        listener_arn: str,
        vpc_id: str,
        cluster_name: str,
        tag_cache: TagCache,
        oidc_client_secret: Optional[Secret] = None,
    ) -> None:
        self.client = client
        # Revealed only into the ELBv2 call that writes our authenticate-oidc action.
        self.oidc_client_secret = oidc_client_secret or Secret("")
        self.listener_arn = listener_arn
        self.vpc_id = vpc_id
        self.cluster_name = cluster_name
        self.tag_cache = tag_cache

    def apply(self, plan: ListenerPlan) -> ApplyOutcome:
        run = _Run(self, plan)
        run.execute()
        return run.outcome


class _Run:
    def __init__(self, applier: PlanApplier, plan: ListenerPlan) -> None:
        self.a = applier
        self.plan = plan
        self.outcome = ApplyOutcome()
        self.spare = list(plan.spare_priorities)
        self.created: dict[str, tuple[str, str]] = {}  # server -> (arn, name), this apply
        self.adopted: dict[str, str] = {}  # server -> arn of a group found by name
        self.routed: set[str] = set()  # servers whose rule now exists
        self.handlers: dict[type, Callable[[Any], None]] = {
            CreateTargetGroup: self.create_target_group,
            UpdateTargetGroup: self.update_target_group,
            SetDeregistrationDelay: self.set_deregistration_delay,
            RegisterTarget: self.register_target,
            DeregisterTarget: self.deregister_target,
            TagTargetGroup: self.tag_target_group,
            CreateRule: self.create_rule,
            ModifyRule: self.modify_rule,
            DeleteRule: self.delete_rule,
            DeleteTargetGroup: self.delete_target_group,
        }

    # -- driver ------------------------------------------------------------------------
    def execute(self) -> None:
        for action in self.plan.actions:
            sid = action.server_id
            if sid in self.outcome.errors:
                continue  # an earlier step of this server failed: keep what it has
            try:
                self.handlers[type(action)](action)
                self.outcome.done.append(action)
            except AwsCallError as exc:
                code = (
                    QUOTA if exc.code in _QUOTA_CODES else exc.code if exc.code in (QUOTA, NAME_CONFLICT) else AWS_ERROR
                )
                self.fail(sid, code, f"{action.describe()}: {exc.code}: {exc.message}")
                self.roll_back(sid)
            except AwsError as exc:
                self.outcome.failure = exc.failure
                log.error("AWS apply stopped at %r: %s", action.describe(), exc.failure.message)
                if exc.failure.code != UNREACHABLE:
                    for server in list(self.created):
                        self.roll_back(server)
                return

    def fail(self, sid: str, code: str, message: str) -> None:
        log.warning("route %s: %s", sid, message)
        self.outcome.errors[sid] = RouteError(sid, code, message)

    def roll_back(self, sid: str) -> None:
        """Delete the target group created for `sid` in this apply if no rule uses it."""
        if sid not in self.created or sid in self.routed:
            return
        arn, name = self.created.pop(sid)
        try:
            call(self.a.client, "delete_target_group", TargetGroupArn=arn)
            self.a.tag_cache.forget(arn)
            self.outcome.rolled_back.append(name)
        except (AwsCallError, AwsError) as exc:
            log.warning("route %s: could not delete target group %s again: %s", sid, name, exc)

    def tg_arn(self, action: Any) -> str:
        if action.target_group_arn:
            return action.target_group_arn
        if action.server_id in self.created:
            return self.created[action.server_id][0]
        return self.adopted[action.server_id]

    # -- target groups -----------------------------------------------------------------
    def create_target_group(self, action: CreateTargetGroup) -> None:
        tags = naming.ownership_tags(self.a.cluster_name, action.server_id)
        try:
            reply = call(
                self.a.client,
                "create_target_group",
                Name=action.name,
                Protocol="HTTP",
                Port=action.port,
                VpcId=self.a.vpc_id,
                TargetType="instance",
                Tags=_tags(tags),
                **_health_check_params(action.health_check),
            )
        except AwsCallError as exc:
            if exc.code != "DuplicateTargetGroupName":
                raise
            self.adopt(action)
            return
        arn = reply["TargetGroups"][0]["TargetGroupArn"]
        self.created[action.server_id] = (arn, action.name)
        self.a.tag_cache.put(arn, tags)

    def adopt(self, action: CreateTargetGroup) -> None:
        """The name exists: ours from an interrupted apply (take it over) or someone else's."""
        reply = call(self.a.client, "describe_target_groups", Names=[action.name])
        group = reply["TargetGroups"][0]
        arn = group["TargetGroupArn"]
        tags = call(self.a.client, "describe_tags", ResourceArns=[arn])["TagDescriptions"]
        tag_map = {t["Key"]: t.get("Value", "") for d in tags for t in d.get("Tags", [])}
        if owner_of(tag_map, self.a.cluster_name) != action.server_id:
            raise AwsCallError(
                "create_target_group", NAME_CONFLICT, f"a target group named {action.name} exists and is not ours"
            )
        self.adopted[action.server_id] = arn
        self.a.tag_cache.put(arn, tag_map)
        call(self.a.client, "modify_target_group", TargetGroupArn=arn, **_health_check_params(action.health_check))
        # Whatever it has registered is unknown: keep only what this plan registers.
        planned = {
            a.target for a in self.plan.actions if isinstance(a, RegisterTarget) and a.server_id == action.server_id
        }
        for health in read_target_health(self.a.client, arn):
            if health.target not in planned and health.state != "draining":
                call(self.a.client, "deregister_targets", TargetGroupArn=arn, Targets=_target_param(health.target))
        log.info("route %s: took over target group %s left by an interrupted apply", action.server_id, action.name)

    def update_target_group(self, action: UpdateTargetGroup) -> None:
        call(
            self.a.client,
            "modify_target_group",
            TargetGroupArn=action.target_group_arn,
            **_health_check_params(action.health_check),
        )

    def set_deregistration_delay(self, action: SetDeregistrationDelay) -> None:
        call(
            self.a.client,
            "modify_target_group_attributes",
            TargetGroupArn=self.tg_arn(action),
            Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": str(action.seconds)},
                *_stickiness(action.stickiness_seconds, action.unstick),
            ],
        )

    def register_target(self, action: RegisterTarget) -> None:
        call(
            self.a.client, "register_targets", TargetGroupArn=self.tg_arn(action), Targets=_target_param(action.target)
        )

    def deregister_target(self, action: DeregisterTarget) -> None:
        try:
            call(
                self.a.client,
                "deregister_targets",
                TargetGroupArn=action.target_group_arn,
                Targets=_target_param(action.target),
            )
        except AwsCallError as exc:
            if exc.code not in _GONE_CODES | {"InvalidTarget"}:
                raise
        self.confirm_port_swap(action)

    def confirm_port_swap(self, action: DeregisterTarget) -> None:
        """After moving an instance to a new port, check the new port is still there.

        ELBv2 keys targets by instance and port, but some implementations (moto) key them
        by instance only, so deregistering the old port drops the new one too. One read
        after a port change (rare) keeps the route either way.
        """
        new = next(
            (
                a.target
                for a in self.plan.actions
                if isinstance(a, RegisterTarget)
                and a.target_group_arn == action.target_group_arn
                and a.target.instance_id == action.target.instance_id
                and a.target != action.target
            ),
            None,
        )
        if new is None:
            return
        health = read_target_health(self.a.client, action.target_group_arn)
        if not any(h.target == new and h.state != "draining" for h in health):
            log.info(
                "route %s: %s:%d vanished with the old port; registering it again",
                action.server_id,
                new.instance_id,
                new.port,
            )
            call(self.a.client, "register_targets", TargetGroupArn=action.target_group_arn, Targets=_target_param(new))

    def tag_target_group(self, action: TagTargetGroup) -> None:
        arn = self.tg_arn(action)
        tags = dict(action.tags)
        call(self.a.client, "add_tags", ResourceArns=[arn], Tags=_tags(tags))
        self.a.tag_cache.merge(arn, tags)

    def delete_target_group(self, action: DeleteTargetGroup) -> None:
        try:
            call(self.a.client, "delete_target_group", TargetGroupArn=action.target_group_arn)
        except AwsCallError as exc:
            if exc.code not in _GONE_CODES:
                raise
        self.a.tag_cache.forget(action.target_group_arn)

    # -- rules -------------------------------------------------------------------------
    def _rule_params(self, action: Union[CreateRule, ModifyRule]) -> dict[str, Any]:
        kept_conditions = getattr(action, "kept_conditions", ())
        kept_actions = getattr(action, "kept_actions", ())
        return {
            "Conditions": rule_conditions(action.path_patterns, action.source_cidrs, kept_conditions),
            "Actions": rule_actions(
                self.tg_arn(action), action.authenticate, kept_actions, self.a.oidc_client_secret.reveal()
            ),
        }

    def create_rule(self, action: CreateRule) -> None:
        tags = naming.ownership_tags(self.a.cluster_name, action.server_id)
        if action.controls_tag is not None:
            tags[TAG_CONTROLS] = action.controls_tag
        priority = action.priority
        params = self._rule_params(action)
        for attempt in range(1, MAX_PRIORITY_ATTEMPTS + 1):
            try:
                reply = call(
                    self.a.client,
                    "create_rule",
                    ListenerArn=self.a.listener_arn,
                    Priority=priority,
                    Tags=_tags(tags),
                    **params,
                )
            except AwsCallError as exc:
                # Someone took the priority since we looked: take another free one.
                if exc.code != "PriorityInUse" or attempt == MAX_PRIORITY_ATTEMPTS:
                    raise
                if not self.spare:
                    raise AwsCallError("create_rule", QUOTA, "priority taken meanwhile and no other one is free")
                log.info("route %s: priority %d taken meanwhile, trying %d", action.server_id, priority, self.spare[0])
                priority = self.spare.pop(0)
                continue
            self.a.tag_cache.put(reply["Rules"][0]["RuleArn"], tags)
            self.outcome.priorities[action.server_id] = priority
            self.routed.add(action.server_id)
            return

    def modify_rule(self, action: ModifyRule) -> None:
        call(self.a.client, "modify_rule", RuleArn=action.rule_arn, **self._rule_params(action))
        self.routed.add(action.server_id)
        if action.controls_tag is not None:
            tags = {TAG_CONTROLS: action.controls_tag}
            call(self.a.client, "add_tags", ResourceArns=[action.rule_arn], Tags=_tags(tags))
            self.a.tag_cache.merge(action.rule_arn, tags)
        if action.kept_conditions or action.kept_actions:
            log.info(
                "route %s: rule %s rewritten (%s), keeping %s added by hand",
                action.server_id,
                action.priority,
                action.reason,
                ", ".join(c.kind for c in action.kept_conditions + action.kept_actions),
            )

    def delete_rule(self, action: DeleteRule) -> None:
        try:
            call(self.a.client, "delete_rule", RuleArn=action.rule_arn)
        except AwsCallError as exc:
            if exc.code not in _GONE_CODES:
                raise
        self.a.tag_cache.forget(action.rule_arn)
