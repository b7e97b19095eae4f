"""Which node of a swarm this container-agent serves (`[cluster] engine = swarm`): its
engine's Swarm node id and host name, and the EC2 instance the ALB registers for it
([aws] instance_id, else instance metadata). Read once at start."""

from __future__ import annotations

import logging
from typing import Any

from common.instance import InstanceIdError, resolve_instance_id
from common.protocol import NodeIdentity
from common.settings import AwsSettings

log = logging.getLogger(__name__)


def node_identity(client: Any, aws: AwsSettings) -> NodeIdentity:
    info = client.info()
    node_id = str((info.get("Swarm") or {}).get("NodeID") or "")
    if not node_id:
        log.error("[cluster] engine = swarm, but this host's Docker engine is not part of a swarm")
    try:
        instance_id, error = resolve_instance_id(aws), ""
    except InstanceIdError as exc:
        instance_id, error = "", str(exc)
        log.error("this node cannot be registered at the ALB: %s", error)
    identity = NodeIdentity(
        node_id=node_id, hostname=str(info.get("Name") or ""), instance_id=instance_id, instance_error=error
    )
    log.info("serving swarm node %s (%s), instance %s", identity.hostname, node_id[:12], instance_id or "unknown")
    return identity
