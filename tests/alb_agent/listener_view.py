"""What is really on the test load balancer, read with the test's own client.

Independent of the code under test: plain boto3 calls, everything read in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from common import server_ids
from services.alb_agent import naming


@dataclass(frozen=True)
class RuleView:
    arn: str
    priority: int
    paths: tuple[str, ...]
    forwards: tuple[str, ...]
    tags: dict
    raw: dict


@dataclass(frozen=True)
class GroupView:
    arn: str
    name: str
    tags: dict
    targets: tuple[tuple[str, int], ...]
    raw: dict


def _tags(elbv2: Any, arns: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(arns), 20):
        for d in elbv2.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
            out[d["ResourceArn"]] = {t["Key"]: t["Value"] for t in d["Tags"]}
    return out


def rules(aws: Any) -> list[RuleView]:
    raw: list[dict] = []
    marker: Optional[str] = None
    while True:
        page = aws.elbv2.describe_rules(ListenerArn=aws.listener_arn, **({"Marker": marker} if marker else {}))
        raw += page["Rules"]
        marker = page.get("NextMarker")
        if not marker:
            break
    raw = [r for r in raw if not r["IsDefault"]]
    tags = _tags(aws.elbv2, [r["RuleArn"] for r in raw])
    return sorted(
        (
            RuleView(
                arn=r["RuleArn"],
                priority=int(r["Priority"]),
                paths=tuple(v for c in r["Conditions"] for v in c.get("PathPatternConfig", {}).get("Values", [])),
                forwards=tuple(a["TargetGroupArn"] for a in r["Actions"] if a.get("TargetGroupArn")),
                tags=tags.get(r["RuleArn"], {}),
                raw=r,
            )
            for r in raw
        ),
        key=lambda r: r.priority,
    )


def groups(aws: Any) -> list[GroupView]:
    """Every target group in the region, attached to the load balancer or not."""
    raw = aws.elbv2.describe_target_groups()["TargetGroups"]
    tags = _tags(aws.elbv2, [g["TargetGroupArn"] for g in raw])
    out = []
    for g in raw:
        health = aws.elbv2.describe_target_health(TargetGroupArn=g["TargetGroupArn"])
        targets = tuple(sorted((h["Target"]["Id"], h["Target"]["Port"]) for h in health["TargetHealthDescriptions"]))
        out.append(GroupView(g["TargetGroupArn"], g["TargetGroupName"], tags.get(g["TargetGroupArn"], {}), targets, g))
    return sorted(out, key=lambda g: g.name)


def owned_by(tags: dict, cluster: str) -> Optional[str]:
    if tags.get(naming.TAG_CLUSTER) == cluster:
        return tags.get(naming.TAG_SERVER_ID)
    return None


def routing_of(aws: Any, cluster: str) -> dict[str, dict]:
    """{server id: {priority, paths, target_group, targets, health_check_path}} of a cluster."""
    by_arn = {g.arn: g for g in groups(aws)}
    out: dict[str, dict] = {}
    for rule in rules(aws):
        sid = owned_by(rule.tags, cluster)
        if sid is None:
            continue
        assert sid not in out, f"two rules for {sid}"
        (tg_arn,) = rule.forwards
        group = by_arn[tg_arn]
        out[sid] = {
            "priority": rule.priority,
            "paths": rule.paths,
            "target_group": group.name,
            "targets": group.targets,
            "health_check_path": group.raw["HealthCheckPath"],
        }
    return out


def assert_routes_exactly(aws: Any, cluster: str, ports: dict[str, int]) -> dict[str, dict]:
    """Exactly these servers are routed (rule, group, one target each) and nothing else of ours."""
    routing = routing_of(aws, cluster)
    assert sorted(routing) == sorted(ports)
    for sid, port in ports.items():
        entry = routing[sid]
        assert entry["paths"] == server_ids.path_patterns(sid)
        assert entry["target_group"] == naming.target_group_name(sid, cluster)
        assert entry["targets"] == ((aws.instance_id, port),), (sid, entry["targets"])
        assert entry["health_check_path"] == server_ids.health_path(sid)
    ours = [g for g in groups(aws) if owned_by(g.tags, cluster)]
    assert sorted(g.name for g in ours) == sorted(naming.target_group_name(sid, cluster) for sid in ports)
    return routing


def foreign_snapshot(aws: Any, cluster: str) -> dict[str, Any]:
    """Everything not ours, in full, to compare before and after an operation."""
    return {
        "rules": [(r.arn, r.priority, r.raw, r.tags) for r in rules(aws) if owned_by(r.tags, cluster) is None],
        "groups": [(g.arn, g.raw, g.tags, g.targets) for g in groups(aws) if owned_by(g.tags, cluster) is None],
    }
