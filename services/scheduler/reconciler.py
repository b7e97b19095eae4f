"""The reconcile thread: observe both agents, decide (pure), apply, repeat.

A pass runs when it is due (the interval of `reconciliation_interval_seconds`, the end
of a crash back-off) or at once when kicked: a container event, a configuration
change, an agent that (re)appeared, an operator's action. The loop thread never waits
for it; it only kicks, and reads the model. Requests to an agent are bounded
(AgentLink), so one agent that is down delays its own steps, never the other agent's.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Callable, Optional, Sequence

from common.protocol import (
    ContainerEnsure,
    ContainerInfo,
    ContainerRef,
    ContainerStatusQuery,
    RoutesApply,
    RoutesStatusQuery,
    StateEvent,
)
from common.reqrep import RemoteError

from . import scheduler_metrics
from .agents import AgentLink, AgentUnavailable
from .control_lease import ControlLease
from .diff import Step
from .model import Model
from .node_agents import NodeAgents
from .swarm_plan import ServiceStep
from .swarm_services import SwarmError, SwarmServices

log = logging.getLogger(__name__)

# Passes kicked in a burst (several events at once) are run as one after this pause.
COALESCE_SECONDS = 0.05
# Container steps that free a port and a name: sent before the others.
FREEING = ("stop", "remove")
# A pass follows this soon after a request an agent refused.
RETRY_SECONDS = 1.0
# ... and after a routes.apply the alb-agent refused (AWS unreachable, say).
ROUTES_RETRY_SECONDS = 10.0
# [cluster] engine = swarm: Swarm moves tasks by itself (a node lost, drained) and says
# nothing to us: the services are read this often.
SWARM_POLL_SECONDS = 2.0


class Reconciler:
    def __init__(
        self,
        model: Model,
        containers: AgentLink,
        routes: AgentLink,
        *,
        interval: float,
        notify: Callable[[], None] = lambda: None,
        parallel_steps: int = 1,
        swarm: Optional[SwarmServices] = None,
        node_agents: Optional[NodeAgents] = None,
        lease: Optional[ControlLease] = None,
    ) -> None:
        self.model = model
        self.swarm = swarm  # the servers run as Swarm services of this manager
        self.node_agents = node_agents  # ... served by the container-agent of each node
        self.lease = lease  # ... and this manager's scheduler acts only while it holds this
        self.containers = containers
        self.routes = routes
        self.interval = interval
        self._notify = notify  # wakes the loop thread: the state may have changed
        self._cond = threading.Condition()
        self._kicked = False
        self._full = True
        self._stopping = False
        self._next_full = 0.0
        self._retry_at: Optional[float] = None  # a step failed: look again soon
        self._last_pass = 0.0
        # Container steps in flight at once: a cold start of many servers is bound by
        # Docker's create and start, which the engine runs side by side.
        self._steps = concurrent.futures.ThreadPoolExecutor(max(parallel_steps, 1), thread_name_prefix="step")
        # The routes of a pass go to the alb-agent while its container steps run: they
        # do not depend on each other, and a cold start of many servers is long.
        self._routing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="routes")
        self._thread = threading.Thread(target=self._run, name="reconcile", daemon=True)

    # --- loop thread side ----------------------------------------------------------------

    def start(self) -> None:
        if self.lease is not None:
            self.lease.start()
        self._thread.start()

    def kick(self, full: bool = False, why: str = "") -> None:
        """Run a pass as soon as possible (`full`: also re-send the routes)."""
        with self._cond:
            self._kicked = True
            self._full = self._full or full
            self._cond.notify_all()
        if why:
            log.debug("reconcile kicked: %s", why)

    def stop(self, timeout: float = 15.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._steps.shutdown(wait=False, cancel_futures=True)
        self._routing.shutdown(wait=False, cancel_futures=True)

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                full = self._wait()
                if full is None:
                    return
                kind = "full" if full else "partial"
                started = time.monotonic()
                try:
                    self.run_pass(full)
                    scheduler_metrics.RECONCILES.labels(kind, "ok").inc()
                except Exception:  # a bug must not end self-healing: log, go on
                    log.exception("reconcile pass failed")
                    scheduler_metrics.RECONCILES.labels(kind, "failed").inc()
                scheduler_metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
                self._notify()
        finally:
            if self.lease is not None:
                self.lease.stop()  # after the last pass: another manager may act at once
            self.containers.close()
            self.routes.close()
            if self.node_agents is not None:
                self.node_agents.close()

    def _wait(self) -> Optional[bool]:
        """Block until a pass is due; its `full` flag, None when stopping."""
        with self._cond:
            while not self._stopping and not self._kicked:
                now = time.monotonic()
                if now >= self._next_full:
                    self._full = True
                    break
                deadline = self._next_full
                if self._retry_at is not None:
                    deadline = min(deadline, self._retry_at)
                if self.swarm is not None:
                    deadline = min(deadline, self._last_pass + SWARM_POLL_SECONDS)
                wake = self.model.next_wakeup(self.model.clock())
                if wake is not None:
                    deadline = min(deadline, now + wake + 0.01)  # a crash back-off ends
                for link in (self.containers, self.routes):
                    if not link.health().available and not link.due() and not link.wait_for_heartbeat():
                        deadline = min(deadline, now + link.next_try_in() + 0.01)
                self._cond.wait(max(deadline - now, 0.0))
                if time.monotonic() >= deadline and deadline < self._next_full:
                    break
            if self._stopping:
                return None
            full, self._full, self._kicked = self._full, False, False
            self._retry_at = None
            self._last_pass = time.monotonic()
            if full:
                self._next_full = time.monotonic() + self.interval
        time.sleep(COALESCE_SECONDS)
        return full

    def acting(self) -> bool:
        """Not a standby manager's scheduler: may change services, routes and nodes."""
        return self.lease is None or self.lease.acting()

    def run_pass(self, full: bool) -> None:
        """One reconcile: observe, plan, apply (a standby observes only)."""
        acting = self.acting()
        if self.lease is not None:
            with self.model.lock:
                self.model.control = self.lease.view()
        self._observe_routes()
        if self.swarm is not None:
            self._observe_services(acting)
        else:
            self._observe_containers()
        self._notify()
        if not acting:
            self.model.reconciled()
            return
        cplan, rplan = self.model.plan()
        routing = None
        if rplan is not None and (rplan.needed or full):
            routing = self._routing.submit(self._apply_routes, rplan.entries, rplan.changes, full)
        if self.swarm is not None:
            self._apply_service_steps(self.model.service_steps())
        else:
            self._apply_container_steps(cplan.steps)
        if routing is not None:
            routing.result()
        self.model.reconciled()

    # --- observing ---------------------------------------------------------------------------

    def _observe_containers(self) -> None:
        try:
            listing = self.containers.call("container.status", ContainerStatusQuery())
        except AgentUnavailable as exc:
            log.debug("%s", exc)
            return
        except RemoteError as exc:
            log.warning("container status failed: %s", exc.message)
            return
        self.model.observe_containers(listing.containers)

    def _observe_services(self, acting: bool) -> None:
        assert self.swarm is not None
        try:
            services, nodes = self.swarm.observe(), self.swarm.nodes()
        except Exception as exc:  # the engine unreachable, or not a manager: said, retried
            log.warning("the Swarm services could not be read: %s", exc)
            with self._cond:
                self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        reports = {}
        if self.node_agents is not None:  # a standby only asks; the active one tells
            told = (self.model.cluster_ports(), self.model.cluster_targets()) if acting else (None, None)
            reports = self.node_agents.poll(nodes, *told)
        self.model.observe_services(services, nodes, reports, acting)

    def _observe_routes(self) -> None:
        try:
            listing = self.routes.call("routes.status", RoutesStatusQuery())
        except AgentUnavailable as exc:
            log.debug("%s", exc)
            return
        except RemoteError as exc:
            self.model.observe_routes(None, exc.message)
            return
        self.model.observe_routes(listing.routes, status=listing.status)

    # --- applying ----------------------------------------------------------------------------

    def _apply_container_steps(self, steps: Sequence[Step]) -> None:
        """Stops and removals first (they free ports and names), then the rest; each
        group side by side, in order, so the first servers come up first. Once the
        container-agent is found down, the steps not yet sent wait for the next pass."""
        freeing = [step for step in steps if step.action in FREEING]
        for group in (freeing, [step for step in steps if step.action not in FREEING]):
            futures = [self._steps.submit(self._apply_container_step, step) for step in group]
            down = False
            for future in futures:
                if not future.cancelled() and not future.result():
                    down = True
                    for later in futures:
                        later.cancel()  # those already sent finish
            if down:
                return

    def _apply_container_step(self, step: Step) -> bool:
        """Carry out one step; False when the container-agent is unavailable."""
        sid = step.server_id
        if step.action in ("create", "recreate", "start", "adopt"):
            with self.model.lock:
                server = self.model.active.servers.get(sid)
                port = self.model.ports.get(sid)
            if server is None or port is None:
                return True
            request = ContainerEnsure(server_id=sid, host_port=port, spec_hash=server.spec_hash)
        else:
            request = ContainerRef(server_id=sid)
        if step.starts:
            self.model.attempted(sid)
        log.info("server %s: %s (%s)", sid, step.action, step.reason)
        try:
            info = self.containers.call(step.request, request)
        except AgentUnavailable as exc:
            log.warning("server %s: %s not sent: %s", sid, step.action, exc)
            scheduler_metrics.STEPS.labels(step.action, "unsent").inc()
            return False
        except RemoteError as exc:
            log.warning("server %s: %s failed: %s", sid, step.action, exc.message)
            scheduler_metrics.STEPS.labels(step.action, "failed").inc()
            self.model.record_call(step, f"{step.action} failed: {exc.message}")
            self._refresh(sid)
            # No event may follow a refused request: look again soon (back-offs apply).
            with self._cond:
                self._retry_at = time.monotonic() + RETRY_SECONDS
            return True
        scheduler_metrics.STEPS.labels(step.action, "ok").inc()
        self.model.record_call(step, None)
        if isinstance(info, ContainerInfo):
            self.model.observe_container(info)
            self._notify()  # seen running as soon as it runs, not at the end of the pass
        if step.action in ("create", "recreate", "remove", "stop"):
            self.model.add_events(
                [StateEvent(message=f"server {sid}: {step.action} ({step.reason})", server_id=sid, code="reconcile")]
            )
        return True

    def _apply_service_steps(self, steps: Sequence[ServiceStep]) -> None:
        """Side by side: each is one request to the manager, which places the tasks. (The
        next pass, at most SWARM_POLL_SECONDS away, reads what they made.)"""
        with self.model.lock:
            room = sum(1 for n in self.model.nodes if n.available)  # as this pass read them
        for future in [self._steps.submit(self._apply_service_step, step, room) for step in steps]:
            future.result()

    def _apply_service_step(self, step: ServiceStep, nodes: int) -> None:
        assert self.swarm is not None
        sid = step.server_id
        if not self.acting():
            log.warning("server %s: %s service not sent: the control plane's lease was lost", sid, step.action)
            return
        with self.model.lock:
            server = self.model.active.servers.get(sid)
            port = self.model.ports.get(sid)
            current = (self.model.services or {}).get(sid)
        log.info("server %s: %s service (%s)", sid, step.action, step.reason)
        try:
            self.swarm.carry_out(step, server, port, current, nodes)
        except SwarmError as exc:
            log.warning("%s", exc)
            scheduler_metrics.STEPS.labels(step.action, "failed").inc()
            self.model.record_call(step, str(exc))
            with self._cond:
                self._retry_at = time.monotonic() + RETRY_SECONDS
            return
        scheduler_metrics.STEPS.labels(step.action, "ok").inc()
        self.model.record_call(step, None)
        self.model.add_events(
            [
                StateEvent(
                    message=f"server {sid}: {step.action} service ({step.reason})", server_id=sid, code="reconcile"
                )
            ]
        )

    def _refresh(self, server_id: str) -> None:
        """Read one server's status after a failed step (its error, its exit)."""
        try:
            listing = self.containers.call("container.status", ContainerStatusQuery(server_id=server_id))
        except (AgentUnavailable, RemoteError):
            return
        for info in listing.containers:
            self.model.observe_container(info)

    def _apply_routes(self, entries, changes, full: bool) -> None:
        if not self.acting():
            return  # the lease was lost during the pass: the active manager's routes stand
        for change in changes:
            log.info("route %s: %s (%s)", change.server_id, change.action, change.reason)
        try:
            result = self.routes.call("routes.apply", RoutesApply(routes=entries))
        except AgentUnavailable as exc:
            log.debug("%s", exc)
            return
        except RemoteError as exc:
            log.warning("routes.apply failed: %s", exc.message)
            self.model.observe_routes(None, exc.message)
            with self._cond:
                self._retry_at = time.monotonic() + ROUTES_RETRY_SECONDS
            return
        # While pending, its errors (if any) come with the next routes.status.
        self.model.observe_routes(result.routes, "; ".join(result.errors) or None)
