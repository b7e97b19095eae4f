"""Plain data shared by the planner, the AWS reader and applier, and the router.

Everything converts to plain dicts/lists/str/int (`to_dict`) so it can travel over msgpack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from common import server_ids
from common.instance import INSTANCE_ID_RE
from common.protocol import AwsProblem

# Per-server error codes (RouteError.code).
QUOTA = "quota"
INVALID_ROUTE = "invalid_route"
PATH_CONFLICT = "path_conflict"
NAME_CONFLICT = "name_conflict"
TARGET_GROUP_MISMATCH = "target_group_mismatch"
RULE_CONFLICT = "rule_conflict"  # an action added by hand stands where our forward belongs
AWS_ERROR = "aws_error"

# Apply-wide failure codes (AwsFailure.code).
UNREACHABLE = "unreachable"
ACCESS_DENIED = "access_denied"
THROTTLED = "throttled"
NO_CREDENTIALS = "no_credentials"
NOT_FOUND = "not_found"  # the configured load balancer or listener
INSTANCE_ID = "instance_id"
API_ERROR = "api_error"

# Event kinds (AlbEvent.kind): the topics of the agent's PUB socket; each is a
# registered event type in common/protocol.py.
ROUTE_CREATED = "route.created"
ROUTE_CHANGED = "route.changed"
ROUTE_REMOVED = "route.removed"
TARGET_HEALTH_CHANGED = "route.health"
AWS_ERROR_EVENT = "route.aws_error"  # AWS failed the apply; detail["code"] says how
ROUTE_ERROR = "route.error"  # a server that cannot be routed for another reason
QUOTA_REACHED = "route.quota"
AWS_RECOVERED = "route.recovered"  # AWS answers again after a failure


@dataclass(frozen=True)
class DesiredRoute:
    port: int
    enabled: bool = True
    targets: Optional[tuple[str, ...]] = None  # instance ids; None: this host's instance


@dataclass(frozen=True)
class Target:
    instance_id: str
    port: int


@dataclass(frozen=True)
class HealthCheck:
    """The target-group settings we manage that describe_target_groups shows."""

    path: str
    interval_seconds: int
    timeout_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int
    protocol: str = "HTTP"
    port: str = "traffic-port"
    matcher: str = "200"


@dataclass(frozen=True)
class ObservedTargetGroup:
    arn: str
    name: str
    vpc_id: str
    protocol: str
    target_type: str
    health_check: HealthCheck
    load_balancer_arns: tuple[str, ...]
    tags: Mapping[str, str]
    # None = not read this time (the target tag is trusted instead).
    targets: Optional[tuple[Target, ...]] = None


@dataclass(frozen=True)
class RuleControl:
    """A condition or an action of a listener rule other than our path pattern and forward.

    `kind` is the condition's Field or the action's Type; `raw` the whole condition or
    action as ELBv2 describes it, every field kept so that it can be written back as it
    was (an action's Order aside: actions are renumbered when a rule is written). An OIDC
    client secret is never kept: AWS does not return it (and a stand-in that does is not
    believed), so it is written back with UseExistingClientSecret.
    """

    kind: str
    raw: Mapping[str, Any]

    def values(self) -> int:
        """How many condition values this condition uses (the ALB allows 5 per rule)."""
        total = 0
        for key, value in self.raw.items():
            if key.endswith("Config") and isinstance(value, Mapping):
                total += len(value.get("Values") or [])
        return total or len(self.raw.get("Values") or [])


@dataclass(frozen=True)
class ObservedRule:
    arn: str
    priority: Optional[int]  # None for the listener's default rule
    is_default: bool
    path_patterns: tuple[str, ...]  # values of path-pattern conditions
    forward_target_group_arns: tuple[str, ...]
    tags: Mapping[str, str]
    # Every other condition, and every action that is not a forward (in their Order).
    conditions: tuple[RuleControl, ...] = ()
    actions: tuple[RuleControl, ...] = ()


@dataclass(frozen=True)
class ObservedState:
    target_groups: tuple[ObservedTargetGroup, ...]
    rules: tuple[ObservedRule, ...]


@dataclass(frozen=True)
class RouteError:
    server_id: str
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem(self) -> AwsProblem:
        return AwsProblem(code=self.code, message=self.message, server_id=self.server_id)


@dataclass(frozen=True)
class AwsFailure:
    """Why a whole apply (or read) stopped: nothing after it was attempted."""

    code: str
    operation: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem(self) -> AwsProblem:
        return AwsProblem(code=self.code, message=self.message, operation=self.operation)


@dataclass(frozen=True)
class AlbEvent:
    kind: str
    server_id: Optional[str]
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "server_id": self.server_id, "message": self.message, "detail": dict(self.detail)}


def parse_routes(raw: Any) -> tuple[dict[str, DesiredRoute], dict[str, RouteError]]:
    """Desired routes from plain data, as they arrive over the wire.

    Accepts {id: port} or {id: {"port": p, "enabled": bool, "targets": [instance ids]}}.
    Entries that cannot be used come back as per-server errors; the rest are still applied.
    """
    routes: dict[str, DesiredRoute] = {}
    errors: dict[str, RouteError] = {}
    if not isinstance(raw, Mapping):
        raise ValueError("routes must be a map of server id to port")
    for server_id, value in raw.items():
        key = str(server_id)
        problem = server_ids.problem(server_id)
        if problem:
            errors[key] = RouteError(key, INVALID_ROUTE, problem)
            continue
        enabled = True
        targets = None
        if isinstance(value, Mapping):
            port = value.get("port")
            enabled = value.get("enabled", True)
            targets = value.get("targets")
        else:
            port = value
        if targets is not None and (
            not isinstance(targets, (list, tuple)) or not all(INSTANCE_ID_RE.fullmatch(str(t)) for t in targets)
        ):
            errors[key] = RouteError(key, INVALID_ROUTE, "'targets' must be a list of EC2 instance ids")
            continue
        if not isinstance(enabled, bool):
            errors[key] = RouteError(key, INVALID_ROUTE, "'enabled' must be true or false")
            continue
        if not enabled and port is None:
            port = 0
        if (
            isinstance(port, bool)
            or not isinstance(port, int)
            or not (0 <= port <= 65535 and (port > 0 or not enabled))
        ):
            errors[key] = RouteError(key, INVALID_ROUTE, f"port must be an integer 1..65535, got {port!r}")
            continue
        routes[key] = DesiredRoute(
            port=port, enabled=enabled, targets=None if targets is None else tuple(sorted(set(map(str, targets))))
        )
    return routes, errors


def wire_ready(value: Any) -> Any:
    """Data as msgpack takes it: tuples become lists, keys strings."""
    if isinstance(value, dict):
        return {str(k): wire_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire_ready(v) for v in value]
    return value
