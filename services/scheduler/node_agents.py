"""The container-agent of every node of the swarm (`[cluster] engine = swarm`).

Membership comes from Swarm: each node the manager lists is told, at its address and
`[cluster] agent_port`, over CurveZMQ (common/curve.py), the cluster's servers and their
ports (a host without a replica answers 503 there), and answers which of them it serves
and which EC2 instance it is. That is what the ALB's target groups are made of: a node
whose agent does not answer, or whose replica's bridge is not ready, is no target. The
nodes are asked side by side, each with a short timeout, so one node that is down costs
one timeout per pass, not one per node.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from common.protocol import BridgeState, ClusterSync, ContainerInfo, ContainerList, ContainerStatusQuery
from common.reqrep import CodedError, ReqClient

from .swarm_services import NodeInfo

# Nodes asked at once.
PARALLEL = 16


@dataclass(frozen=True)
class NodeReport:
    """One node's container-agent, as last asked."""

    node_id: str
    hostname: str
    address: str
    reachable: bool
    error: str = ""
    instance_id: str = ""
    instance_error: str = ""
    served: Mapping[str, ContainerInfo] = field(default_factory=dict)  # server id -> its local replica

    def serves(self, server_id: str) -> bool:
        """A replica of the server runs here and its bridge is ready: a target for the ALB."""
        info = self.served.get(server_id)
        return info is not None and info.state == "running" and info.bridge == BridgeState.READY


class NodeAgents:
    def __init__(self, ctx: Any, port: int, *, timeout_ms: int, max_bytes: int, src: str) -> None:
        self.ctx = ctx
        self.port = port
        self.timeout_ms = timeout_ms
        self.max_bytes = max_bytes
        self.src = src
        self._pool = concurrent.futures.ThreadPoolExecutor(PARALLEL, thread_name_prefix="node")

    def poll(
        self,
        nodes: Sequence[NodeInfo],
        ports: Optional[Mapping[str, int]],
        targets: Optional[Mapping[str, Sequence[str]]] = None,
    ) -> dict[str, NodeReport]:
        """Every node that is up (by node id), told the cluster's servers and their ports
        (None: only asked, by a standby manager's scheduler), the nodes' addresses and
        each server's registered targets; a node Swarm says is down is not asked."""
        ready = {n.node_id: n.address for n in nodes if n.state == "ready" and n.address}
        registered = {sid: list(ids) for sid, ids in (targets or {}).items()}
        request = (
            ("cluster.sync", ClusterSync(ports=dict(ports), nodes=ready, targets=registered))
            if ports is not None
            else ("container.status", None)
        )
        futures = {
            n.node_id: self._pool.submit(self._ask, n, *request) for n in nodes if n.state == "ready" and n.address
        }
        return {node_id: future.result() for node_id, future in futures.items()}

    def _ask(self, node: NodeInfo, type: str, body: Any) -> NodeReport:
        endpoint = f"tcp://{node.address}:{self.port}"
        # A client per request: a REQ socket belongs to the thread that uses it.
        client = ReqClient(
            self.ctx, endpoint, timeout_ms=self.timeout_ms, retries=0, src=self.src, max_bytes=self.max_bytes
        )
        try:
            listing = client.call(type, body if body is not None else ContainerStatusQuery())
        except CodedError as exc:
            return NodeReport(node.node_id, node.hostname, node.address, reachable=False, error=exc.message[:300])
        finally:
            client.close()
        return report_of(node, listing)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def report_of(node: NodeInfo, listing: ContainerList) -> NodeReport:
    identity = listing.node
    if identity is not None and identity.node_id and identity.node_id != node.node_id:
        # Another engine answers at this address: its containers are not this node's.
        return NodeReport(
            node.node_id,
            node.hostname,
            node.address,
            reachable=False,
            error=f"the agent at {node.address} serves node {identity.node_id[:12]}, not {node.node_id[:12]}",
        )
    return NodeReport(
        node_id=node.node_id,
        hostname=node.hostname,
        address=node.address,
        reachable=True,
        instance_id=identity.instance_id if identity is not None else "",
        instance_error=(identity.instance_error if identity is not None else "the agent is not in swarm mode"),
        served={info.server_id: info for info in listing.containers if info.container_id},
    )


def targets_of(server_id: str, reports: Mapping[str, NodeReport]) -> list[str]:
    """The instances that serve a server now (sorted): the ALB targets of its group."""
    return sorted({r.instance_id for r in reports.values() if r.reachable and r.instance_id and r.serves(server_id)})


def serving_nodes(server_id: str, reports: Mapping[str, NodeReport]) -> Optional[list[str]]:
    """Host names of the nodes whose bridge serves the server; None before any answer."""
    if not reports:
        return None
    return sorted(r.hostname for r in reports.values() if r.reachable and r.serves(server_id))
