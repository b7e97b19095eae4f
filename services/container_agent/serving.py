"""The lifecycle's side of the MCP bridge: serve a container by its labels.

The bridge runs on its own asyncio thread (`BridgeThread`); every call here blocks the
calling worker thread until the bridge's loop has done it, with a timeout. A container
is served in the mode its labels record: attached over stdio, or reverse-proxied when
it speaks HTTP itself.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as CallTimeout
from typing import Any, Callable, Mapping, Optional

from common.container_labels import HTTP, Placement
from common.protocol import BridgeState, ErrorCode, ServiceError

from .bridge import BridgeError, BridgeThread
from .docker_ops import proxy_address

log = logging.getLogger(__name__)

# Bounds of one blocking call into the bridge's loop.
CALL_TIMEOUT = 30.0


class Serving:
    def __init__(self, bridge: BridgeThread) -> None:
        self.bridge = bridge

    def serve(self, placement: Placement, attrs: Mapping[str, Any], *, adopted: bool) -> int:
        """Serve the running container `attrs` on its host port; the port. ServiceError
        when the bridge cannot (the port is taken, the attach failed)."""
        sid = placement.server_id
        if placement.host_port is None:
            raise ServiceError(ErrorCode.FAILED, f"server {sid}: the container has no valid host-port label")
        try:
            if placement.transport == HTTP:
                address = proxy_address(attrs, placement.http_port) if placement.http_port is not None else None
                if address is None:
                    raise ServiceError(
                        ErrorCode.FAILED,
                        f"server {sid}: the container has no address the agent "
                        f"can reach its HTTP port at (network mode "
                        f"{(attrs.get('HostConfig') or {}).get('NetworkMode')!r})",
                    )
                return self.bridge.serve_http(
                    sid, placement.host_port, address[0], address[1], placement.http_path, container_id=attrs["Id"]
                )
            return self.bridge.serve(sid, placement.host_port, attrs["Id"], adopted=adopted, timeout=CALL_TIMEOUT)
        except BridgeError as exc:
            raise ServiceError(ErrorCode.FAILED, str(exc)) from None
        except CallTimeout:
            raise ServiceError(ErrorCode.TIMEOUT, f"server {sid}: the bridge did not answer in time") from None

    def unserve(self, server_id: str) -> bool:
        try:
            return self.bridge.unserve(server_id, timeout=CALL_TIMEOUT)
        except CallTimeout:
            raise ServiceError(ErrorCode.TIMEOUT, f"server {server_id}: the bridge did not answer in time") from None

    def state(self, server_id: str) -> tuple[str, str, str]:
        """(bridge state, why it is not ready, container id served): ("", "", "") when not
        served; the reason is "" when ready."""
        try:
            health = self.bridge.health(server_id)
        except (CallTimeout, RuntimeError):
            return "", "", ""
        if health is None:
            return "", "", ""
        reason = "" if health.state == BridgeState.READY else health.reason
        return health.state, reason, health.container_id

    def mcp_version(self, server_id: str) -> Optional[str]:
        """The MCP revision the served server speaks, once it is ready."""
        try:
            health = self.bridge.health(server_id)
        except (CallTimeout, RuntimeError):
            return None
        return health.protocol_version if health is not None else None

    def served_container(self, server_id: str) -> Optional[str]:
        """The container served for the server unless it is marked down. (One that did
        not answer initialize is served: serving it again would not make it answer.)"""
        state, _, container_id = self.state(server_id)
        return container_id if state and state != BridgeState.DOWN and container_id else None

    def served_ids(self) -> list[str]:
        bridge = self.bridge.bridge
        if bridge is None:
            return []

        async def served() -> list[str]:
            return bridge.served()

        try:
            return self.bridge.call(served, timeout=CALL_TIMEOUT)
        except CallTimeout:
            return []

    def mark_down(self, server_id: str, container_id: str, reason: str) -> None:
        """Mark the server down if the bridge still serves this container (a newer one
        may be served already). A reverse-proxied server is not tied to a container id
        in the bridge: the caller holds the server's lock and knows it is this one."""
        bridge = self.bridge.bridge
        if bridge is None:
            return

        async def guarded() -> None:
            health = bridge.health(server_id)
            if health is not None and (health.container_id == container_id or health.mode == HTTP):
                await bridge.mark_down(server_id, reason)

        try:
            self.bridge.call(guarded, timeout=CALL_TIMEOUT)
        except CallTimeout:
            log.warning("server %s: the bridge did not answer in time", server_id)

    def drain(self, server_id: str, container_id: str, let_go: Callable[[], None]) -> None:
        """Swarm stops this replica: the bridge drains it, then calls `let_go` (from its
        loop: hand the stop to a worker)."""
        try:
            self.bridge.drain(server_id, container_id, let_go)
        except (CallTimeout, RuntimeError):
            log.warning("server %s: the bridge did not take the drain; Swarm stops the replica", server_id)

    def stderr_tail(self, server_id: str, n: int) -> list[str]:
        try:
            return self.bridge.stderr_tail(server_id, n)
        except (CallTimeout, RuntimeError):
            return []
