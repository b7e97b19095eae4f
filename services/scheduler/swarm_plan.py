"""Desired state against the Swarm services (`[cluster] engine = swarm`): the steps. Pure.

Each wanted server gets at most one step:

    create   no service yet
    update   its spec or port changed: Swarm rolls the tasks (start-first, rolled back
             when the new task fails)
    scale    only the replica count differs (a hand stop scales to 0 and says so in a
             label, which a manager taking over reads; start scales back)
    restart  restarted by hand: every task replaced, one after another

A service of ours whose server is no longer wanted (removed, disabled) is removed, except
for servers the configuration protects. Swarm restarts crashed tasks itself, so there
is no crash back-off here: a task's failures are shown, not retried by us.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping

from .diff import Want
from .swarm_services import ServiceState


@dataclass(frozen=True)
class ServiceStep:
    action: str  # create | update | scale | restart | remove
    server_id: str
    reason: str
    replicas: int = 0  # the replicas the service is to have (create, update, scale, restart)
    held: bool = False  # stopped by hand: said in a label, for the manager that acts next


def plan_services(
    wants: Mapping[str, Want],
    replicas: Mapping[str, int],
    services: Mapping[str, ServiceState],
    keep: Collection[str] = (),
) -> list[ServiceStep]:
    """`replicas`: each wanted server's count from its configuration (a held server: 0)."""
    steps: list[ServiceStep] = []
    for sid in sorted(wants):
        want = wants[sid]
        if want.host_port is None:
            continue  # no port: said in its state, nothing to run it on
        count = 0 if want.held else replicas[sid]
        held = want.held
        current = services.get(sid)
        if current is None:
            if count:
                steps.append(ServiceStep("create", sid, "no service yet", count))
        elif current.spec_hash != want.spec_hash:
            steps.append(ServiceStep("update", sid, "spec changed", count, held))
        elif current.host_port != want.host_port:
            steps.append(ServiceStep("update", sid, f"port {current.host_port} -> {want.host_port}", count, held))
        elif current.desired != count or current.held != held:
            why = "stopped by hand" if held else f"{current.desired} -> {count} replicas"
            steps.append(ServiceStep("scale", sid, why, count, held))
        elif want.restart and count:
            steps.append(ServiceStep("restart", sid, "restart asked for", count))
    for sid in sorted(set(services) - set(wants) - set(keep)):
        steps.append(ServiceStep("remove", sid, "no longer wanted"))
    return steps
