"""Which EC2 instance the target groups point at.

From settings when given; else from instance metadata, IMDSv2 only (a session token
first, then `instance-id`), with a short timeout so a host outside EC2 fails fast.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Optional

from common.settings import AwsSettings

IMDS_TIMEOUT_SECONDS = 2.0
TOKEN_TTL_SECONDS = 300
INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
# Never go through an HTTP proxy for the metadata service.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class InstanceIdError(Exception):
    """Neither the settings nor instance metadata gave an instance id."""


def _fetch(request: urllib.request.Request, timeout: float) -> str:
    with _OPENER.open(request, timeout=timeout) as reply:
        return reply.read(1024).decode("utf-8", "replace").strip()


def instance_id_from_imds(endpoint: str, timeout: float = IMDS_TIMEOUT_SECONDS) -> str:
    base = endpoint.rstrip("/")
    try:
        token = _fetch(
            urllib.request.Request(
                f"{base}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            ),
            timeout,
        )
        value = _fetch(
            urllib.request.Request(f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}),
            timeout,
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InstanceIdError(
            f"no [aws] instance_id in the settings and instance metadata at {base} did not "
            f"answer ({reason}): set [aws] instance_id when not running on EC2"
        ) from None
    if not INSTANCE_ID_RE.fullmatch(value):
        raise InstanceIdError(f"instance metadata at {base} returned an unusable instance id")
    return value


def resolve_instance_id(config: AwsSettings, timeout: Optional[float] = None) -> str:
    """The configured instance id, else the one instance metadata reports."""
    if config.instance_id:
        return config.instance_id
    if not config.imds_endpoint:
        raise InstanceIdError("no [aws] instance_id and no [aws] imds_endpoint to ask")
    return instance_id_from_imds(config.imds_endpoint, timeout or IMDS_TIMEOUT_SECONDS)
