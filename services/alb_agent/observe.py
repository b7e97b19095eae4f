"""Reading what the load balancer has, with as few calls as possible.

- target groups of the load balancer: describe_target_groups, paged;
- rules of the listener: describe_rules, paged;
- tags: describe_tags in batches of 20 (the API's limit), remembered per ARN (ARNs are
  never reused, and only we change our own tags) until the caller asks for a fresh read;
- registered targets: describe_target_health, one call per group, only for the groups
  the caller names (ours, and only when their target tag does not settle the question).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from services.alb_agent.aws_client import AwsCallError, call
from services.alb_agent.model import HealthCheck, ObservedRule, ObservedState, ObservedTargetGroup, RuleControl, Target

TAGS_PER_CALL = 20


@dataclass(frozen=True)
class TargetHealth:
    target: Target
    state: str
    reason: str = ""
    description: str = ""


class TagCache:
    """Tags per ARN with the time they were read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tags: dict[str, tuple[dict[str, str], float]] = {}

    def get(self, arn: str, max_age: Optional[float]) -> Optional[dict[str, str]]:
        entry = self._tags.get(arn)
        if entry is None or max_age is None:
            return None
        tags, read_at = entry
        return dict(tags) if self._clock() - read_at <= max_age else None

    def put(self, arn: str, tags: Mapping[str, str]) -> None:
        self._tags[arn] = (dict(tags), self._clock())

    def merge(self, arn: str, tags: Mapping[str, str]) -> None:
        """Record tags we just wrote on top of what is known."""
        if arn in self._tags:
            known, read_at = self._tags[arn]
            self._tags[arn] = ({**known, **tags}, read_at)

    def forget(self, arn: str) -> None:
        self._tags.pop(arn, None)

    def keep_only(self, arns: Iterable[str]) -> None:
        keep = set(arns)
        for arn in [a for a in self._tags if a not in keep]:
            del self._tags[arn]


