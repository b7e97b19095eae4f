"""The steps of a route plan: one small frozen dataclass per AWS write.

A target group created earlier in the same plan has no ARN yet at planning time; steps
that need it carry `target_group_arn=None` and the applier looks it up by server id.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional, Union

from services.alb_agent.model import HealthCheck, RuleControl, Target, wire_ready


class _Step:
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": type(self).__name__}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, (HealthCheck, Target)):
                value = {g.name: getattr(value, g.name) for g in fields(value)}
            elif isinstance(value, RuleControl):
                value = wire_ready(value.raw)
            elif isinstance(value, tuple):
                value = [
                    list(v) if isinstance(v, tuple) else wire_ready(v.raw) if isinstance(v, RuleControl) else v
                    for v in value
                ]
            out[f.name] = value
        return out


@dataclass(frozen=True)
class CreateTargetGroup(_Step):
    server_id: str
    name: str
    port: int
    health_check: HealthCheck

    def describe(self) -> str:
        return f"create target group {self.name} for {self.server_id}"


@dataclass(frozen=True)
class UpdateTargetGroup(_Step):
    server_id: str
    target_group_arn: str
    health_check: HealthCheck

    def describe(self) -> str:
        return f"update health check of {self.server_id}'s target group"


@dataclass(frozen=True)
class SetDeregistrationDelay(_Step):
    """The group's attributes we own: its draining time, and its stickiness (a swarm's)."""

    server_id: str
    target_group_arn: Optional[str]
    seconds: int
    stickiness_seconds: int = 0  # lb_cookie duration; 0: not sticky
    unstick: bool = False  # it was sticky: turn that off (else left as AWS has it)

    def describe(self) -> str:
        sticky = f", lb_cookie stickiness {self.stickiness_seconds}s" if self.stickiness_seconds else ""
        return f"set deregistration delay of {self.server_id}'s target group to {self.seconds}s{sticky}"


@dataclass(frozen=True)
class RegisterTarget(_Step):
    server_id: str
    target_group_arn: Optional[str]
    target: Target

    def describe(self) -> str:
        return f"register {self.target.instance_id}:{self.target.port} for {self.server_id}"


@dataclass(frozen=True)
class DeregisterTarget(_Step):
    server_id: str
    target_group_arn: str
    target: Target

    def describe(self) -> str:
        return f"deregister {self.target.instance_id}:{self.target.port} of {self.server_id}"


@dataclass(frozen=True)
class TagTargetGroup(_Step):
    server_id: str
    target_group_arn: Optional[str]
    tags: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"record {', '.join(k for k, _ in self.tags)} on {self.server_id}'s target group"


@dataclass(frozen=True)
class CreateRule(_Step):
    server_id: str
    priority: int
    path_patterns: tuple[str, ...]
    target_group_arn: Optional[str]
    # The settings' controls (see controls.py); no client secret is ever held here.
    source_cidrs: tuple[str, ...] = ()
    authenticate: Optional[RuleControl] = None
    controls_tag: Optional[str] = None  # recorded at creation; None: no controls

    def describe(self) -> str:
        return f"create rule {self.priority} for {' '.join(self.path_patterns)}"


@dataclass(frozen=True)
class ModifyRule(_Step):
    """Rewrite one of our rules: our parts as planned, the operator's kept as they were."""

    server_id: str
    rule_arn: str
    priority: Optional[int]
    path_patterns: tuple[str, ...]
    target_group_arn: Optional[str]
    source_cidrs: tuple[str, ...] = ()
    authenticate: Optional[RuleControl] = None
    kept_conditions: tuple[RuleControl, ...] = ()
    kept_actions: tuple[RuleControl, ...] = ()
    controls_tag: Optional[str] = None  # a new value to record; None: unchanged
    reason: str = ""

    def describe(self) -> str:
        kept = len(self.kept_conditions) + len(self.kept_actions)
        return (
            f"modify rule {self.priority} of {self.server_id}"
            + (f" ({self.reason})" if self.reason else "")
            + (f", keeping {kept} condition(s)/action(s) added by hand" if kept else "")
        )


@dataclass(frozen=True)
class DeleteRule(_Step):
    server_id: str
    rule_arn: str
    priority: Optional[int]

    def describe(self) -> str:
        return f"delete rule {self.priority} of {self.server_id}"


@dataclass(frozen=True)
class DeleteTargetGroup(_Step):
    server_id: str
    target_group_arn: str
    name: str

    def describe(self) -> str:
        return f"delete target group {self.name} of {self.server_id}"


Action = Union[
    CreateTargetGroup,
    UpdateTargetGroup,
    SetDeregistrationDelay,
    RegisterTarget,
    DeregisterTarget,
    TagTargetGroup,
    CreateRule,
    ModifyRule,
    DeleteRule,
    DeleteTargetGroup,
]
