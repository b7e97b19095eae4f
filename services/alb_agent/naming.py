"""Names, paths and ownership tags of the AWS resources the alb-agent creates.

Everything here is a pure function of the server id and the cluster name, so an agent
that restarts computes the same names and recognises its own resources. Paths and the
server-id rule are common/server_ids.py's.
"""

from __future__ import annotations

import hashlib
import re
from typing import Optional, Sequence

TAG_CLUSTER = "mcp-orchestrator:cluster"
TAG_SERVER_ID = "mcp-orchestrator:server-id"
# What we registered ("instance-id:port") and the draining time we set. Neither is
# visible in describe_target_groups; keeping them as tags lets a no-op reconcile skip
# one describe call per target group. Written only after the change they record.
TAG_TARGET = "mcp-orchestrator:target"
# "30", or "30;lb_cookie=86400" for a swarm's sticky group: the attributes we own.
TAG_DEREGISTRATION_DELAY = "mcp-orchestrator:deregistration-delay"

TARGET_GROUP_NAME_MAX = 32
NAME_PREFIX = "mcp-"
HASH_LENGTH = 8
_NOT_NAME_CHARS = re.compile(r"[^a-z0-9]+")


def short_hash(cluster_name: str, server_id: str) -> str:
    digest = hashlib.sha256(f"{cluster_name}\n{server_id}".encode("utf-8")).hexdigest()
    return digest[:HASH_LENGTH]


def target_group_name(server_id: str, cluster_name: str) -> str:
    """A valid, stable target-group name: "mcp-" + sanitised id + "-" + hash.

    The hash covers the exact id and the cluster name, so ids that sanitise alike
    ("a.b", "A_b") and the same id in two clusters still get different names.
    """
    room = TARGET_GROUP_NAME_MAX - len(NAME_PREFIX) - 1 - HASH_LENGTH
    readable = _NOT_NAME_CHARS.sub("-", server_id.lower())[:room].strip("-")
    parts = [NAME_PREFIX.rstrip("-")] + ([readable] if readable else [])
    return "-".join(parts + [short_hash(cluster_name, server_id)])


def ownership_tags(cluster_name: str, server_id: str) -> dict[str, str]:
    return {TAG_CLUSTER: cluster_name, TAG_SERVER_ID: server_id}


# A tag value holds at most 256 characters: about nine "i-...:port" targets.
_TAG_VALUE_MAX = 256


def target_tag_value(instance_ids: str | Sequence[str], port: int) -> str:
    """What a group's target tag says when it holds these instances at `port`:
    "i-abc:8000", "i-abc,i-def:8000" (several nodes of a swarm), or, when that is too long
    for a tag, a digest of it (then the targets themselves are read to compare)."""
    ids = [instance_ids] if isinstance(instance_ids, str) else sorted(instance_ids)
    value = f"{','.join(ids)}:{port}"
    if len(value) <= _TAG_VALUE_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:32]


def parse_target_tag(value: Optional[str]) -> Optional[tuple[tuple[str, ...], int]]:
    """(("i-abc",), 8000) from "i-abc:8000", (("i-abc", "i-def"), 8000) from
    "i-abc,i-def:8000"; None when absent, a digest or unreadable."""
    if not value or ":" not in value or value.startswith("sha256:"):
        return None
    instance_ids, _, port = value.rpartition(":")
    ids = tuple(i for i in instance_ids.split(",") if i)
    if not ids or not port.isdigit():
        return None
    return ids, int(port)
