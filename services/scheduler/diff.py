"""Desired state against what the agents report: the steps that close the gap. Pure.

Containers: each wanted server gets at most one step (create, recreate, start, adopt,
restart, stop; a running container whose server did not answer initialize is restarted
like a crash); a container of ours whose server is no longer wanted is removed,
except for servers the configuration protects. A server with an operation still in
flight at the container-agent, or waiting out a crash back-off, gets no step.

Routes: the alb-agent takes the full wanted route set at once; it is sent only when
it differs from what the agent reports (or when asked), with the differences listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Mapping, Optional

from common import server_ids
from common.protocol import BridgeState, ContainerInfo, RouteEntry, RouteInfo

from .backoff import RUNNING_STATES

# What each container step asks of the container-agent.
REQUEST_OF = {
    "create": "container.ensure",
    "recreate": "container.ensure",
    "start": "container.ensure",
    "adopt": "container.ensure",
    "restart": "container.restart",
    "stop": "container.stop",
    "remove": "container.remove",
}
STARTING_STEPS = frozenset({"create", "recreate", "start", "restart"})


@dataclass(frozen=True)
class Want:
    """One enabled server as the scheduler wants it."""

    server_id: str
    spec_hash: str
    host_port: Optional[int]  # None: no port could be given (reported elsewhere)
    held: bool = False  # stopped by hand
    wait: float = 0.0  # crash back-off: seconds before it may start again
    restart: bool = False  # a restart was asked for by hand
    adopt_ok: bool = True  # a served-check (adopt) may be sent now


@dataclass(frozen=True)
class Step:
    action: str
    server_id: str
    reason: str

    @property
    def request(self) -> str:
        return REQUEST_OF[self.action]

    @property
    def starts(self) -> bool:
        return self.action in STARTING_STEPS


@dataclass(frozen=True)
class ContainerPlan:
    steps: list[Step] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # id -> why nothing is done now


def _present(info: Optional[ContainerInfo]) -> bool:
    return info is not None and bool(info.container_id) and info.state != "missing"


def plan_containers(
    wants: Mapping[str, Want], observed: Mapping[str, ContainerInfo], keep: Collection[str] = ()
) -> ContainerPlan:
    steps: list[Step] = []
    waiting: dict[str, str] = {}
    for sid in sorted(wants):
        want, info = wants[sid], observed.get(sid)
        if info is not None and info.pending:
            waiting[sid] = f"{info.pending} in progress"
            continue
        running = _present(info) and info.state in RUNNING_STATES
        if want.held:
            if running:
                steps.append(Step("stop", sid, "stopped by hand"))
            continue
        if want.host_port is None:
            continue
        if not _present(info):
            step = Step("create", sid, "no container")
        elif info.spec_hash != want.spec_hash:
            # A configuration change is never held back by a crash back-off.
            steps.append(Step("recreate", sid, "the configuration changed"))
            continue
        elif info.host_port != want.host_port:
            steps.append(Step("recreate", sid, f"the host port changed ({info.host_port} -> {want.host_port})"))
            continue
        elif want.restart and running:
            steps.append(Step("restart", sid, "restart asked for"))
            continue
        elif running and info.bridge == BridgeState.FAILED:
            # Its server did not answer initialize: restarted like a crash, back-off included.
            step = Step("restart", sid, info.bridge_reason or "the MCP server is not ready")
        elif running:
            if info.bridge in ("", BridgeState.DOWN) and want.adopt_ok:
                steps.append(Step("adopt", sid, "running but not served by the bridge"))
            continue
        else:
            code = f" (exit code {info.exit_code})" if info.exit_code is not None else ""
            step = Step("start", sid, f"the container is {info.state}{code}")
        if want.wait > 0 and not want.restart:
            waiting[sid] = f"crash back-off: next start in {want.wait:.0f} s"
            continue
        steps.append(step)
    for sid in sorted(observed):
        if sid in wants or sid in keep or not _present(observed[sid]):
            continue
        if observed[sid].pending:
            waiting[sid] = f"{observed[sid].pending} in progress"
            continue
        steps.append(Step("remove", sid, "no longer in the configuration or disabled"))
    return ContainerPlan(steps=steps, waiting=waiting)


@dataclass(frozen=True)
class RoutePlan:
    entries: list[RouteEntry] = field(default_factory=list)  # the full wanted set
    changes: list[Step] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return bool(self.changes)


def routed_ports(observed: Mapping[str, RouteInfo]) -> dict[str, int]:
    """Servers with a rule and a target group in place, and their target port."""
    return {
        sid: r.port
        for sid, r in observed.items()
        if r.enabled and r.rule_arn and r.target_group_arn and r.port is not None
    }


def plan_routes(
    wanted: Mapping[str, int],
    observed: Optional[Mapping[str, RouteInfo]],
    targets: Optional[Mapping[str, list[str]]] = None,
) -> RoutePlan:
    """`targets`: the instances that serve each server ([cluster] engine = swarm); None:
    the alb-agent's own instance serves them all (one host)."""
    entries = [
        RouteEntry(server_id=sid, port=port, targets=None if targets is None else list(targets.get(sid, [])))
        for sid, port in sorted(wanted.items())
    ]
    known = observed if observed is not None else {}
    routed = routed_ports(known)
    changes: list[Step] = []
    for sid, port in sorted(wanted.items()):
        info = known.get(sid)
        if sid not in routed:
            why = "routing not known yet" if observed is None else "no route"
            changes.append(Step("route-add", sid, f"{why}: {server_ids.path_prefix(sid)} -> port {port}"))
        elif routed[sid] != port:
            changes.append(Step("route-move", sid, f"target port {routed[sid]} -> {port}"))
        elif info is not None and info.error:
            changes.append(Step("route-retry", sid, info.error))
        elif targets is not None and info is not None and sorted(info.targets) != sorted(targets.get(sid, [])):
            now = ", ".join(sorted(targets.get(sid, []))) or "none"
            changes.append(Step("route-targets", sid, f"targets {', '.join(sorted(info.targets)) or 'none'} -> {now}"))
    for sid in sorted(set(known) - set(wanted)):
        info = known[sid]
        if info.rule_arn or info.target_group_arn:
            changes.append(Step("route-remove", sid, "no longer wanted"))
    return RoutePlan(entries=entries, changes=changes)
