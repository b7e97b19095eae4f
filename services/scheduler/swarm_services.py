"""The servers as Docker Swarm services, through the manager's engine (`[cluster] engine =
swarm`): what runs (`observe`), and the three changes the scheduler makes (`apply` a
server's service, creating or updating it; `remove` it). Swarm places, restarts and rolls
the tasks; this module never touches a container.

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
from typing import Any, Optional

from common import container_labels as ours
from common.config import ServerConfig
from common.swarm_service import ServicePolicy, service_definition

log = logging.getLogger(__name__)

# Task states of a task that is, or will soon be, a running container (Swarm's own words).
_STARTING = frozenset({"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"})


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
            running = [t for t in mine if t.get("Status", {}).get("State") == "running"]
            starting = [
                t for t in mine if t.get("DesiredState") == "running" and t.get("Status", {}).get("State") in _STARTING
            ]
            update = service.get("UpdateStatus") or {}
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
                update_message=str(update.get("Message", ""))[:300],
            )
        return out

    def apply(self, server: ServerConfig, host_port: int, replicas: int, current: Optional[ServiceState] = None) -> str:
        """Create the server's service, or bring it to the configuration: "created",
        "updated", "scaled" or "unchanged". Raises SwarmError."""
        same = current is not None and current.spec_hash == server.spec_hash and current.host_port == host_port
        if same and current.desired == replicas:
            return "unchanged"  # no engine call: a pass over many servers asks nothing here
        placement = ours.Placement(
            server_id=server.server_id,
            host_port=host_port,
            spec_hash=server.spec_hash,
            transport=ours.HTTP if server.http else ours.STDIO,
            http_port=server.http.port if server.http else None,
            http_path=server.http.path if server.http else "",
        )
        labels = ours.labels_for(placement, self.cluster)
        api = self.client.api
        try:
            definition = service_definition(
                server.server_id, server.spec, self.policy, labels, replicas, self.available_nodes()
            )
            if current is None:
                api.create_service(**definition)
                return "created"
            if same:
                # Scaling alone: the task template as the engine has it (no task restarts).
                spec = api.inspect_service(current.service_id)["Spec"]
                api.update_service(
                    current.service_id,
                    current.version,
                    task_template=spec["TaskTemplate"],
                    name=spec["Name"],
                    labels=spec.get("Labels"),
                    mode={"Replicated": {"Replicas": replicas}},
                    update_config=definition["update_config"],  # the order depends on the replicas
                    rollback_config=definition["rollback_config"],
                    networks=spec.get("Networks"),
                    endpoint_spec=spec.get("EndpointSpec"),
                )
                return "scaled"
            api.update_service(current.service_id, current.version, **definition)
            return "updated"
        except Exception as exc:  # docker.errors.APIError, connection errors: said, not raised raw
            raise SwarmError(
                f"server {server.server_id}: the Swarm service could not be changed: {_reason(exc)}"
            ) from None

    def available_nodes(self) -> int:
        """Nodes that can take a task now: ready, and active (not paused or drained)."""
        nodes = self.client.api.nodes()
        return sum(
            1
            for n in nodes
            if n.get("Status", {}).get("State") == "ready" and n.get("Spec", {}).get("Availability") == "active"
        )

    def remove(self, state: ServiceState) -> None:
        try:
            self.client.api.remove_service(state.service_id)
        except Exception as exc:
            if getattr(getattr(exc, "response", None), "status_code", None) == 404:
                return  # already gone: what was asked
            raise SwarmError(
                f"server {state.server_id}: the Swarm service could not be removed: {_reason(exc)}"
            ) from None


def _reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)[:300]
