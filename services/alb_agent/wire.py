"""Translation between the agent's plain data and the protocol's message bodies."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from common.protocol import (
    MESSAGE_TYPES,
    ErrorCode,
    Kind,
    RouteChange,
    RouteEvent,
    RouteInfo,
    RoutesApply,
    RoutesResult,
    RoutingStatus,
    ServiceError,
)
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
from services.alb_agent.model import (
    INVALID_ROUTE,
    THROTTLED,
    UNREACHABLE,
    AlbEvent,
    AwsFailure,
    DesiredRoute,
    RouteError,
    parse_routes,
)
from services.alb_agent.router import ApplyResult

_CHANGE = {
    CreateTargetGroup: ("create", "target-group"),
    UpdateTargetGroup: ("modify", "target-group"),
    SetDeregistrationDelay: ("modify", "target-group"),
    TagTargetGroup: ("modify", "target-group"),
    DeleteTargetGroup: ("delete", "target-group"),
    RegisterTarget: ("register", "target"),
    DeregisterTarget: ("deregister", "target"),
    CreateRule: ("create", "rule"),
    ModifyRule: ("modify", "rule"),
    DeleteRule: ("delete", "rule"),
}


def routes_from_request(body: RoutesApply) -> tuple[dict[str, DesiredRoute], dict[str, RouteError]]:
    raw: dict[str, Any] = {}
    errors: dict[str, RouteError] = {}
    for entry in body.routes:
        if entry.server_id in raw:
            errors[entry.server_id] = RouteError(entry.server_id, INVALID_ROUTE, "listed twice in one route set")
            continue
        raw[entry.server_id] = {"port": entry.port, "enabled": entry.enabled, "targets": entry.targets}
    routes, invalid = parse_routes(raw)
    for sid in errors:
        routes.pop(sid, None)
    return routes, {**invalid, **errors}


def change_of(action: Action) -> RouteChange:
    verb, resource = _CHANGE[type(action)]
    return RouteChange(action=verb, resource=resource, server_id=action.server_id, detail=action.describe())


def route_infos(
    status: RoutingStatus,
    routes: Optional[Mapping[str, DesiredRoute]] = None,
    errors: Optional[Mapping[str, RouteError]] = None,
    priorities: Optional[Mapping[str, int]] = None,
    only: Optional[str] = None,
) -> list[RouteInfo]:
    """One RouteInfo per server known to the status, the request or the errors."""
    groups = {g.server_id: g for g in status.target_groups}
    rules = {r.server_id: r for r in status.rules if r.owned and r.server_id}
    known_errors = {e.server_id: e.message for e in status.errors if e.server_id}
    if errors is not None:
        known_errors = {sid: e.message for sid, e in errors.items()}
    routes = routes or {}
    priorities = priorities or {}
    ids = set(groups) | set(rules) | set(routes) | set(known_errors)
    out = []
    for sid in sorted(ids):
        if only is not None and sid != only:
            continue
        group, rule, route = groups.get(sid), rules.get(sid), routes.get(sid)
        targets = [t for t in (group.targets if group else []) if t.state != "draining"]
        port: Optional[int] = route.port if route and route.enabled else None
        target = next((t for t in targets if port is None or t.port == port), targets[0] if targets else None)
        if port is None and target:
            port = target.port
        enabled = route.enabled if route else bool(rule or group)
        routed = enabled and sid not in known_errors
        priority = priorities.get(sid, rule.priority if rule else None)
        out.append(
            RouteInfo(
                server_id=sid,
                port=port,
                enabled=enabled,
                target_group_arn=group.arn if group else None,
                target_group_name=(
                    group.name
                    if group
                    else naming.target_group_name(sid, status.cluster)
                    if routed and status.cluster
                    else None
                ),
                rule_arn=rule.arn if rule else None,
                priority=priority,
                health=target.state if target else None,
                error=known_errors.get(sid),
                targets=sorted({t.instance_id for t in targets if port is None or t.port == port}),
            )
        )
    return out


def routes_result(result: ApplyResult, routes: Mapping[str, DesiredRoute], status: RoutingStatus) -> RoutesResult:
    steps = result.plan.actions if result.dry_run else result.done
    errors = [f"{sid}: {e.code}: {e.message}" for sid, e in sorted(result.errors.items())]
    if result.failure is not None:
        errors.insert(0, f"AWS ({result.failure.code}): {result.failure.message}")
    return RoutesResult(
        dry_run=result.dry_run,
        changes=[change_of(a) for a in steps],
        routes=route_infos(status, routes, result.errors, result.priorities),
        errors=errors,
    )


def pending_result(routes: Mapping[str, DesiredRoute], dry_run: bool, status: RoutingStatus) -> RoutesResult:
    """The answer while the worker is still busy with the request."""
    return RoutesResult(dry_run=dry_run, routes=route_infos(status, routes), pending=True)


def failure_error(failure: AwsFailure) -> ServiceError:
    """The error reply for an apply that failed before changing anything."""
    code = ErrorCode.UNAVAILABLE if failure.code in (UNREACHABLE, THROTTLED) else ErrorCode.FAILED
    return ServiceError(code, f"AWS ({failure.code}): {failure.message}")


def event_message(event: AlbEvent) -> Optional[tuple[str, RouteEvent]]:
    """(topic, body) for the PUB socket, or None for a kind the protocol does not carry."""
    spec = MESSAGE_TYPES.get(event.kind)
    if spec is None or spec.kind is not Kind.EVENT:
        return None
    detail = event.detail
    priority = detail.get("priority")
    return event.kind, RouteEvent(
        server_id=event.server_id,
        priority=priority if isinstance(priority, int) else None,
        health=detail.get("state") if isinstance(detail.get("state"), str) else None,
        code=str(detail["code"]) if detail.get("code") is not None else None,
        message=event.message,
    )
