"""Desired routes vs. what the load balancer has: an ordered plan of AWS writes.

Plain functions over plain data (no AWS here). Ownership is decided by tags only: a
resource is ours when its cluster tag names our cluster and it carries a server-id tag.
Foreign resources are never in a plan, and their priorities are always taken.

Order of the plan, so that no route is ever left pointing at nothing:
target groups (create / fix), registrations, replaced targets out, bookkeeping tags,
rules (create / modify), then stale rules out, then stale target groups (targets out,
then the group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

from common import server_ids
from common.settings import AwsSettings
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
from services.alb_agent.controls import (
    NO_PRODUCT_CONTROLS,
    ProductControls,
    RuleParts,
    controls_from_config,
    ours_in_place,
    split_rule,
    tagged_kinds,
)
from services.alb_agent.model import (
    INVALID_ROUTE,
    PATH_CONFLICT,
    QUOTA,
    RULE_CONFLICT,
    TARGET_GROUP_MISMATCH,
    DesiredRoute,
    HealthCheck,
    ObservedRule,
    ObservedState,
    ObservedTargetGroup,
    RouteError,
    Target,
)

SPARE_PRIORITIES_KEPT = 20  # handed to the applier for PriorityInUse races


@dataclass(frozen=True)
class Quotas:
    """ALB limits the test double does not enforce (AWS defaults)."""

    target_groups_per_load_balancer: int = 100
    rules_per_load_balancer: int = 100  # not counting default rules; [aws] max_rules
    condition_values_per_rule: int = 5
    path_pattern_length: int = 128
    targets_per_target_group: int = 1000  # a swarm's hosts serving one server


@dataclass(frozen=True)
class PlanSettings:
    """What the planner works with: the [aws] section as loaded, and what the agent
    found at run time."""

    aws: AwsSettings
    instance_id: str  # the target registered for every server
    vpc_id: str  # of the target groups
    quotas: Quotas = Quotas()
    controls: ProductControls = NO_PRODUCT_CONTROLS  # from the settings, on every rule
    # Servers whose rule got the OIDC client secret from this process: AWS never shows
    # the secret, so it is written once per agent start rather than compared.
    secret_written: frozenset[str] = frozenset()

    @classmethod
    def from_config(
        cls,
        aws: AwsSettings,
        instance_id: str,
        vpc_id: str,
        quotas: Quotas = Quotas(),
        secret_written: frozenset[str] = frozenset(),
    ) -> "PlanSettings":
        return cls(aws, instance_id, vpc_id, quotas, controls_from_config(aws), secret_written)

    def health_check(self, server_id: str) -> HealthCheck:
        aws = self.aws
        return HealthCheck(
            path=server_ids.health_path(server_id),
            interval_seconds=aws.health_check_interval_seconds,
            timeout_seconds=aws.health_check_timeout_seconds,
            healthy_threshold=aws.healthy_threshold_count,
            unhealthy_threshold=aws.unhealthy_threshold_count,
        )


@dataclass(frozen=True)
class ListenerPlan:
    actions: tuple[Action, ...]
    errors: Mapping[str, RouteError]  # per server, found while planning
    # server id -> "created" | "changed" | "removed": what the actions do to its route.
    changes: Mapping[str, str]
    # Free priorities nobody is planned to take, for PriorityInUse retries.
    spare_priorities: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": [dict(a.to_dict(), summary=a.describe()) for a in self.actions],
            "errors": {k: v.to_dict() for k, v in sorted(self.errors.items())},
            "changes": dict(sorted(self.changes.items())),
        }


def owner_of(tags: Mapping[str, str], cluster_name: str) -> Optional[str]:
    """The server id when the tags say the resource is ours, else None."""
    if tags.get(naming.TAG_CLUSTER) != cluster_name:
        return None
    return tags.get(naming.TAG_SERVER_ID) or None


def enabled_routes(desired: Mapping[str, DesiredRoute]) -> dict[str, DesiredRoute]:
    return {sid: r for sid, r in desired.items() if r.enabled}


def target_groups_to_read(
    desired: Mapping[str, DesiredRoute],
    target_groups: Iterable[ObservedTargetGroup],
    settings: PlanSettings,
    verify: bool = False,
) -> list[str]:
    """ARNs of our target groups whose registered targets must be read before planning.

    A group whose target tag already says what we want is trusted (that is what keeps a
    no-op reconcile cheap) unless `verify` asks to check every one of ours.
    """
    wanted = enabled_routes(desired)
    out = []
    for tg in target_groups:
        sid = owner_of(tg.tags, settings.aws.cluster_name)
        if sid is None:
            continue
        tag = tg.tags.get(naming.TAG_TARGET)
        if verify:
            out.append(tg.arn)
        elif sid in wanted:
            if tag != naming.target_tag_value(wanted_instances(wanted[sid], settings), wanted[sid].port):
                out.append(tg.arn)
        elif naming.parse_target_tag(tag) is None:
            out.append(tg.arn)  # stale: learn what to deregister
    return out


def _ours_match(rule: ObservedRule, paths: Sequence[str], tg_arn: Optional[str]) -> bool:
    """Our path patterns and our forward are as planned (whatever else the rule has)."""
    return (
        set(rule.path_patterns) == set(paths)
        and len(rule.path_patterns) == len(paths)
        and tg_arn is not None
        and rule.forward_target_group_arns == (tg_arn,)
    )


def wanted_instances(route: DesiredRoute, settings: PlanSettings) -> tuple[str, ...]:
    """The instances a route's group should hold: those named (a swarm's serving nodes),
    else the instance this agent runs on."""
    return route.targets if route.targets is not None else (settings.instance_id,)


def _current_targets(tg: ObservedTargetGroup) -> tuple[Target, ...]:
    if tg.targets is not None:
        return tg.targets
    recorded = naming.parse_target_tag(tg.tags.get(naming.TAG_TARGET))
    return tuple(Target(i, recorded[1]) for i in recorded[0]) if recorded else ()


class _Planner:
    def __init__(self, desired: Mapping[str, DesiredRoute], observed: ObservedState, settings: PlanSettings) -> None:
        self.s = settings
        self.wanted = enabled_routes(desired)
        self.errors: dict[str, RouteError] = {}
        self.changes: dict[str, str] = {}
        # One list per phase, concatenated in order at the end.
        self.tg_writes: list[Action] = []
        self.delays: list[Action] = []
        self.registers: list[Action] = []
        self.replaced: list[Action] = []
        self.records: list[Action] = []
        self.rule_writes: list[Action] = []
        self.rule_deletes: list[Action] = []
        self.stale_targets: list[Action] = []
        self.tg_deletes: list[Action] = []

        self.our_tgs: dict[str, list[ObservedTargetGroup]] = {}
        for tg in observed.target_groups:
            sid = owner_of(tg.tags, settings.aws.cluster_name)
            if sid is not None:
                self.our_tgs.setdefault(sid, []).append(tg)
        self.our_rules: dict[str, list[ObservedRule]] = {}
        self.foreign_rules: list[ObservedRule] = []
        for rule in observed.rules:
            if rule.is_default:
                continue
            sid = owner_of(rule.tags, settings.aws.cluster_name)
            if sid is None:
                self.foreign_rules.append(rule)
            else:
                self.our_rules.setdefault(sid, []).append(rule)

        self.rules_in_use = sum(1 for r in observed.rules if not r.is_default)
        self.tgs_in_use = sum(1 for tg in observed.target_groups if settings.aws.alb_arn in tg.load_balancer_arns)
        # Every existing priority stays taken for this whole apply: stale rules are
        # deleted only after the new ones exist.
        taken = {r.priority for r in observed.rules if r.priority is not None}
        self.spare = [
            p for p in range(settings.aws.rule_priority_start, settings.aws.rule_priority_end + 1) if p not in taken
        ]
        self.stale_tgs: list[ObservedTargetGroup] = []

    # -- per server -------------------------------------------------------------------
    def route_problem(self, sid: str, route: DesiredRoute) -> Optional[RouteError]:
        problem = server_ids.problem(sid)
        if problem:
            return RouteError(sid, INVALID_ROUTE, problem)
        if not 1 <= route.port <= 65535:
            return RouteError(sid, INVALID_ROUTE, f"port {route.port} is not 1..65535")
        paths = server_ids.path_patterns(sid)
        limit = self.s.quotas.path_pattern_length
        longest = max(paths, key=len)
        if len(longest) > limit:
            return RouteError(
                sid, QUOTA, f"path pattern {longest[:40]}... is {len(longest)} characters; the ALB allows {limit}"
            )
        most = self.s.quotas.targets_per_target_group
        if route.targets is not None and len(route.targets) > most:
            return RouteError(
                sid, QUOTA, f"{len(route.targets)} hosts serve it; a target group holds at most {most} targets"
            )
        return self.condition_values_problem(sid, None)

    def condition_values_problem(self, sid: str, parts: Optional[RuleParts]) -> Optional[RouteError]:
        """The ALB counts every condition value of a rule, the operator's included."""
        paths = len(server_ids.path_patterns(sid))
        cidrs = len(self.s.controls.source_cidrs)
        theirs = parts.condition_values() if parts else 0
        limit = self.s.quotas.condition_values_per_rule
        if paths + cidrs + theirs <= limit:
            return None
        counted = [f"{paths} path patterns"]
        if cidrs:
            counted.append(f"{cidrs} from [aws] alb_source_cidrs")
        if theirs:
            counted.append(f"{theirs} in conditions added to the rule by hand")
        return RouteError(
            sid,
            QUOTA,
            f"the rule of {sid} needs {paths + cidrs + theirs} "
            f"condition values ({', '.join(counted)}); the ALB "
            f"allows {limit} per rule",
        )

    def rule_drift(self, sid: str, rule: ObservedRule, parts: RuleParts, tg_arn: Optional[str]) -> str:
        """Why our parts of `rule` must be written again ("" = they are as planned)."""
        controls = self.s.controls
        paths = server_ids.path_patterns(sid)
        if set(rule.path_patterns) != set(paths) or len(rule.path_patterns) != len(paths):
            return "path patterns"
        if tg_arn is None or rule.forward_target_group_arns != (tg_arn,):
            return "forward"
        if not ours_in_place(parts, controls):
            return "controls from the settings"
        if tagged_kinds(rule.tags) != controls.kinds:
            return "record of the controls from the settings"
        if controls.writes_client_secret and sid not in self.s.secret_written:
            return "OIDC client secret, written once per agent start"
        return ""

    def rule_problem(self, sid: str, rule: ObservedRule, parts: RuleParts) -> Optional[RouteError]:
        """Why a rule that needs writing cannot be written (nothing of it is touched)."""
        final = parts.kept_final_action
        if final is not None and not rule.forward_target_group_arns:
            return RouteError(
                sid,
                RULE_CONFLICT,
                (
                    f"rule {rule.priority} of {sid} ends in a {final.kind} action added by hand "
                    "where our forward belongs (the ALB allows one final action): left as it "
                    f"is; remove that action to route {sid} again"
                ),
            )
        return self.condition_values_problem(sid, parts)

    def pick_target_group(self, sid: str) -> tuple[Optional[ObservedTargetGroup], list[ObservedTargetGroup]]:
        """The group this server keeps (the expected name first) and its duplicates."""
        groups = sorted(self.our_tgs.get(sid, []), key=lambda tg: tg.name)
        if not groups:
            return None, []
        expected = naming.target_group_name(sid, self.s.aws.cluster_name)
        chosen = next((tg for tg in groups if tg.name == expected), groups[0])
        return chosen, [tg for tg in groups if tg is not chosen]

    def pick_rule(
        self, sid: str, tg: Optional[ObservedTargetGroup]
    ) -> tuple[Optional[ObservedRule], list[ObservedRule]]:
        """The rule this server keeps (a correct one, else the lowest) and duplicates."""
        rules = self.our_rules.get(sid, [])
        if not rules:
            return None, []
        paths = server_ids.path_patterns(sid)
        tg_arn = tg.arn if tg else None
        best = sorted(
            rules, key=lambda r: (not _ours_match(r, paths, tg_arn), r.priority if r.priority is not None else 0)
        )
        return best[0], best[1:]

    def mismatch(self, tg: ObservedTargetGroup) -> Optional[str]:
        if tg.protocol != "HTTP" or tg.target_type != "instance":
            return f"is {tg.protocol}/{tg.target_type}, not HTTP/instance"
        if self.s.vpc_id and tg.vpc_id != self.s.vpc_id:
            return f"is in {tg.vpc_id}, not in the configured {self.s.vpc_id}"
        return None

    def path_conflict(self, sid: str) -> Optional[ObservedRule]:
        ours = set(server_ids.path_patterns(sid))
        return next((r for r in self.foreign_rules if ours & set(r.path_patterns)), None)

    def refusal(self, sid: str, needs_rule: bool, adds_tg: bool) -> Optional[RouteError]:
        """Why a new rule or group for `sid` cannot be made (checked before any write)."""
        quotas = self.s.quotas
        if needs_rule:
            conflict = self.path_conflict(sid)
            if conflict:
                return RouteError(
                    sid,
                    PATH_CONFLICT,
                    f"{server_ids.path_prefix(sid)} is already routed by a rule we "
                    f"do not own (priority {conflict.priority})",
                )
            if self.rules_in_use + 1 > quotas.rules_per_load_balancer:
                return RouteError(
                    sid,
                    QUOTA,
                    f"the load balancer has {self.rules_in_use} rules; the limit is {quotas.rules_per_load_balancer}",
                )
            if not self.spare:
                return RouteError(
                    sid,
                    QUOTA,
                    f"no free rule priority in {self.s.aws.rule_priority_start}..{self.s.aws.rule_priority_end}",
                )
        if adds_tg and self.tgs_in_use + 1 > quotas.target_groups_per_load_balancer:
            return RouteError(
                sid,
                QUOTA,
                f"the load balancer has {self.tgs_in_use} target "
                f"groups; the limit is "
                f"{quotas.target_groups_per_load_balancer}",
            )
        return None

    def plan_server(self, sid: str, route: DesiredRoute) -> None:
        problem = self.route_problem(sid, route)
        tg, extra_tgs = self.pick_target_group(sid)
        why = self.mismatch(tg) if tg is not None else None
        if problem is None and why:
            problem = RouteError(
                sid, TARGET_GROUP_MISMATCH, f"target group {tg.name} {why}: delete it or change the settings"
            )
        rule, extra_rules = self.pick_rule(sid, tg)
        adds_tg = tg is None or self.s.aws.alb_arn not in tg.load_balancer_arns
        problem = problem or self.refusal(sid, rule is None, adds_tg)
        parts = split_rule(rule, self.s.controls) if rule is not None else None
        drift = self.rule_drift(sid, rule, parts, tg.arn if tg else None) if parts else ""
        if problem is None and drift:
            problem = self.rule_problem(sid, rule, parts)
        if problem:
            self.errors[sid] = problem  # and whatever it has stays as it is
            return
        if adds_tg:
            self.tgs_in_use += 1
        self.stale_tgs.extend(extra_tgs)
        for extra in extra_rules:
            self.rule_deletes.append(DeleteRule(sid, extra.arn, extra.priority))
        changed = self.plan_target_group(sid, route, tg) or bool(extra_tgs or extra_rules)
        self.plan_rule(sid, rule, parts, drift, tg.arn if tg else None, changed)

    def plan_target_group(self, sid: str, route: DesiredRoute, tg: Optional[ObservedTargetGroup]) -> bool:
        """Group, draining delay, registration and bookkeeping tags; True if a route changes."""
        instances = wanted_instances(route, self.s)
        want_targets = [Target(i, route.port) for i in instances]
        want_tag = naming.target_tag_value(instances, route.port)
        health_check = self.s.health_check(sid)
        delay = self.s.aws.deregistration_delay_seconds
        # A swarm's route (targets named) is sticky: a handshake-era session lives on one host.
        sticky = self.s.aws.stickiness_seconds if route.targets is not None else 0
        attributes = f"{delay};lb_cookie={sticky}" if sticky else str(delay)
        if tg is None:
            self.tg_writes.append(
                CreateTargetGroup(sid, naming.target_group_name(sid, self.s.aws.cluster_name), route.port, health_check)
            )
            self.delays.append(SetDeregistrationDelay(sid, None, delay, sticky))
            self.registers.extend(RegisterTarget(sid, None, t) for t in want_targets)
            self.records.append(
                TagTargetGroup(
                    sid, None, ((naming.TAG_TARGET, want_tag), (naming.TAG_DEREGISTRATION_DELAY, attributes))
                )
            )
            return True
        changed = False
        record: list[tuple[str, str]] = []
        if tg.health_check != health_check:
            self.tg_writes.append(UpdateTargetGroup(sid, tg.arn, health_check))
            changed = True
        current = _current_targets(tg)
        for target in want_targets:
            if target not in current:
                self.registers.append(RegisterTarget(sid, tg.arn, target))
                changed = True
        for old in current:
            if old not in want_targets:
                # After the new ones are registered (apply order): a node leaving a
                # swarm's group is replaced before it goes.
                self.replaced.append(DeregisterTarget(sid, tg.arn, old))
                changed = True
        if tg.tags.get(naming.TAG_TARGET) != want_tag:
            record.append((naming.TAG_TARGET, want_tag))
        recorded = tg.tags.get(naming.TAG_DEREGISTRATION_DELAY)
        if recorded != attributes:
            unstick = not sticky and "lb_cookie" in (recorded or "")
            self.delays.append(SetDeregistrationDelay(sid, tg.arn, delay, sticky, unstick))
            record.append((naming.TAG_DEREGISTRATION_DELAY, attributes))
            changed = True
        if record:
            self.records.append(TagTargetGroup(sid, tg.arn, tuple(record)))
        return changed

    def plan_rule(
        self,
        sid: str,
        rule: Optional[ObservedRule],
        parts: Optional[RuleParts],
        drift: str,
        tg_arn: Optional[str],
        changed: bool,
    ) -> None:
        paths = server_ids.path_patterns(sid)
        controls = self.s.controls
        if rule is None or parts is None:
            self.rule_writes.append(
                CreateRule(
                    sid,
                    self.spare.pop(0),
                    paths,
                    tg_arn,
                    controls.source_cidrs,
                    controls.authenticate,
                    controls.tag_value if controls.kinds else None,
                )
            )
            self.rules_in_use += 1
            self.changes[sid] = "created"
            return
        if drift:
            record = controls.tag_value if tagged_kinds(rule.tags) != controls.kinds else None
            self.rule_writes.append(
                ModifyRule(
                    sid,
                    rule.arn,
                    rule.priority,
                    paths,
                    tg_arn,
                    controls.source_cidrs,
                    controls.authenticate,
                    parts.kept_conditions,
                    parts.kept_actions,
                    record,
                    drift,
                )
            )
            changed = True
        if changed:
            self.changes[sid] = "changed"

    # -- stale --------------------------------------------------------------------------
    def plan_stale(self) -> None:
        for sid in sorted(self.our_rules):
            if sid in self.wanted:
                continue
            for rule in sorted(self.our_rules[sid], key=lambda r: r.priority or 0):
                self.rule_deletes.append(DeleteRule(sid, rule.arn, rule.priority))
                self.changes[sid] = "removed"
        for sid in sorted(self.our_tgs):
            if sid not in self.wanted:
                self.stale_tgs.extend(sorted(self.our_tgs[sid], key=lambda tg: tg.name))
        deleted_rules = {a.rule_arn for a in self.rule_deletes if isinstance(a, DeleteRule)}
        for tg in self.stale_tgs:
            sid = owner_of(tg.tags, self.s.aws.cluster_name) or ""
            # A rule we do not own still forwarding here: deleting (or even draining)
            # the group would break it.
            user = next(
                (r for r in self.foreign_rules if tg.arn in r.forward_target_group_arns and r.arn not in deleted_rules),
                None,
            )
            if user is not None:
                self.errors.setdefault(
                    sid,
                    RouteError(
                        sid,
                        TARGET_GROUP_MISMATCH,
                        f"target group {tg.name} is no longer needed but a rule we do not own "
                        f"(priority {user.priority}) forwards to it: left in place",
                    ),
                )
                continue
            for target in _current_targets(tg):
                self.stale_targets.append(DeregisterTarget(sid, tg.arn, target))
            self.tg_deletes.append(DeleteTargetGroup(sid, tg.arn, tg.name))
            if sid not in self.wanted:
                self.changes[sid] = "removed"

    def build(self) -> ListenerPlan:
        for sid in sorted(self.wanted):
            self.plan_server(sid, self.wanted[sid])
        self.plan_stale()
        actions = (
            self.tg_writes
            + self.delays
            + self.registers
            + self.replaced
            + self.records
            + self.rule_writes
            + self.rule_deletes
            + self.stale_targets
            + self.tg_deletes
        )
        return ListenerPlan(
            actions=tuple(actions),
            errors=dict(self.errors),
            changes=dict(self.changes),
            spare_priorities=tuple(self.spare[:SPARE_PRIORITIES_KEPT]),
        )


def plan_routes(desired: Mapping[str, DesiredRoute], observed: ObservedState, settings: PlanSettings) -> ListenerPlan:
    """The ordered writes that make the load balancer route exactly `desired`.

    Servers that cannot be routed (invalid, over a quota, path taken by someone else)
    get an entry in `errors`; every other server is planned as if they were absent,
    except that whatever they already have is left alone.
    """
    return _Planner(desired, observed, settings).build()
