"""The scheduler's loop thread: control requests, the state stream, events, the file watch.

Sockets (all on the loop thread):
- REP `control`: control.status, control.action, control.plan, snapshot.get; answered
  at once from the model, never after waiting for an agent; control.traffic is passed
  on to the container-agent by the relay's threads (relay.py) and answered later;
- PUB `state`: state.server / state.config / state.event, with a snapshot over
  `snapshot.get` (the Clone pattern);
- SUB of each agent's events: a container that exited, a route that changed, and the
  heartbeats that tell whether an agent is alive, or came back (new epoch).

The reconcile thread (reconciler.py) talks to the agents; this thread kicks it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Optional

from common.config import load_config_for
from common.process import publish_on, serve_requests, subscribe_to
from common.protocol import (
    AgentsState,
    ClusterView,
    ControlAccepted,
    ControlPlan,
    ControlState,
    ErrorCode,
    Message,
    RoutingView,
    ServerState,
    ServiceError,
    Snapshot,
    StateEvent,
    to_plain,
)
from common.reqrep import Deferred
from common.service import Service
from common.settings import Settings
from common.swarm_service import service_policy

from . import scheduler_metrics
from .agents import AgentLink
from .config_keeper import apply_loaded
from .control_lease import ControlLease
from .model import Model
from .node_agents import NodeAgents
from .ports import port_is_free
from .reconciler import Reconciler
from .relay import AgentRelay
from .server_state import same_state
from .swarm_services import SwarmServices
from .watch import FileWatch

log = logging.getLogger("scheduler")

NAME = "scheduler"
CONTAINER_AGENT = "container-agent"
ALB_AGENT = "alb-agent"
WATCH_SECONDS = 1.0
# A request to the Swarm manager's engine (services, tasks, nodes) is given this long.
SWARM_API_TIMEOUT = 30
# A node's container-agent answers a status request within this (else it is no target).
NODE_TIMEOUT_MS = 1500
# A traffic request waits this long for the container-agent (which answers within 3 s).
TRAFFIC_TIMEOUT_MS = 3500


def swarm_services(settings: Settings) -> Optional[SwarmServices]:
    """[cluster] engine = swarm: the services of this node's engine, a Swarm manager."""
    if settings.cluster.engine != "swarm":
        return None
    import docker  # only in swarm mode: on one host the scheduler drives no engine (and saves the import's memory)

    client = docker.from_env(timeout=SWARM_API_TIMEOUT)
    policy = service_policy(settings.cluster, settings.aws.deregistration_delay_seconds)
    return SwarmServices(client, settings.aws.cluster_name, policy)


def control_lease(settings: Settings, on_change: Callable[[], None]) -> Optional[ControlLease]:
    """[cluster] engine = swarm: whether this manager's control plane acts (a client of
    its own, with a timeout shorter than the lease: a silent engine must not hold it)."""
    if settings.cluster.engine != "swarm":
        return None
    import docker

    lease_seconds = settings.cluster.control_lease_seconds
    client = docker.from_env(timeout=max(1, int(lease_seconds / 2)))
    return ControlLease(client, settings.aws.cluster_name, lease_seconds, on_change=on_change)


