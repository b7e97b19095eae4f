"""One served MCP server as the HTTP side sees it: its port, sessions and upstream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from aiohttp import web

from common.protocol import BridgeState

from . import jsonrpc
from .config import BridgeConfig
from .http_common import rejection
from .sessions import HttpSession, SessionTable
from .stderr_ring import StderrRing
from .subscriptions import Listener, Subscriptions
from .traffic import ServerTraffic
from .upstream import State, StdioUpstream

STDIO = "stdio"
HTTP = "http"


@dataclass(frozen=True)
class ProxyTarget:
    """A server that speaks HTTP itself inside its container."""

    host: str
    port: int
    # Path the server serves under inside the container ("" for the root).
    base_path: str = ""


@dataclass(eq=False)
class ServedServer:
    server_id: str
    port: int
    site: Any  # the aiohttp TCPSite listening on `port`
    sessions: SessionTable
    stderr: StderrRing
    mode: str = STDIO
    container_id: str = ""
    upstream: Optional[StdioUpstream] = None
    proxy: Optional[ProxyTarget] = None
    # Reverse-proxy mode: why the server is marked down (empty when it is not).
    proxy_down: str = ""
    # Reverse-proxy mode: requests being forwarded (cut when the server goes).
    forwarding: set = field(default_factory=set)
    # Its last run did not answer initialize: while it starts again, requests are
    # refused at once instead of waiting (a crash loop must not hold clients).
    initialize_failed: bool = False
    # Change-notification listeners; they outlive a container's restart.
    subscriptions: Optional[Subscriptions] = None
    # Set (and replaced) whenever the upstream changes: requests waiting for a restart.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False  # no longer served: nothing to wait for
    # A swarm's server with no replica on this host: its port answers 503 with this.
    absent: str = ""
    # Swarm stops its replica here: serving on until the node is out of the target group.
    draining: str = ""
    # What it served, since this process started (kept across container restarts).
    traffic: Optional[ServerTraffic] = None

    def __post_init__(self) -> None:
        if self.subscriptions is None:
            self.subscriptions = Subscriptions(self.sessions)
        if self.traffic is None:
            self.traffic = ServerTraffic(self.server_id)

    async def close_port(self) -> None:
        """Take no new connection on this port (those open are served on); once only."""
        site, self.site = self.site, None
        if site is not None:
            await site.stop()

    def stdio_state(self) -> tuple[str, str]:
        """(BridgeState value, why) of a server served over stdio: what /health and the
        agent's status both say."""
        upstream = self.upstream
        if upstream is None:
            return BridgeState.DOWN.value, self.absent or "not attached"
        if self.draining and upstream.state is State.READY:
            return BridgeState.DRAINING.value, self.draining
        return upstream.state.value, upstream.reason

    def requests_in_flight(self) -> int:
        """Client requests this server has not answered yet (held MRTR rounds excepted)."""
        count = len(self.forwarding)
        if self.upstream is not None:
            count += sum(
                1 for p in self.upstream.pending.values() if p.from_client and (p.round is None or not p.round.waiting)
            )
        return count

    def cut_forwarding(self) -> None:
        for task in list(self.forwarding):
            task.cancel()
        self.forwarding.clear()

    def end_session(self, session: HttpSession, reason: str) -> None:
        self.sessions.remove(session.id)
        if self.upstream is not None:
            self.upstream.drop_session(session, reason)
        else:
            self.subscriptions.drop_session(session)

    def listen(self, listener: Listener) -> None:
        """A 2026-07-28 client's subscriptions/listen stream opened."""
        held = self.subscriptions.add_listener(listener)
        if self.upstream is not None:
            self.upstream.sync_subscriptions(held, [])

    def stop_listening(self, listener: Listener) -> None:
        released = self.subscriptions.remove_listener(listener)
        if self.upstream is not None:
            self.upstream.sync_subscriptions([], released)

    def unavailable(self, reason: str, id_json: bytes = jsonrpc.NULL_ID) -> web.Response:
        message = f"MCP server '{self.server_id}' is unavailable: {reason}"
        return rejection(503, jsonrpc.TRANSPORT_ERROR, message, id_json=id_json)

    async def ready_upstream(
        self, config: BridgeConfig, id_json: bytes = jsonrpc.NULL_ID
    ) -> Union[StdioUpstream, web.Response]:
        """The upstream once it is initialized, or a 503 rejection (naming the request).

        A server starting waits for its handshake (initialize_timeout_seconds). One whose
        container ended is being restarted by the orchestrator: the request waits for the
        new container up to restart_wait_seconds, so that only the requests in flight at
        the crash fail. A server whose last start did not answer initialize is refused at
        once: a crash loop never holds a client."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.restart_wait_seconds
        while True:
            upstream = self.upstream
            if upstream is not None and upstream.state is State.READY:
                return upstream
            if self.removed:
                return self.unavailable("no longer served", id_json)
            if self.absent and upstream is None:
                return self.unavailable(self.absent, id_json)  # no replica here: nothing to wait for
            if self.initialize_failed or (upstream is not None and upstream.state is State.FAILED):
                return self.unavailable(upstream.reason if upstream is not None else "not attached", id_json)
            if upstream is not None and upstream.state is State.STARTING:
                await upstream.wait_settled(config.initialize_timeout_seconds)
                if upstream.state is State.STARTING:
                    return self.unavailable(upstream.reason, id_json)
                continue
            left = deadline - loop.time()
            if left <= 0:
                return self.unavailable(upstream.reason if upstream is not None else "not attached", id_json)
            changed = self.changed
            try:
                await asyncio.wait_for(changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def note_change(self) -> None:
        """A new upstream was attached or changed state: wake the requests waiting."""
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()
