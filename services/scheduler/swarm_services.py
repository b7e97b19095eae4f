"""The servers as Docker Swarm services, through the manager's engine (`[cluster] engine =
swarm`): what runs (`observe`, `nodes`), and the steps of the scheduler's plan
(swarm_plan.py: create, update, scale, restart, remove; `carry_out`). Swarm places,
restarts and rolls the tasks; this module never touches a container.

A service is ours when it carries our labels with this cluster's name, as containers
are (common/container_labels.py); the same labels are put on its containers, so that the
container-agent on each node finds its local tasks as it finds its own containers. The
spec hash label says whether a service's definition is the configuration's: a change of
replicas alone scales it, anything else updates it (start-first, rolled back by Swarm
when the new task fails).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from common import container_labels as ours
from common.config import ServerConfig
from common.secrets import shown
from common.swarm_service import ServicePolicy, service_definition, update_order

if TYPE_CHECKING:
    from .swarm_plan import ServiceStep

log = logging.getLogger(__name__)

# On a service stopped by hand: a manager that takes over keeps it stopped.
HELD = ours.RESERVED_LABEL_PREFIX + "held"

# Task states of a task that is, or will soon be, a running container (Swarm's own words).
_STARTING = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"})
_FAILED = frozenset({"failed", "rejected"})


class SwarmError(Exception):
    """The engine refused or failed a service operation (the message names the server)."""


@dataclass(frozen=True)
class ServiceState:
    server_id: str
    service_id: str
    version: int  # the service's version index: an update names the one it changes
    spec_hash: str
    host_port: Optional[int]
    desired: int  # replicas asked for
    running: int  # tasks running now
    starting: int  # tasks on their way to running
    nodes: tuple[str, ...]  # node ids of the running tasks
    update: str = ""  # the rolling update's state, "" when none ("updating", "rollback_completed", ...)
    update_message: str = ""
    failed: int = 0  # tasks that failed or were rejected, in Swarm's task history
    error: str = ""  # the most recent one's reason ("No such image", "task: non-zero exit (1)")
    held: bool = False  # stopped by hand (its HELD label)


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    hostname: str
    address: str  # the node's address in the swarm
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    role: str  # manager | worker
    leader: bool
    zone: str  # its value of [cluster] zone_label

    @property
    def available(self) -> bool:
        return self.state == "ready" and self.availability == "active"


class SwarmServices:
    def __init__(self, client: Any, cluster: str, policy: ServicePolicy) -> None:
        self.client = client  # a docker.DockerClient on a manager node
        self.cluster = cluster
        self.policy = policy

    def _filters(self) -> dict:
        return {"label": [f"{ours.MANAGED}=true", f"{ours.CLUSTER}={self.cluster}"]}

    def observe(self) -> dict[str, ServiceState]:
        """Our services by server id, with their tasks' progress."""
        api = self.client.api
        services = api.services(filters=self._filters())
        tasks = api.tasks(filters={"label": self._filters()["label"]}) if services else []
        by_service: dict[str, list[dict]] = {}
        for task in tasks:
            by_service.setdefault(task.get("ServiceID", ""), []).append(task)
        out: dict[str, ServiceState] = {}
        for service in services:
            spec = service.get("Spec", {})
            labels = spec.get("Labels") or {}
            if not ours.is_ours(labels, self.cluster):
                continue
            placement = ours.placement_of(labels)
            assert placement is not None  # is_ours checked the server id
            mine = by_service.get(service["ID"], [])
            # A task Swarm is stopping still runs while it drains: it is no replica any more.
            running = [
                t for t in mine if t.get("Status", {}).get("State") == "running" and t.get("DesiredState") == "running"
            ]
            starting = [
                t for t in mine if t.get("DesiredState") == "running" and t.get("Status", {}).get("State") in _STARTING
            ]
            update = service.get("UpdateStatus") or {}
            failed = sorted(
                (t for t in mine if t.get("Status", {}).get("State") in _FAILED),
                key=lambda t: str(t.get("Status", {}).get("Timestamp", "")),
            )
            last = failed[-1].get("Status", {}) if failed else {}
            out[placement.server_id] = ServiceState(
                server_id=placement.server_id,
                service_id=service["ID"],
                version=int(service.get("Version", {}).get("Index", 0)),
                spec_hash=placement.spec_hash,
                host_port=placement.host_port,
                desired=int(spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)),
                running=len(running),
                starting=len(starting),
                nodes=tuple(sorted(t.get("NodeID", "") for t in running)),
                update=str(update.get("State", "")),
                update_message=shown(str(update.get("Message", "")), 300),
                failed=len(failed),
                error=shown(str(last.get("Err") or last.get("Message") or ""), 300),
                held=labels.get(HELD) == "true",
            )
        return out

    def carry_out(
        self,
        step: ServiceStep,
        server: Optional[ServerConfig],
        host_port: Optional[int],
        current: Optional[ServiceState],
        nodes: int,
    ) -> None:
        """One step of the plan (swarm_plan.py); `nodes`: how many can take a task now
        (as the pass read them). Raises SwarmError."""
        try:
            if step.action == "remove":
                if current is not None:
                    self._remove(current)
                return
            if step.action in ("scale", "restart") and current is not None:
                self._rewrite(current, step.replicas, nodes, force=step.action == "restart", held=step.held)
                return
            assert server is not None and host_port is not None, step
            definition = self.definition(server, host_port, step.replicas, nodes)
            if step.held:
                definition["labels"] = {**definition["labels"], HELD: "true"}
            if current is None:
                self.client.api.create_service(**definition)
            else:
                self.client.api.update_service(current.service_id, current.version, **definition)
        except SwarmError:
            raise
        except Exception as exc:  # docker.errors.APIError, connection errors: said, not raised raw
            raise SwarmError(
                f"server {step.server_id}: the Swarm service could not be {_DONE[step.action]}: {_reason(exc)}"
            ) from None

    def definition(self, server: ServerConfig, host_port: int, replicas: int, nodes: int) -> dict[str, Any]:
        placement = ours.Placement(
            server_id=server.server_id,
            host_port=host_port,
            spec_hash=server.spec_hash,
            transport=ours.HTTP if server.http else ours.STDIO,
            http_port=server.http.port if server.http else None,
            http_path=server.http.path if server.http else "",
        )
        labels = ours.labels_for(placement, self.cluster)
        return service_definition(server.server_id, server.spec, self.policy, labels, replicas, nodes)

    def _rewrite(self, current: ServiceState, replicas: int, nodes: int, force: bool, held: bool = False) -> None:
        """The service as the engine has it, with another replica count (no task is
        replaced) or, `force`, every task replaced one after another."""
        api = self.client.api
        spec = api.inspect_service(current.service_id)["Spec"]
        labels = {k: v for k, v in (spec.get("Labels") or {}).items() if k != HELD}
        if held:
            labels[HELD] = "true"
        template = dict(spec["TaskTemplate"])
        if force:
            template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
        order = update_order(self.policy, replicas, nodes)
        update_config = {**(spec.get("UpdateConfig") or {}), "Order": order}
        rollback_config = {**(spec.get("RollbackConfig") or {}), "Order": order}
        api.update_service(
            current.service_id,
            current.version,
            task_template=template,
            name=spec["Name"],
            labels=labels,
            mode={"Replicated": {"Replicas": replicas}},
            update_config=update_config,
            rollback_config=rollback_config,
            networks=spec.get("Networks"),
            endpoint_spec=spec.get("EndpointSpec"),
        )

    def nodes(self) -> list[NodeInfo]:
        """The swarm's nodes as the manager sees them."""
        out = []
        for n in self.client.api.nodes():
            spec, status = n.get("Spec", {}), n.get("Status", {})
            labels = spec.get("Labels") or {}
            manager = n.get("ManagerStatus") or {}
            out.append(
                NodeInfo(
                    node_id=n.get("ID", ""),
                    hostname=str(n.get("Description", {}).get("Hostname", "")),
                    address=str(status.get("Addr", "")),
                    state=str(status.get("State", "")),
                    availability=str(spec.get("Availability", "")),
                    role=str(spec.get("Role", "")),
                    leader=bool(manager.get("Leader")),
                    zone=str(labels.get(self.policy.zone_label, "")) if self.policy.zone_label else "",
                )
            )
        return sorted(out, key=lambda n: (n.hostname, n.node_id))

    def _remove(self, state: ServiceState) -> None:
        try:
            self.client.api.remove_service(state.service_id)
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                return  # already gone: what was asked
            raise


_DONE = {"create": "created", "update": "updated", "scale": "scaled", "restart": "restarted", "remove": "removed"}


def _reason(exc: Exception) -> str:
    """The engine's words, with any secret value of ours masked (it may echo a spec)."""
    explanation = getattr(exc, "explanation", None)
    return shown(str(explanation or exc), 300)
