"""AlbRouter: read, plan and apply ALB path routing; report it. Plain data in and out.

Not thread-safe: one caller at a time (the agent's routing worker thread).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

from common import server_ids
from common.instance import InstanceIdError, resolve_instance_id
from common.protocol import ListenerInfo, RoutingStatus, RuleInfo, TargetGroupInfo, TargetInfo
from common.secrets import Secret
from common.settings import AwsSettings
from services.alb_agent.actions import Action, CreateRule, ModifyRule
from services.alb_agent.apply import PlanApplier
from services.alb_agent.aws_client import AwsCallError, AwsError, CallWatch, call, make_client
from services.alb_agent.model import (
    API_ERROR,
    AWS_ERROR,
    AWS_ERROR_EVENT,
    AWS_RECOVERED,
    INSTANCE_ID,
    NOT_FOUND,
    QUOTA,
    QUOTA_REACHED,
    ROUTE_CHANGED,
    ROUTE_CREATED,
    ROUTE_ERROR,
    ROUTE_REMOVED,
    TARGET_HEALTH_CHANGED,
    AlbEvent,
    AwsFailure,
    DesiredRoute,
    RouteError,
    Target,
)
from services.alb_agent.observe import RawState, TagCache, read_listings, read_target_health, registered_targets
from services.alb_agent.plan import ListenerPlan, PlanSettings, Quotas, owner_of, plan_routes, target_groups_to_read

log = logging.getLogger(__name__)

EMPTY_PLAN = ListenerPlan(actions=(), errors={}, changes={})


@dataclass(frozen=True)
class ApplyResult:
    plan: ListenerPlan
    dry_run: bool
    errors: Mapping[str, RouteError] = field(default_factory=dict)  # per server
    failure: Optional[AwsFailure] = None  # the whole apply stopped here
    events: tuple[AlbEvent, ...] = ()
    priorities: Mapping[str, int] = field(default_factory=dict)  # of rules created now
    done: tuple[Action, ...] = ()  # the plan's steps that were carried out

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "plan": self.plan.to_dict(),
            "errors": {k: v.to_dict() for k, v in sorted(self.errors.items())},
            "failure": self.failure.to_dict() if self.failure else None,
            "events": [e.to_dict() for e in self.events],
            "priorities": dict(sorted(self.priorities.items())),
            "done": [dict(a.to_dict(), summary=a.describe()) for a in self.done],
        }


class _SetupError(Exception):
    def __init__(self, failure: AwsFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class AlbRouter:
    """Keeps the listener's /mcp/{id} rules equal to a desired route set.

    Every `full_refresh_seconds` tags are read afresh and the registered targets of every
    group we own are checked against what we recorded; in between, remembered tags and
    our target tags are trusted, which keeps a no-op reconcile to a few list calls. (A
    new router knows no tags, so its first apply reads them all.)
    """

    def __init__(
        self,
        config: AwsSettings,
        client: Any = None,
        *,
        quotas: Optional[Quotas] = None,
        page_size: Optional[int] = None,
        full_refresh_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.client = client if client is not None else make_client(config)
        self.calls = CallWatch(self.client, clock)
        # The target-group quota stays AWS's 100; the rule quota can be raised.
        self.quotas = quotas or Quotas(rules_per_load_balancer=config.max_rules)
        self.page_size = page_size  # None: the service's default page size
        self.full_refresh_seconds = full_refresh_seconds
        self._clock = clock
        self._tag_cache = TagCache(clock)
        self._instance_id: Optional[str] = None
        self._vpc_id: Optional[str] = None
        self._listener: Optional[dict[str, Any]] = None
        self._last_full = clock()
        self._last_errors: dict[str, RouteError] = {}
        self._last_failure: Optional[AwsFailure] = None
        self._last_status: Optional[RoutingStatus] = None
        self._health: dict[str, dict[Target, str]] = {}
        self._pending_events: list[AlbEvent] = []
        self._secret_written: set[str] = set()  # see PlanSettings.secret_written

    # -- state of the agent -------------------------------------------------------------
    @property
    def degraded(self) -> bool:
        return self._last_failure is not None

    @property
    def last_failure(self) -> Optional[AwsFailure]:
        return self._last_failure

    def stalled(self) -> Optional[AwsFailure]:
        """The AWS call in flight when it has outlived one attempt's timeout (thread-safe:
        the agent's loop asks while this router's thread waits on AWS)."""
        return self.calls.overdue(self.config.api_timeout_seconds)

    def take_events(self) -> list[AlbEvent]:
        """Events found outside apply() (target health, AWS errors while reading)."""
        events, self._pending_events = self._pending_events, []
        return events

    # -- setup --------------------------------------------------------------------------
    def _setup(self) -> PlanSettings:
        if self._instance_id is None:
            try:
                self._instance_id = resolve_instance_id(self.config)
            except InstanceIdError as exc:
                raise _SetupError(AwsFailure(INSTANCE_ID, "instance_id", str(exc))) from None
        if self._listener is None:
            reply = call(self.client, "describe_listeners", ListenerArns=[self.config.listener_arn])
            listener = (reply.get("Listeners") or [{}])[0]
            if listener.get("LoadBalancerArn") != self.config.alb_arn:
                raise _SetupError(
                    AwsFailure(
                        NOT_FOUND,
                        "describe_listeners",
                        f"listener {self.config.listener_arn} belongs to "
                        f"{listener.get('LoadBalancerArn') or 'no load balancer'}, not to "
                        f"[aws] alb_arn {self.config.alb_arn}",
                    )
                )
            self._listener = listener
        if self._vpc_id is None:
            if self.config.vpc_id:
                self._vpc_id = self.config.vpc_id
            else:
                reply = call(self.client, "describe_load_balancers", LoadBalancerArns=[self.config.alb_arn])
                self._vpc_id = reply["LoadBalancers"][0].get("VpcId", "")
        return PlanSettings.from_config(
            self.config, self._instance_id, self._vpc_id, self.quotas, frozenset(self._secret_written)
        )

    def _read(self, full: bool) -> RawState:
        return read_listings(
            self.client,
            self.config.alb_arn,
            self.config.listener_arn,
            self._tag_cache,
            None if full else self.full_refresh_seconds,
            self.page_size,
        )

    def _guarded(self, work: Callable[[], Any]) -> tuple[Any, Optional[AwsFailure]]:
        """Run `work`; AWS failures come back as a value."""
        try:
            return work(), None
        except (AwsError, _SetupError) as exc:
            return None, exc.failure
        except AwsCallError as exc:
            return None, AwsFailure(API_ERROR, exc.operation, f"{exc.code}: {exc.message}")

    def _note_failure(self, failure: Optional[AwsFailure]) -> list[AlbEvent]:
        events = []
        if failure is not None and failure != self._last_failure:
            log.error("AWS: %s", failure.message)
            events.append(AlbEvent(AWS_ERROR_EVENT, None, failure.message, failure.to_dict()))
        elif failure is None and self._last_failure is not None:
            log.info("AWS answers again")
            events.append(AlbEvent(AWS_RECOVERED, None, "AWS answers again"))
        self._last_failure = failure
        return events

    # -- apply ---------------------------------------------------------------------------
    def apply(
        self, routes: Mapping[str, DesiredRoute], dry_run: bool = False, verify_targets: Optional[bool] = None
    ) -> ApplyResult:
        """Make the load balancer route exactly the enabled `routes` (or, dry, say how)."""
        now = self._clock()
        full = verify_targets if verify_targets is not None else (now - self._last_full >= self.full_refresh_seconds)

        def plan() -> tuple[PlanSettings, ListenerPlan]:
            settings = self._setup()
            raw = self._read(full)
            bare = raw.observed({})
            to_read = target_groups_to_read(routes, bare.target_groups, settings, verify=full)
            targets = {arn: registered_targets(read_target_health(self.client, arn)) for arn in to_read}
            return settings, plan_routes(routes, raw.observed(targets), settings)

        planned, failure = self._guarded(plan)
        if failure is not None:
            events = self._note_failure(failure)
            return ApplyResult(EMPTY_PLAN, dry_run, failure=failure, events=tuple(events))
        settings, route_plan = planned
        if dry_run:
            return ApplyResult(route_plan, True, errors=dict(route_plan.errors))

        outcome = PlanApplier(
            self.client,
            listener_arn=self.config.listener_arn,
            vpc_id=settings.vpc_id,
            cluster_name=settings.aws.cluster_name,
            tag_cache=self._tag_cache,
            oidc_client_secret=Secret(self.config.alb_oidc_client_secret),
        ).apply(route_plan)
        self._note_secret_written(settings, outcome.done, routes)
        if full and outcome.failure is None:
            self._last_full = now
        errors = {**route_plan.errors, **outcome.errors}
        events = self._note_failure(outcome.failure)
        events += self._change_events(
            routes, route_plan, outcome.done, errors, outcome.priorities, outcome.failure is not None
        )
        events += self._error_events(errors)
        return ApplyResult(
            route_plan,
            False,
            errors=errors,
            failure=outcome.failure,
            events=tuple(events),
            priorities=dict(outcome.priorities),
            done=tuple(outcome.done),
        )

    def _note_secret_written(
        self, settings: PlanSettings, done: list[Action], routes: Mapping[str, DesiredRoute]
    ) -> None:
        if not settings.controls.writes_client_secret:
            self._secret_written.clear()
            return
        self._secret_written &= {sid for sid, r in routes.items() if r.enabled}
        self._secret_written |= {
            a.server_id for a in done if isinstance(a, (CreateRule, ModifyRule)) and a.authenticate is not None
        }

    def _change_events(
        self,
        routes: Mapping[str, DesiredRoute],
        route_plan: ListenerPlan,
        done: list[Any],
        errors: Mapping[str, RouteError],
        priorities: Mapping[str, int],
        stopped: bool,
    ) -> list[AlbEvent]:
        done_by_server: dict[str, int] = {}
        for action in done:
            done_by_server[action.server_id] = done_by_server.get(action.server_id, 0) + 1
        planned_by_server: dict[str, int] = {}
        for action in route_plan.actions:
            planned_by_server[action.server_id] = planned_by_server.get(action.server_id, 0) + 1
        events = []
        for sid, change in sorted(route_plan.changes.items()):
            if sid in errors or done_by_server.get(sid, 0) != planned_by_server.get(sid, 0):
                continue  # failed or cut short: its error (or the failure) says so
            route = routes.get(sid)
            detail: dict[str, Any] = {"path": server_ids.path_prefix(sid)}
            if change == "removed":
                why = "disabled" if route is not None and not route.enabled else "removed"
                events.append(AlbEvent(ROUTE_REMOVED, sid, f"route of {sid} removed ({why})", dict(detail, reason=why)))
                continue
            detail["port"] = route.port if route else None
            if sid in priorities:
                detail["priority"] = priorities[sid]
            kind = ROUTE_CREATED if change == "created" else ROUTE_CHANGED
            events.append(AlbEvent(kind, sid, f"route of {sid} {change}", detail))
        for sid, count in done_by_server.items():
            log.info("route %s: %d AWS change(s) applied", sid, count)
        return events

    def _error_events(self, errors: Mapping[str, RouteError]) -> list[AlbEvent]:
        """One event per new or changed per-server error (not one per reconcile)."""
        events = []
        for sid, error in sorted(errors.items()):
            if self._last_errors.get(sid) == error:
                continue
            kind = QUOTA_REACHED if error.code == QUOTA else AWS_ERROR_EVENT if error.code == AWS_ERROR else ROUTE_ERROR
            events.append(AlbEvent(kind, sid, error.message, error.to_dict()))
        self._last_errors = dict(errors)
        return events

    # -- status --------------------------------------------------------------------------
    def status(self) -> RoutingStatus:
        """Listener, rules, priorities, target groups, targets and their health.

        While AWS cannot be read, the last good status comes back marked `stale`.
        """

        def read() -> RoutingStatus:
            settings = self._setup()
            raw = self._read(False)
            observed = raw.observed({})
            groups = []
            for tg in sorted(observed.target_groups, key=lambda g: g.name):
                sid = owner_of(tg.tags, settings.aws.cluster_name)
                if sid is None:
                    continue
                health = read_target_health(self.client, tg.arn)
                self._health_events(sid, {h.target: h.state for h in health})
                targets = [
                    TargetInfo(h.target.instance_id, h.target.port, h.state, h.reason, h.description) for h in health
                ]
                groups.append(TargetGroupInfo(sid, tg.name, tg.arn, tg.health_check.path, targets))
            for gone in set(self._health) - {g.server_id for g in groups}:
                del self._health[gone]
            rules = []
            for rule in observed.rules:
                sid = owner_of(rule.tags, settings.aws.cluster_name)
                rules.append(
                    RuleInfo(
                        arn=rule.arn,
                        priority=None if rule.is_default else rule.priority,
                        owned=sid is not None,
                        server_id=sid,
                        path_patterns=list(rule.path_patterns),
                        target_group_arns=list(rule.forward_target_group_arns),
                        # Kinds only (an action's fields may name an IdP client).
                        conditions=[c.kind for c in rule.conditions],
                        actions=[a.kind for a in rule.actions],
                    )
                )
            rules.sort(key=lambda r: (r.priority is None, r.priority or 0))
            listener = self._listener or {}
            return RoutingStatus(
                known=True,
                cluster=settings.aws.cluster_name,
                load_balancer_arn=self.config.alb_arn,
                listener=ListenerInfo(self.config.listener_arn, listener.get("Protocol"), listener.get("Port")),
                instance_id=settings.instance_id,
                vpc_id=settings.vpc_id,
                priority_range=[settings.aws.rule_priority_start, settings.aws.rule_priority_end],
                rules=rules,
                target_groups=groups,
            )

        status, failure = self._guarded(read)
        self._pending_events += self._note_failure(failure)
        if status is not None:
            self._last_status = status
        return replace(
            status or self._last_status or RoutingStatus(),
            degraded=failure is not None,
            stale=status is None,
            failure=failure.problem() if failure else None,
            errors=[e.problem() for _, e in sorted(self._last_errors.items())],
        )

    def _health_events(self, sid: str, now: dict[Target, str]) -> None:
        before = self._health.get(sid, {})
        for target, state in sorted(now.items(), key=lambda kv: kv[0].port):
            if before.get(target) != state:
                self._pending_events.append(
                    AlbEvent(
                        TARGET_HEALTH_CHANGED,
                        sid,
                        f"{sid} target {target.instance_id}:{target.port} is {state}",
                        {
                            "instance_id": target.instance_id,
                            "port": target.port,
                            "state": state,
                            "previous": before.get(target),
                        },
                    )
                )
        self._health[sid] = now
