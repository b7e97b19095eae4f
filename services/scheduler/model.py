"""Everything the scheduler knows, shared by its loop and its reconcile thread.

The loop thread changes the configuration in force and the operators' wishes (hand
stops, restarts); the reconcile thread records what the agents report. Both go
through the methods here, under one lock. Decisions are made by the pure modules
(ports, backoff, diff, views) from a consistent copy of this state, so the plan the
CLI shows is computed exactly as the reconcile thread computes it.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import replace
from typing import Callable, Iterable, Optional

from common.protocol import (
    AgentsState,
    BridgeState,
    ClusterView,
    ConfigState,
    ContainerEvent,
    ContainerInfo,
    ControlState,
    ControlView,
    ErrorCode,
    NodeView,
    PlanStep,
    RouteInfo,
    RoutingStatus,
    RoutingView,
    ServerState,
    ServiceError,
    StateEvent,
)
from common.settings import Settings

from .backoff import UNREADY, BackoffPolicy, CrashBook
from .config_keeper import ActiveConfig
from .diff import ContainerPlan, RoutePlan, Step, Want, plan_containers, plan_routes
from .node_agents import NodeReport, serving_nodes, targets_of
from .ports import allocate_ports
from .server_state import ServerFacts, server_state
from .swarm_plan import ServiceStep, plan_services
from .swarm_services import NodeInfo, ServiceState

# A container.bridge event's word, as the state a status read would show.
_BRIDGE_STATES = {"up": BridgeState.READY, "failed": BridgeState.FAILED, "down": BridgeState.DOWN}

# Events kept for snapshots (the dashboard shows the recent ones).
RECENT_EVENTS = 200
# A running container the bridge does not serve is re-offered at most this often.
ADOPT_INTERVAL = 10.0


class Model:
    def __init__(
        self,
        settings: Settings,
        *,
        policy: Optional[BackoffPolicy] = None,
        is_free: Callable[[int], bool] = lambda port: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.settings = settings
        self.policy = policy or BackoffPolicy()
        self.is_free = is_free
        self.clock = clock
        self.started_at = clock()
        self.active = ActiveConfig()
        self.held: set[str] = set()
        self.crashes = CrashBook(self.policy)
        self.ports: dict[str, int] = {}
        self.port_errors: dict[str, str] = {}
        self.containers: Optional[dict[str, ContainerInfo]] = None
        # [cluster] engine = swarm: the services and nodes as the manager's engine says.
        self.swarm = settings.cluster.engine == "swarm"
        self.services: Optional[dict[str, ServiceState]] = None
        self.nodes: list[NodeInfo] = []
        self.node_reports: Optional[dict[str, NodeReport]] = None  # each node's container-agent
        self.holds_known = False  # swarm: the hand stops were read from the services' labels
        self.control = ControlView()  # swarm: which manager's control plane acts
        self.routes: Optional[dict[str, RouteInfo]] = None
        self.routing_error: Optional[str] = None
        self.routing_status = RoutingStatus()  # the alb-agent's full view, for the dashboard
        self.call_errors: dict[str, str] = {}
        self.restart_requests: set[str] = set()
        self.adopt_sent: dict[str, float] = {}
        self.reconciles = 0
        self.last_reconcile_at: Optional[float] = None
        self.recent: collections.deque[StateEvent] = collections.deque(maxlen=RECENT_EVENTS)
        self.outbox: list[StateEvent] = []

    @property
    def port_range(self) -> tuple[int, int]:
        s = self.settings.service
        return s.port_range_start, s.port_range_end

    # --- events ------------------------------------------------------------------------

    def add_events(self, events: Iterable[StateEvent]) -> None:
        with self.lock:
            for event in events:
                event = replace(event, ts=self.clock()) if event.ts is None else event
                self.outbox.append(event)
                self.recent.append(event)

    def take_events(self) -> list[StateEvent]:
        with self.lock:
            out, self.outbox = self.outbox, []
            return out

    # --- configuration and operators (loop thread) ---------------------------------------

    def set_config(self, active: ActiveConfig, events: Iterable[StateEvent] = ()) -> None:
        with self.lock:
            old = self.active.servers
            for sid, server in active.servers.items():
                before = old.get(sid)
                if before is not None and before.spec_hash != server.spec_hash:
                    # A new spec is a fresh start: the hand stop and the back-off end.
                    self.held.discard(sid)
                    self.crashes.reset(sid)
                    self.call_errors.pop(sid, None)
            for sid in set(old) - set(active.servers):
                self.held.discard(sid)
                self.restart_requests.discard(sid)
                self.call_errors.pop(sid, None)
            for sid, server in active.servers.items():
                if server.disabled:
                    self.held.discard(sid)
                    self.restart_requests.discard(sid)
            self.active = active
        self.add_events(events)

    def _enabled_or_fail(self, server_id: str) -> None:
        server = self.active.servers.get(server_id)
        if server is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no server {server_id!r} in the configuration in force")
        if server.disabled:
            raise ServiceError(
                ErrorCode.CONFLICT,
                f'server {server_id!r} is disabled in the configuration; set "disabled": false to run it',
            )

    def hold(self, server_id: str) -> None:
        with self.lock:
            self._enabled_or_fail(server_id)
            self.held.add(server_id)
            self.restart_requests.discard(server_id)
            self.crashes.reset(server_id)
        self.add_events(
            [
                StateEvent(
                    message=f"server {server_id}: stop asked for; it stays stopped until started",
                    server_id=server_id,
                    code="action",
                )
            ]
        )

    def release(self, server_id: str, restart: bool = False) -> None:
        with self.lock:
            self._enabled_or_fail(server_id)
            self.held.discard(server_id)
            self.crashes.reset(server_id)
            self.call_errors.pop(server_id, None)
            self.adopt_sent.pop(server_id, None)
            if restart:
                self.restart_requests.add(server_id)
        verb = "restart" if restart else "start"
        self.add_events(
            [StateEvent(message=f"server {server_id}: {verb} asked for", server_id=server_id, code="action")]
        )

    # --- observations (reconcile thread) -------------------------------------------------

    def observe_containers(self, infos: Iterable[ContainerInfo]) -> None:
        with self.lock:
            now = self.clock()
            self.containers = {info.server_id: info for info in infos}
            self._track_crashes(now)
            self._allocate()

    def observe_services(
        self,
        services: dict[str, ServiceState],
        nodes: list[NodeInfo],
        reports: dict[str, NodeReport],
        acting: bool = True,
    ) -> None:
        """`acting`: this scheduler holds the control plane's lease. Until it acts, which
        servers are stopped by hand is what the services' labels say (another manager's
        scheduler stopped them); from then on it is this one's to change."""
        with self.lock:
            if not (acting and self.holds_known):
                self.held = {sid for sid, s in services.items() if s.held and sid in self.active.enabled}
            self.holds_known = acting
            self.services = dict(services)
            self.nodes = list(nodes)
            self.node_reports = dict(reports)
            self._allocate()

    def observe_container(self, info: ContainerInfo) -> None:
        """One server's status from a reply (fresher than the last full read)."""
        with self.lock:
            if self.containers is None:
                return
            previous = self.containers.get(info.server_id)
            if info.pending and previous is not None:
                # "Still working on it": what was known stays, marked as in flight.
                info = replace(previous, pending=info.pending)
            self.containers[info.server_id] = info
            self._track_crashes(self.clock(), only=info.server_id)

    def observe_bridge(self, event: ContainerEvent) -> bool:
        """A container.bridge event: the server's bridge state, fresher than the last read
        (a cold start of many servers is one long pass: each one shows as served when its
        bridge is, not at the end). True when the state changed."""
        state = _BRIDGE_STATES.get(event.bridge or "")
        with self.lock:
            info = self.containers.get(event.server_id) if self.containers is not None else None
            if state is None or info is None or info.bridge == state:
                return False
            if event.container_id and info.container_id and info.container_id != event.container_id:
                return False  # about a container the last read did not see yet
            reason = "" if state is BridgeState.READY else event.message
            self.containers[event.server_id] = replace(info, bridge=state, bridge_reason=reason)
            return True

    def observe_routes(
        self, routes: Optional[Iterable[RouteInfo]], error: Optional[str] = None, status: Optional[RoutingStatus] = None
    ) -> None:
        with self.lock:
            if routes is not None:
                self.routes = {r.server_id: r for r in routes}
            if status is not None:
                self.routing_status = status
            self.routing_error = error

    def forget(self, agent: str) -> None:
        """An agent restarted (new epoch): what it said before may be stale."""
        with self.lock:
            if agent == "containers":
                self.containers = None
            else:
                self.routes = None
                self.routing_error = None
                self.routing_status = RoutingStatus()  # the old agent's view (rules, groups) is stale too

    def _track_crashes(self, now: float, only: Optional[str] = None) -> None:
        assert self.containers is not None
        enabled = self.active.enabled
        for sid, info in self.containers.items():
            if only is not None and sid != only:
                continue
            if sid not in enabled:
                continue
            if sid in self.held:
                self.crashes.acknowledge(sid, info)
                continue
            before = self.crashes.get(sid)
            after = self.crashes.observe(sid, info, now)
            if after.failures > before.failures:
                code = f"exit code {after.exit_code}" if after.exit_code is not None else ""
                why = after.error or code or "stopped"
                if after.crash_looping(self.policy):
                    msg = f"server {sid}: failed again ({why}); crash-looping, next start in {after.delay:.0f} s"
                    level = "error"
                elif after.last_kind == UNREADY:
                    msg = f"server {sid}: not ready ({why}); restarting it"
                    level = "warning"
                else:
                    msg = f"server {sid}: container ended ({why}); starting it again"
                    level = "warning"
                self.add_events([StateEvent(message=msg, level=level, server_id=sid, code="crash")])

    def _allocate(self) -> None:
        enabled = sorted(self.active.enabled)
        if self.swarm:
            # The services hold the ports, the same on every node (the cluster's allocation).
            from_containers = {sid: s.host_port for sid, s in (self.services or {}).items() if s.host_port is not None}
        else:
            from_containers = {
                sid: i.host_port
                for sid, i in (self.containers or {}).items()
                if i.host_port is not None and i.container_id
            }
        from_routes = {
            sid: r.port
            for sid, r in (self.routes or {}).items()
            if r.port is not None and (r.rule_arn or r.target_group_arn)
        }
        reserved = {port for sid, port in from_containers.items() if sid not in self.active.enabled}
        allocation = allocate_ports(
            enabled,
            self.port_range,
            current={s: p for s, p in self.ports.items() if s in enabled},
            recovered=[from_containers, from_routes],
            reserved=reserved,
            is_free=self.is_free,
        )
        new_errors = {sid: e for sid, e in allocation.errors.items() if self.port_errors.get(sid) != e}
        self.ports = allocation.ports
        self.port_errors = allocation.errors
        if new_errors:
            self.add_events(
                [
                    StateEvent(message=f"server {sid}: {e}", level="error", server_id=sid, code="ports")
                    for sid, e in sorted(new_errors.items())
                ]
            )

    def record_call(self, step: Step | ServiceStep, error: Optional[str]) -> None:
        """How a container step (or, with Swarm, a service step) went."""
        with self.lock:
            if error is None:
                self.call_errors.pop(step.server_id, None)
            else:
                self.call_errors[step.server_id] = error
            if step.action == "adopt":
                self.adopt_sent[step.server_id] = self.clock()
            # Each of these starts the server afresh: a hand restart is done.
            if step.action in ("restart", "start", "create", "recreate", "update"):
                self.restart_requests.discard(step.server_id)

    def attempted(self, server_id: str) -> None:
        with self.lock:
            self.crashes.attempted(server_id)

    def reconciled(self) -> None:
        with self.lock:
            self.reconciles += 1
            self.last_reconcile_at = self.clock()

    # --- decisions -------------------------------------------------------------------

    def wants(self, now: float) -> dict[str, Want]:
        with self.lock:
            out = {}
            for sid, server in self.active.enabled.items():
                sent = self.adopt_sent.get(sid)
                out[sid] = Want(
                    server_id=sid,
                    spec_hash=server.spec_hash,
                    host_port=self.ports.get(sid),
                    held=sid in self.held,
                    wait=self.crashes.get(sid).waiting(now),
                    restart=sid in self.restart_requests,
                    adopt_ok=sent is None or now - sent >= ADOPT_INTERVAL,
                )
            return out

    def route_wants(self) -> dict[str, int]:
        with self.lock:
            out = {sid: self.ports[sid] for sid in self.active.enabled if sid in self.ports}
            for sid in self.active.protected:
                route = (self.routes or {}).get(sid)
                if route is not None and route.port is not None and route.rule_arn:
                    out[sid] = route.port  # left alone like its container
            return out

    def plan(self, now: Optional[float] = None) -> tuple[ContainerPlan, Optional[RoutePlan]]:
        """What a reconcile would do now. No container steps before the container-agent
        answered or while no good configuration exists; no route plan in that case
        either."""
        with self.lock:
            now = self.clock() if now is None else now
            if not self.active.usable or self._observed() is None:
                return ContainerPlan(), None
            if self.swarm:
                if self.node_reports is None:
                    return ContainerPlan(), None  # whom to register is not known yet
                wants = self.route_wants()
                targets = {sid: targets_of(sid, self.node_reports) for sid in wants}
                return ContainerPlan(), plan_routes(wants, self.routes, targets)
            keep = set(self.active.protected)
            cplan = plan_containers(self.wants(now), self.containers, keep)
            return cplan, plan_routes(self.route_wants(), self.routes)

    def _observed(self) -> Optional[dict]:
        """What runs, as last read: the services (swarm) or the containers; None: not yet."""
        return self.services if self.swarm else self.containers

    def service_steps(self, now: Optional[float] = None) -> list[ServiceStep]:
        """[cluster] engine = swarm: what a reconcile would change in the services now."""
        with self.lock:
            if not self.swarm or not self.active.usable or self.services is None:
                return []
            now = self.clock() if now is None else now
            default = self.settings.cluster.default_replicas
            replicas = {sid: s.replicas or default for sid, s in self.active.enabled.items()}
            return plan_services(self.wants(now), replicas, self.services, set(self.active.protected))

    def next_wakeup(self, now: float) -> Optional[float]:
        """Seconds until a crash back-off ends or an adopt may be retried."""
        with self.lock:
            waits = []
            for sid in self.active.enabled:
                left = self.crashes.get(sid).waiting(now)
                if left > 0 and sid not in self.held:
                    waits.append(left)
                sent = self.adopt_sent.get(sid)
                if sent is not None and now - sent < ADOPT_INTERVAL:
                    waits.append(ADOPT_INTERVAL - (now - sent))
            return min(waits) if waits else None

    # --- views -----------------------------------------------------------------------

    def server_ids(self) -> list[str]:
        with self.lock:
            ids = set(self.active.servers) | set(self.active.protected)
            for sid, info in (self.containers or {}).items():
                if info.container_id and info.state != "missing" and not self.swarm:
                    ids.add(sid)
            ids.update(self.services or {})
            return sorted(ids)

    def facts(self, server_id: str) -> ServerFacts:
        with self.lock:
            config = self.active.servers.get(server_id)
            route_wanted = server_id in self.route_wants()
            return ServerFacts(
                server_id=server_id,
                config=config,
                protected=server_id in self.active.protected,
                config_error=self.active.kept.get(server_id),
                port=self.ports.get(server_id),
                port_error=self.port_errors.get(server_id),
                container=(self.containers or {}).get(server_id),
                containers_known=self.containers is not None,
                crash=self.crashes.get(server_id),
                held=server_id in self.held,
                route=(self.routes or {}).get(server_id),
                routes_known=self.routes is not None,
                route_wanted=route_wanted,
                call_error=self.call_errors.get(server_id),
                config_usable=self.active.usable,
                swarm=self.swarm,
                service=(self.services or {}).get(server_id),
                services_known=self.services is not None,
                node_names={n.node_id: n.hostname for n in self.nodes},
                served_by=serving_nodes(server_id, self.node_reports or {}),
            )

    def server_states(self) -> dict[str, ServerState]:
        with self.lock:
            now = self.clock()
            return {sid: server_state(self.facts(sid), self.settings, self.policy, now) for sid in self.server_ids()}

    def config_state(self) -> ConfigState:
        with self.lock:
            return self.active.state

    def plan_steps(self) -> list[PlanStep]:
        cplan, rplan = self.plan()
        with self.lock:
            if not self.active.usable:
                return [
                    PlanStep(
                        action="nothing", reason="no usable configuration yet: " + "; ".join(self.active.state.errors)
                    )
                ]
            if self._observed() is None:
                who = "the Swarm manager's engine" if self.swarm else "the container-agent"
                return [PlanStep(action="nothing", reason=f"{who} has not answered yet")]
        steps = [PlanStep(action=s.action, server_id=s.server_id, reason=s.reason) for s in cplan.steps]
        steps += [PlanStep(action=s.action, server_id=s.server_id, reason=s.reason) for s in self.service_steps()]
        steps += [PlanStep(action="wait", server_id=sid, reason=why) for sid, why in sorted(cplan.waiting.items())]
        if rplan is not None:
            steps += [PlanStep(action=s.action, server_id=s.server_id, reason=s.reason) for s in rplan.changes]
        return steps

    def routing_view(self) -> RoutingView:
        with self.lock:
            return RoutingView(
                simulated=self.settings.routing_simulated,
                known=self.routes is not None,
                routes=[r for _, r in sorted((self.routes or {}).items())],
                error=self.routing_error,
                alb=self.routing_status,
            )

    def cluster_ports(self) -> dict[str, int]:
        """[cluster] engine = swarm: the port of every server that has a service."""
        with self.lock:
            return {
                sid: s.host_port
                for sid, s in (self.services or {}).items()
                if s.host_port is not None and sid in self.active.enabled
            }

    def cluster_targets(self) -> dict[str, list[str]]:
        """[cluster] engine = swarm: each routed server's registered targets, as the
        alb-agent last said (a draining replica waits until its node is not one)."""
        with self.lock:
            return {sid: list(r.targets) for sid, r in (self.routes or {}).items() if r.targets}

    def cluster_view(self) -> ClusterView:
        with self.lock:
            if not self.swarm:
                return ClusterView()
            reports = self.node_reports or {}
            nodes = []
            for n in self.nodes:
                r = reports.get(n.node_id)
                nodes.append(
                    NodeView(
                        node_id=n.node_id,
                        hostname=n.hostname,
                        address=n.address,
                        zone=n.zone,
                        role=n.role,
                        leader=n.leader,
                        state=n.state,
                        availability=n.availability,
                        reachable=None if r is None else r.reachable,
                        error=("" if r is None else r.error or r.instance_error),
                        instance_id="" if r is None else r.instance_id,
                        serves=[] if r is None else sorted(sid for sid in r.served if r.serves(sid)),
                    )
                )
            return ClusterView(engine="swarm", nodes=nodes, control=self.control)

    def control_state(self, agents: AgentsState) -> ControlState:
        with self.lock:
            return ControlState(
                servers=list(self.server_states().values()),
                config=self.active.state,
                agents=dict(agents.agents),
                routing=self.routing_view(),
                agent_errors=dict(agents.agent_errors),
                events=list(self.recent),
                reconciles=self.reconciles,
                last_reconcile_at=self.last_reconcile_at,
                started_at=self.started_at,
                port_range=list(self.port_range),
                cluster=self.cluster_view(),
            )
