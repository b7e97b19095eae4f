"""The labels that mark a container as ours and record what it was created for.

Docker labels are the only memory of the container-agent that survives it: ownership,
the server id, the host port of its bridge, the spec hash (drift detection) and the
transport. A restarted agent finds its containers by them and serves them again
without asking anyone; nothing is kept in a file of ours.

`cluster` scopes ownership: agents with different cluster names (the `[aws]
cluster_name` setting) can share one Docker engine without touching each other's
containers. With Swarm, the scheduler puts the same labels on a server's service and
its tasks' containers (services/scheduler/swarm_services.py), so that each node's
container-agent finds its local tasks as it finds its own containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from common.docker_args import RESERVED_LABEL_PREFIX

MANAGED = RESERVED_LABEL_PREFIX + "managed"
SERVER_ID = RESERVED_LABEL_PREFIX + "server-id"
HOST_PORT = RESERVED_LABEL_PREFIX + "host-port"
SPEC_HASH = RESERVED_LABEL_PREFIX + "spec-hash"
CLUSTER = RESERVED_LABEL_PREFIX + "cluster"
TRANSPORT = RESERVED_LABEL_PREFIX + "transport"
HTTP_PORT = RESERVED_LABEL_PREFIX + "http-port"
HTTP_PATH = RESERVED_LABEL_PREFIX + "http-path"

# Swarm tasks: the server's own stop signal and timeout, applied once a replica is drained.
STOP_SIGNAL = RESERVED_LABEL_PREFIX + "stop-signal"
STOP_TIMEOUT = RESERVED_LABEL_PREFIX + "stop-timeout"

# The keys above: extra labels (tests, operators) may not override them.
BOOKKEEPING = frozenset(
    {MANAGED, SERVER_ID, HOST_PORT, SPEC_HASH, CLUSTER, TRANSPORT, HTTP_PORT, HTTP_PATH, STOP_SIGNAL, STOP_TIMEOUT}
)

STDIO = "stdio"
HTTP = "http"


@dataclass(frozen=True)
class Placement:
    """What a container is for: the part of its labels the agent compares and serves by."""

    server_id: str
    host_port: Optional[int]  # None: the label is missing or unreadable
    spec_hash: str
    transport: str = STDIO
    http_port: Optional[int] = None  # transport "http": the port inside the container
    http_path: str = ""


def labels_for(placement: Placement, cluster: str, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """Our labels for a new container (`extra` first: ours always win)."""
    out = dict(extra or {})
    out.update(
        {
            MANAGED: "true",
            CLUSTER: cluster,
            SERVER_ID: placement.server_id,
            HOST_PORT: str(placement.host_port) if placement.host_port is not None else "",
            SPEC_HASH: placement.spec_hash,
            TRANSPORT: placement.transport,
        }
    )
    if placement.transport == HTTP:
        out[HTTP_PORT] = str(placement.http_port) if placement.http_port is not None else ""
        out[HTTP_PATH] = placement.http_path
    return out


def is_ours(labels: Optional[Mapping[str, str]], cluster: str) -> bool:
    """Managed by an agent of this cluster (never touch a container when this is False)."""
    labels = labels or {}
    return labels.get(MANAGED) == "true" and labels.get(CLUSTER) == cluster and bool(labels.get(SERVER_ID))


def placement_of(labels: Optional[Mapping[str, str]]) -> Optional[Placement]:
    """The placement recorded on a container, None without a server id."""
    labels = labels or {}
    server_id = labels.get(SERVER_ID)
    if not server_id:
        return None
    transport = labels.get(TRANSPORT) or STDIO
    return Placement(
        server_id=server_id,
        host_port=_port(labels.get(HOST_PORT)),
        spec_hash=labels.get(SPEC_HASH, ""),
        transport=transport,
        http_port=_port(labels.get(HTTP_PORT)) if transport == HTTP else None,
        http_path=labels.get(HTTP_PATH, "") if transport == HTTP else "",
    )


def event_filters(cluster: str) -> dict:
    """Docker filters (events, list) for the containers of this cluster's agents."""
    return {"type": "container", "label": [f"{MANAGED}=true", f"{CLUSTER}={cluster}"]}


def list_filters(cluster: str) -> dict:
    return {"label": [f"{MANAGED}=true", f"{CLUSTER}={cluster}"]}


def parse_extra(items: list[str]) -> tuple[dict[str, str], list[str]]:
    """`KEY=VALUE` strings as labels, and a problem per bad item."""
    out: dict[str, str] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"label {item!r} must be KEY=VALUE")
        elif key in BOOKKEEPING:
            problems.append(f"label {key} is the orchestrator's own bookkeeping")
        else:
            out[key] = value
    return out, problems


def _port(text: Optional[str]) -> Optional[int]:
    if not text or not text.isdigit():
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None