class Scheduler:
    def __init__(
        self,
        service: Service,
        settings: Settings,
        config_path: Path,
        settings_path: Optional[Path] = None,
        *,
        model: Optional[Model] = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.config_path = Path(config_path)
        self.settings_path = settings_path
        z = settings.zmq
        self.model = model or Model(settings, is_free=partial(port_is_free, settings.service.bridge_host))
        self._hup = False
        self._published: dict[str, ServerState] = {}
        self._published_config = None
        self._published_agents: Optional[AgentsState] = None
        self._published_routing: Optional[RoutingView] = None
        self._published_cluster: Optional[ClusterView] = None
        self._agents_shown: dict[str, str] = {}
        self._epochs: dict[str, Optional[str]] = {CONTAINER_AGENT: None, ALB_AGENT: None}
        self._was_silent: dict[str, bool] = {CONTAINER_AGENT: False, ALB_AGENT: False}

        handlers = {
            "control.status": self.on_status,
            "control.action": self.on_action,
            "control.plan": self.on_plan,
            "control.traffic": self.on_traffic,
            "snapshot.get": self.on_snapshot,
        }
        self.rep = serve_requests(service, NAME, z.scheduler_control, handlers, z)
        self.pub = publish_on(service, NAME, z.scheduler_state, z)
        self.subs = {
            CONTAINER_AGENT: subscribe_to(service, z.container_events, ("container.",), z),
            ALB_AGENT: subscribe_to(service, z.route_events, ("route.",), z),
        }
        for name, sub in self.subs.items():
            service.add_reader(sub.socket, partial(self.on_agent_messages, name))
        link = partial(
            AgentLink,
            ctx=service.ctx,
            timeout_ms=z.request_timeout_ms,
            attempts=z.request_retries,
            src=NAME,
            max_bytes=z.max_message_bytes,
        )
        self.links = {
            CONTAINER_AGENT: link(
                CONTAINER_AGENT,
                endpoint=z.containers,
                silent=self.subs[CONTAINER_AGENT].silent,
                on_back=partial(self.model.forget, "containers"),
            ),
            ALB_AGENT: link(
                ALB_AGENT,
                endpoint=z.routes,
                silent=self.subs[ALB_AGENT].silent,
                on_back=partial(self.model.forget, "routes"),
            ),
        }
        self.traffic_relay = AgentRelay(
            CONTAINER_AGENT,
            service.ctx,
            z.containers,
            timeout_ms=TRAFFIC_TIMEOUT_MS,
            src=NAME,
            max_bytes=z.max_message_bytes,
            silent=self.subs[CONTAINER_AGENT].silent,
        )
        self._publish_queued = False
        self.reconciler = Reconciler(
            self.model,
            self.links[CONTAINER_AGENT],
            self.links[ALB_AGENT],
            interval=settings.service.reconciliation_interval_seconds,
            notify=self._publish_soon,
            parallel_steps=settings.service.parallel_steps,
            swarm=swarm_services(settings),
            lease=control_lease(settings, self._control_changed),
            node_agents=(
                NodeAgents(
                    service.ctx,
                    settings.cluster.agent_port,
                    timeout_ms=min(z.request_timeout_ms, NODE_TIMEOUT_MS),
                    max_bytes=z.max_message_bytes,
                    src=NAME,
                )
                if settings.cluster.engine == "swarm"
                else None
            ),
        )
        self.watch = FileWatch(self.config_path)
        self.settings_watch = FileWatch(settings_path) if settings_path else None
        service.every(WATCH_SECONDS, self.tick)
        service.on_close(self.close)
        if settings.routing_simulated:
            log.warning(
                "no ALB configured ([aws] alb_arn/listener_arn empty): routing is "
                "simulated by the alb-agent's local AWS stand-in"
            )
        self.reload("start")
        self.reconciler.start()

    # --- configuration --------------------------------------------------------------------

    def reload(self, why: str) -> str:
        """Read the configuration file now; a message saying what came of it."""
        self.watch.refresh()
        loaded = load_config_for(self.config_path, self.settings)
        with self.model.lock:
            previous = self.model.active if self.model.active.usable else None
        active, events = apply_loaded(previous, loaded, self.model.clock(), str(self.settings_path or ""))
        self.model.set_config(active, events)
        for issue in loaded.issues:
            level = {"error": logging.ERROR, "warning": logging.WARNING}.get(issue.severity, logging.INFO)
            log.log(level, "config (%s): %s", why, issue)
        if not loaded.readable:
            message = f"{self.config_path}: unusable; " + (
                "the last good configuration stays in force"
                if active.usable
                else "nothing is changed until it can be used"
            )
        else:
            message = f"{self.config_path}: {len(active.enabled)} enabled, {len(active.disabled)} disabled" + (
                f", {len(loaded.errors)} error(s)" if loaded.errors else ""
            )
        log.info("configuration (%s): %s", why, message)
        self.reconciler.kick(full=True, why=f"configuration {why}")
        self.publish()
        return message

    def request_reload(self) -> None:
        """SIGHUP: reload at the next tick (signal handlers must not do the work)."""
        self._hup = True

    def tick(self) -> None:
        if self._hup:
            self._hup = False
            self.reload("SIGHUP")
        elif self.watch.changed():
            self.reload("file changed")
        if self.settings_watch is not None and self.settings_watch.changed():
            # Endpoints, ports and AWS settings are bound at start by every process.
            message = (
                f"{self.settings_path} changed: restart the orchestrator's processes "
                f"to apply it (the configuration file is reloaded live, settings are not)"
            )
            log.warning("%s", message)
            self.model.add_events([StateEvent(message=message, level="warning", code="settings")])
        self.publish()

    # --- agents' events -------------------------------------------------------------------

    def on_agent_messages(self, name: str) -> None:
        sub = self.subs[name]
        kick = full = False
        why = ""
        while True:
            msg = sub.receive()
            if msg is None:
                break
            if msg.epoch != self._epochs[name]:
                if self._epochs[name] is not None:
                    log.info("%s restarted (new epoch)", name)
                    # Its earlier answers may be stale: unknown until it is asked again.
                    self.model.forget("containers" if name == CONTAINER_AGENT else "routes")
                self._epochs[name] = msg.epoch
                kick = full = True
                why = f"{name} (re)appeared"
                self.links[name].heard()
            elif self._was_silent[name]:
                kick = full = True
                why = f"{name} heard again"
                self.links[name].heard()
            self._was_silent[name] = False
            if msg.type == "container.bridge" and self.model.observe_bridge(msg.body):
                self._publish_soon()  # served now, whatever the reconcile pass is doing
            if msg.type != "heartbeat":
                kick = True
                why = why or f"{msg.type} {getattr(msg.body, 'server_id', '') or ''}".strip()
        if kick:
            self.reconciler.kick(full=full, why=why)

    def _control_changed(self) -> None:
        """This manager's control plane became active or stands by (the lease's thread)."""
        self.reconciler.kick(full=True, why="control plane role")
        self._publish_soon()

    # --- publishing -------------------------------------------------------------------------

    def _publish_soon(self) -> None:
        """The reconcile thread says the state may have changed: one publish is queued
        on the loop however often it says so."""
        if not self._publish_queued:
            self._publish_queued = True
            self.service.call_soon(self.publish)

    def agents(self) -> AgentsState:
        shown, errors = {}, {}
        for name, link in self.links.items():
            health = link.health()
            silent = self.subs[name].silent()
            if silent:
                self._was_silent[name] = True
            ok = health.available and not silent
            shown[name] = "available" if ok else "unavailable"
            if not ok:
                errors[name] = health.error or ("no heartbeat" if silent else "unknown")
        return AgentsState(agents=shown, agent_errors=errors)

    def publish(self) -> None:
        """Publish what changed since the last call (loop thread only)."""
        self._publish_queued = False
        now = time.time()
        states = self.model.server_states()
        for sid, state in states.items():
            old = self._published.get(sid)
            if old is None or not same_state(old, state):
                state = _stamped(state, now)
                self._published[sid] = state
                self.pub.publish("state.server", state)
        for sid in sorted(set(self._published) - set(states)):
            del self._published[sid]
            self.pub.publish(
                "state.server",
                ServerState(server_id=sid, status="removed", enabled=False, removed=True, updated_at=now),
            )
        config = self.model.config_state()
        if config != self._published_config:
            self._published_config = config
            self.pub.publish("state.config", config)
        agents = self.agents()
        shown, errors = agents.agents, agents.agent_errors
        if agents != self._published_agents:
            self._published_agents = agents
            self.pub.publish("state.agents", agents)
        routing = self.model.routing_view()
        if routing != self._published_routing:
            self._published_routing = routing
            self.pub.publish("state.routing", routing)
        cluster = self.model.cluster_view()
        if cluster != self._published_cluster:
            self._published_cluster = cluster
            self.pub.publish("state.cluster", cluster)
        for name, value in shown.items():
            before = self._agents_shown.get(name)
            self._agents_shown[name] = value
            if before is not None and before != value:
                detail = f": {errors[name]}" if name in errors else ""
                log.log(logging.INFO if value == "available" else logging.WARNING, "%s is %s%s", name, value, detail)
                self.model.add_events(
                    [
                        StateEvent(
                            message=f"{name} is {value}{detail}",
                            level="info" if value == "available" else "error",
                            code="agent",
                        )
                    ]
                )
        for event in self.model.take_events():
            self.pub.publish("state.event", event)
        scheduler_metrics.published(self._published.values(), shown)

    def snapshot_state(self) -> ControlState:
        """What the stream has said so far (publish() ran just before): the servers as
        published, so that the next state.server event follows on from them."""
        state = self.model.control_state(self.agents())
        return replace(state, servers=[s for _, s in sorted(self._published.items())])

    # --- control handlers -----------------------------------------------------------------

    def on_status(self, msg: Message) -> ControlState:
        self.publish()
        state = self.model.control_state(self.agents())
        only = msg.body.server_id
        if only is not None:
            servers = [s for s in state.servers if s.server_id == only]
            if not servers:
                raise ServiceError(ErrorCode.NOT_FOUND, f"no server {only!r}")
            state = replace(state, servers=servers)
        return state

    def on_action(self, msg: Message) -> ControlAccepted:
        action, sid = msg.body.action, msg.body.server_id
        log.info("control: %s%s (from %s)", action, f" {sid}" if sid else "", msg.src or "?")
        if action != "reload" and not self.reconciler.acting():
            control = self.reconciler.lease.view() if self.reconciler.lease is not None else None
            where = f"on {control.active_node}" if control is not None and control.active_node else "not known yet"
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"this manager's control plane is standing by: the active one is {where}; ask there",
            )
        if action == "stop":
            self.model.hold(sid)
            message = f"{sid} is stopped and stays stopped until started"
        elif action == "start":
            self.model.release(sid)
            message = f"{sid} is started"
        elif action == "restart":
            self.model.release(sid, restart=True)
            message = f"{sid} is restarted"
        elif action == "sync":
            message = "a full reconcile runs now"
        else:  # reload
            message = self.reload("reload asked for")
        self.reconciler.kick(full=action in ("sync", "reload"), why=f"control {action}")
        self.publish()
        return ControlAccepted(action=action, server_id=sid, message=message)

    def on_plan(self, msg: Message) -> ControlPlan:
        return ControlPlan(steps=self.model.plan_steps())

    def on_traffic(self, msg: Message) -> Deferred:
        """What the bridges served: the container-agent's answer, passed on."""
        return self.traffic_relay.ask("container.traffic", msg.body)

    def on_snapshot(self, msg: Message) -> Snapshot:
        self.publish()  # the state below includes everything published so far
        return self.pub.snapshot(to_plain(self.snapshot_state()))

    def close(self) -> None:
        self.reconciler.stop()
        self.traffic_relay.close()


def _stamped(state: ServerState, now: float) -> ServerState:
    return replace(state, updated_at=now)