def _paged(client: Any, operation: str, key: str, page_size: Optional[int], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    marker: Optional[str] = None
    while True:
        extra = dict(params)
        if page_size:
            extra["PageSize"] = page_size
        if marker:
            extra["Marker"] = marker
        page = call(client, operation, **extra)
        items.extend(page.get(key, []))
        marker = page.get("NextMarker")
        if not marker:
            return items


def list_target_groups(client: Any, alb_arn: str, page_size: Optional[int] = None) -> list[dict[str, Any]]:
    try:
        return _paged(client, "describe_target_groups", "TargetGroups", page_size, LoadBalancerArn=alb_arn)
    except AwsCallError as exc:
        if exc.code == "TargetGroupNotFound":  # moto's answer for "none yet"
            return []
        raise


def list_rules(client: Any, listener_arn: str, page_size: Optional[int] = None) -> list[dict[str, Any]]:
    return _paged(client, "describe_rules", "Rules", page_size, ListenerArn=listener_arn)


def read_tags(client: Any, arns: Iterable[str], cache: TagCache, max_age: Optional[float]) -> dict[str, dict[str, str]]:
    """Tags of every ARN; those the cache knows (younger than max_age) are not read."""
    out: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for arn in arns:
        cached = cache.get(arn, max_age)
        if cached is None:
            missing.append(arn)
        else:
            out[arn] = cached
    for start in range(0, len(missing), TAGS_PER_CALL):
        batch = missing[start : start + TAGS_PER_CALL]
        reply = call(client, "describe_tags", ResourceArns=batch)
        for desc in reply.get("TagDescriptions", []):
            tags = {t["Key"]: t.get("Value", "") for t in desc.get("Tags", [])}
            out[desc["ResourceArn"]] = tags
            cache.put(desc["ResourceArn"], tags)
        for arn in batch:  # no description at all: no tags
            if arn not in out:
                out[arn] = {}
                cache.put(arn, {})
    return out


def read_target_health(client: Any, target_group_arn: str) -> list[TargetHealth]:
    reply = call(client, "describe_target_health", TargetGroupArn=target_group_arn)
    out = []
    for desc in reply.get("TargetHealthDescriptions", []):
        target = desc.get("Target", {})
        health = desc.get("TargetHealth", {})
        out.append(
            TargetHealth(
                target=Target(str(target.get("Id", "")), int(target.get("Port", 0) or 0)),
                state=str(health.get("State", "")),
                reason=str(health.get("Reason", "") or ""),
                description=str(health.get("Description", "") or ""),
            )
        )
    return out


def registered_targets(health: Iterable[TargetHealth]) -> tuple[Target, ...]:
    """Targets still registered (a draining one is already on its way out)."""
    return tuple(sorted({h.target for h in health if h.state != "draining"}, key=lambda t: (t.instance_id, t.port)))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def observed_target_group(
    raw: Mapping[str, Any], tags: Mapping[str, str], targets: Optional[tuple[Target, ...]] = None
) -> ObservedTargetGroup:
    matcher = raw.get("Matcher") or {}
    return ObservedTargetGroup(
        arn=raw["TargetGroupArn"],
        name=raw.get("TargetGroupName", ""),
        vpc_id=raw.get("VpcId", ""),
        protocol=raw.get("Protocol", ""),
        target_type=raw.get("TargetType", ""),
        health_check=HealthCheck(
            path=raw.get("HealthCheckPath", ""),
            interval_seconds=_int(raw.get("HealthCheckIntervalSeconds")),
            timeout_seconds=_int(raw.get("HealthCheckTimeoutSeconds")),
            healthy_threshold=_int(raw.get("HealthyThresholdCount")),
            unhealthy_threshold=_int(raw.get("UnhealthyThresholdCount")),
            protocol=raw.get("HealthCheckProtocol", ""),
            port=str(raw.get("HealthCheckPort", "")),
            matcher=str(matcher.get("HttpCode", "")),
        ),
        load_balancer_arns=tuple(raw.get("LoadBalancerArns", [])),
        tags=dict(tags),
        targets=targets,
    )


def _without_client_secret(action: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of an action without Order and without any OIDC client secret."""
    out = copy.deepcopy({k: v for k, v in action.items() if k != "Order"})
    oidc = out.get("AuthenticateOidcConfig")
    if isinstance(oidc, dict):
        oidc.pop("ClientSecret", None)
        oidc.pop("UseExistingClientSecret", None)
    return out


def _by_order(actions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    indexed = list(enumerate(actions))
    return [a for _, a in sorted(indexed, key=lambda ia: (_int(ia[1].get("Order"), 50001), ia[0]))]


def observed_rule(raw: Mapping[str, Any], tags: Mapping[str, str]) -> ObservedRule:
    paths: list[str] = []
    conditions: list[RuleControl] = []
    for cond in raw.get("Conditions", []):
        if cond.get("Field") == "path-pattern":
            paths.extend((cond.get("PathPatternConfig") or {}).get("Values") or cond.get("Values") or [])
        else:
            conditions.append(RuleControl(str(cond.get("Field", "")), copy.deepcopy(dict(cond))))
    forwards: list[str] = []
    actions: list[RuleControl] = []
    for action in _by_order(raw.get("Actions", [])):
        if action.get("Type") != "forward":
            actions.append(RuleControl(str(action.get("Type", "")), _without_client_secret(action)))
            continue
        arns = [action["TargetGroupArn"]] if action.get("TargetGroupArn") else []
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if group.get("TargetGroupArn") and group["TargetGroupArn"] not in arns:
                arns.append(group["TargetGroupArn"])
        forwards.extend(arns)
    is_default = bool(raw.get("IsDefault")) or raw.get("Priority") == "default"
    return ObservedRule(
        arn=raw["RuleArn"],
        priority=None if is_default else _int(raw.get("Priority"), -1),
        is_default=is_default,
        path_patterns=tuple(paths),
        forward_target_group_arns=tuple(forwards),
        tags=dict(tags),
        conditions=tuple(conditions),
        actions=tuple(actions),
    )


@dataclass(frozen=True)
class RawState:
    """The listings and tags of one read, before any target is looked at."""

    target_groups: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    tags: dict[str, dict[str, str]]

    def observed(self, targets: Mapping[str, tuple[Target, ...]]) -> ObservedState:
        return ObservedState(
            target_groups=tuple(
                observed_target_group(tg, self.tags.get(tg["TargetGroupArn"], {}), targets.get(tg["TargetGroupArn"]))
                for tg in self.target_groups
            ),
            rules=tuple(observed_rule(r, self.tags.get(r["RuleArn"], {})) for r in self.rules),
        )


def read_listings(
    client: Any,
    alb_arn: str,
    listener_arn: str,
    cache: TagCache,
    tag_max_age: Optional[float],
    page_size: Optional[int] = None,
) -> RawState:
    target_groups = list_target_groups(client, alb_arn, page_size)
    rules = list_rules(client, listener_arn, page_size)
    arns = [tg["TargetGroupArn"] for tg in target_groups]
    arns += [r["RuleArn"] for r in rules if not r.get("IsDefault")]
    tags = read_tags(client, arns, cache, tag_max_age)
    cache.keep_only(arns)
    return RawState(target_groups, rules, tags)
