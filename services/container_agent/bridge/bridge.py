"""The bridge: every served MCP server on its own host port, one asyncio event loop.

One low-level aiohttp server and runner; a TCP listener per server port is added
and removed at run time. A request is matched to its server by the port it came
in on and must carry that server's prefix (`/mcp/{id}/...`): the ALB forwards
paths unchanged, and a path naming another server on this port is a 404.

All methods must be called on the bridge's event loop (see `BridgeThread` for
calling from another thread). Callbacks (`on_event`) run on that loop too and
must return quickly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from aiohttp import web

from common import fdstore, server_ids

from .. import stdio
from . import access_log, jsonrpc, legacy_sse, owner, proxy, streamable_http, traffic
from .config import BridgeConfig
from .http_common import (
    client_of,
    cors_headers,
    host_allowed,
    json_response,
    not_found,
    origin_allowed,
    preflight,
    rejection,
    unauthorized,
)
from .limits import ACCEPT_BACKLOG, BoundedServer, ConnectionLimits
from .served import HTTP, STDIO, ProxyTarget, ServedServer
from .sessions import SessionIds, SessionTable
from .stderr_ring import StderrRing
from .traffic import CALL
from .upstream import IdAllocator, State, StdioUpstream

log = logging.getLogger(__name__)

# What the ALB (or anyone) gets from /health of a reverse-proxied server at most this late.
_PROBE_TIMEOUT = 2.0
_CATALOG_TIMEOUT = 2.5  # for the lists the dashboard shows, together
# On a stop, how long an idle keep-alive connection may still bring one request (at
# least one call of a client calling every half second).
IDLE_GRACE_SECONDS = 1.0


# A draining replica out of its target group and idle this long is stopped: the load
# balancer in front may take a moment to stop sending to a deregistered target.
LET_GO_SETTLE_SECONDS = 1.0
# ... and one whose agent no scheduler has told the targets (none acting) after this long.
UNTOLD_SECONDS = 10.0
# A new replica on a host whose old one drains waits this long at most for the old one's
# requests in flight.
SWITCH_WAIT_SECONDS = 10.0

# A kept listening socket that no server claims this long after start is given up.
UNCLAIMED_SOCKETS_SECONDS = 60.0
SESSION_KEY_NAME = "bridge-session-key"


class BridgeError(Exception):
    """A serve/unserve request that cannot be carried out (the message says why)."""


@dataclass(frozen=True)
class BridgeEvent:
    server_id: str
    kind: str  # "up": initialized and serving; "failed": no answer to initialize; "down": gone
    reason: str
    container_id: str


@dataclass(frozen=True)
class ServerHealth:
    server_id: str
    port: int
    mode: str  # "stdio" or "http"
    state: str  # a BridgeState: "starting", "ready", "failed", "down" or "draining"
    reason: str
    container_id: str
    sessions: int
    pending_requests: int
    protocol_version: Optional[str]


EventCallback = Callable[[BridgeEvent], None]


class Bridge:
    def __init__(
        self,
        docker_client: Any,
        config: Optional[BridgeConfig] = None,
        on_event: Optional[EventCallback] = None,
    ) -> None:
        """`docker_client`: a docker.DockerClient or docker.APIClient (used to attach)."""
        self._docker = getattr(docker_client, "api", docker_client)
        self._config = config or BridgeConfig()
        self._on_event = on_event
        self._ids = IdAllocator()
        self._servers: dict[str, ServedServer] = {}
        self._by_port: dict[int, ServedServer] = {}
        self._runner: Optional[web.ServerRunner] = None
        self._session_ids: Optional[SessionIds] = None
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        # Requests other than GET streams being handled now: a stop waits for them.
        self._handling = 0
        self._stopping = False  # a stop began: every answer closes its connection
        self._peers: dict[str, str] = {}  # swarm: the nodes (short id -> address), for owner.py
        # swarm: the servers whose target group holds this node (None: not told yet).
        self._registered: Optional[set[str]] = None

    @property
    def config(self) -> BridgeConfig:
        return self._config

    # --- life cycle ------------------------------------------------------------

    async def start(self) -> None:
        server = BoundedServer(
            self._handle,
            limits=ConnectionLimits(self._config),
            handler_cancellation=True,
            access_log=None,
            keepalive_timeout=self._config.keepalive_timeout_seconds,
        )
        self._runner = web.ServerRunner(server, shutdown_timeout=5.0)
        await self._runner.setup()
        access_log.configure(self._config.access_log_level)
        # Kept by the supervisor across restarts: sessions survive a restart of the process.
        if self._config.node:  # a swarm: ids any node can read (owner.py)
            self._session_ids = SessionIds(self._config.session_key, owner=self._config.node)
        else:
            self._session_ids = SessionIds(fdstore.kept_secret(SESSION_KEY_NAME))
        self._spawn(self._sweep())
        self._spawn(self._drop_unclaimed_sockets())

    async def close(self) -> None:
        """Stop. No new connection is taken (the supervisor keeps the listening sockets:
        they wait for the next process), the requests in flight get drain_seconds to
        finish, then the sessions and attachments end."""
        for server in self._servers.values():
            await server.close_port()
        self._stopping = True
        self._close_connections_when_idle()
        await self._drain(self._config.drain_seconds)
        await self._part_with_idle_connections(self._config.drain_seconds)
        for server_id in list(self._servers):
            await self.unserve(server_id, keep_port=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # --- serving ---------------------------------------------------------------

    async def serve(self, server_id: str, host_port: int, container_id: str, *, adopted: bool = False) -> int:
        """Serve a running container's stdio MCP server on `host_port` (0: any free port).

        Returns the port. Attaches now; the MCP handshake runs in the background
        (an "up" event and `wait_ready` tell when it is done). Serving the same
        container again is a no-op; another container (a restart) is attached in
        place and the HTTP sessions carry over. `adopted`: the container was
        running before this process started (its server is already initialized).
        Raises BridgeError when the port cannot be bound or the container cannot
        be attached (it is then served as down: 503 until served again).
        A draining replica replaced by a new one on this host (a rolling update) first
        finishes what it has in flight (at most SWITCH_WAIT_SECONDS).
        """
        _check_id(server_id)
        current = self._servers.get(server_id)
        if current is not None and current.draining and current.container_id != container_id:
            await self._until_idle(current, SWITCH_WAIT_SECONDS)
        async with self._lock:
            server = self._servers.get(server_id)
            if (
                server is not None
                and server.mode == STDIO
                and server.container_id == container_id
                and server.upstream is not None
                and server.upstream.state is not State.DOWN
                and host_port in (0, server.port)
            ):
                return server.port
            server = await self._place(server_id, host_port, server)
            if server.upstream is not None:
                server.upstream.close("re-attaching")
            if server.container_id != container_id:
                server.stderr.clear()  # the tail describes the container being served
            server.cut_forwarding()
            server.mode, server.proxy, server.proxy_down = STDIO, None, ""
            server.container_id, server.absent, server.draining = container_id, "", ""
            upstream = StdioUpstream(
                server_id, self._config, self._ids, server.sessions, self._upstream_changed, server.subscriptions
            )
            server.upstream = upstream
            try:
                attached = await stdio.attach(
                    self._docker,
                    container_id,
                    on_stdout_line=upstream.on_stdout_line,
                    on_stderr_line=server.stderr.append,
                    on_closed=upstream.on_closed,
                    max_line_bytes=self._config.max_message_bytes,
                )
            except stdio.AttachError as exc:
                upstream.on_closed(str(exc))
                raise BridgeError(f"server {server_id}: {exc}") from None
            upstream.attach(attached)
            server.note_change()
            self._spawn(upstream.initialize(adopted))
            log.info("server %s: serving container %s on port %d", server_id, container_id[:12], server.port)
            return server.port

    async def serve_http(
        self,
        server_id: str,
        host_port: int,
        target_host: str,
        target_port: int,
        base_path: str = "",
        container_id: str = "",
    ) -> int:
        """Serve a server that speaks HTTP itself, by reverse proxy to target_host:target_port.

        `base_path` is where it serves inside the container ("" for the root):
        `/mcp/{id}/x` goes to `<base_path>/x`. Returns the port.
        """
        _check_id(server_id)
        if base_path and not base_path.startswith("/"):
            raise BridgeError(f"server {server_id}: base path {base_path!r} must start with /")
        async with self._lock:
            server = await self._place(server_id, host_port, self._servers.get(server_id))
            if server.upstream is not None:
                server.upstream.close("switched to HTTP mode")
                server.upstream = None
            for session in server.sessions.all():
                server.end_session(session, "the server changed mode")
            target = ProxyTarget(target_host, int(target_port), base_path.rstrip("/"))
            if server.proxy != target:
                server.cut_forwarding()  # streams to the old target end with it
            server.mode, server.proxy, server.proxy_down = HTTP, target, ""
            server.container_id, server.absent, server.draining = container_id, "", ""
            if self._client is None:
                self._client = proxy.make_client(self._config)
            log.info("server %s: proxying port %d to %s:%d", server_id, server.port, target_host, target_port)
            return server.port

    async def hold_ports(self, ports: dict[str, int], reason: str) -> None:
        """[cluster] engine = swarm: every server of the cluster (id -> its port) has its
        port here, replica or not. One with no replica on this host answers 503 (its
        /health too, so a load balancer sees it unhealthy rather than a closed port); one
        no longer in the cluster, and with nothing served, loses its port."""
        for server_id, port in ports.items():
            _check_id(server_id)
            async with self._lock:
                if server_id in self._servers:
                    continue
                try:
                    server = await self._place(server_id, port, None)
                except BridgeError as exc:
                    log.warning("%s", exc)
                    continue
                server.absent = reason
                log.info("server %s: no replica on this host; port %d answers 503", server_id, port)
        for server_id, server in list(self._servers.items()):
            gone = server.upstream is None or server.upstream.state is State.DOWN
            if server_id not in ports and server.mode == STDIO and gone:
                await self.unserve(server_id)  # its service was removed: nothing runs here

    def set_registered(self, server_ids: set[str]) -> None:
        """[cluster] engine = swarm: the servers whose target group holds this node now."""
        self._registered = set(server_ids)

    async def drain(self, server_id: str, container_id: str, let_go: Callable[[], None]) -> None:
        """[cluster] engine = swarm: Swarm stops this replica. It is served on (/health
        says draining, so that it leaves the target group) until its node is out of the
        group, nothing is in flight and LET_GO_SETTLE_SECONDS passed so; then `let_go()`
        stops the container. Swarm kills it anyway at the end of its grace period."""
        server = self._servers.get(server_id)
        if server is None or server.container_id != container_id or server.draining:
            return
        server.draining = "Swarm is stopping this replica: finishing the requests in flight"
        server.note_change()
        self._spawn(self._let_go_when_drained(server, container_id, let_go))

    async def _let_go_when_drained(self, server: ServedServer, container_id: str, let_go: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        began, quiet_since = loop.time(), None
        while True:
            if server.container_id != container_id or server.removed:
                let_go()  # replaced here by a new replica (or no longer served): nothing of it is in flight
                return
            registered = self._registered
            # Never told (no scheduler acting): the time a scheduler takes to notice.
            out = server.server_id not in registered if registered is not None else loop.time() - began > UNTOLD_SECONDS
            if out and server.requests_in_flight() == 0:
                quiet_since = quiet_since or loop.time()
                if loop.time() - quiet_since >= LET_GO_SETTLE_SECONDS:
                    log.info("server %s: drained in %.1f s", server.server_id, loop.time() - began)
                    let_go()
                    return
            else:
                quiet_since = None
            await asyncio.sleep(0.1)

    @staticmethod
    async def _until_idle(server: ServedServer, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while server.requests_in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def set_peers(self, nodes: dict[str, str]) -> None:
        """[cluster] engine = swarm: the ready nodes (Swarm node id -> address), where the
        requests of sessions other nodes hold are forwarded."""
        self._peers = {owner.short_node_id(node_id): address for node_id, address in nodes.items()}

    async def unserve(self, server_id: str, *, keep_port: bool = False) -> bool:
        """Stop serving: close its port, end its sessions, detach. False if it was not served.
        `keep_port`: this process is stopping; its supervisor keeps the listening socket
        for the next one (connections wait in its backlog meanwhile)."""
        async with self._lock:
            server = self._servers.pop(server_id, None)
            if server is None:
                return False
            self._by_port.pop(server.port, None)
            await server.close_port()
            if not keep_port:
                fdstore.forget(_socket_name(server.port))
            for session in server.sessions.all():
                server.end_session(session, f"MCP server '{server_id}' was removed")
            if server.upstream is not None:
                server.upstream.close("no longer served")
            server.subscriptions.close_all()
            server.cut_forwarding()
            server.removed = True
            server.note_change()
            log.info("server %s: no longer served (port %d closed)", server_id, server.port)
            return True

    async def mark_down(self, server_id: str, reason: str) -> bool:
        """The container is known to be gone: answer 503 until served again."""
        server = self._servers.get(server_id)
        if server is None:
            return False
        if server.mode == HTTP:
            server.proxy_down = reason or "down"
            server.cut_forwarding()
        elif server.upstream is not None:
            server.upstream.close(reason or "down")
        return True

    async def wait_ready(self, server_id: str, timeout: float) -> bool:
        """True once the server answers MCP (initialized, or proxied), False on timeout or down."""
        server = self._servers.get(server_id)
        if server is None:
            return False
        if server.mode == HTTP:
            return not server.proxy_down
        upstream = server.upstream
        return upstream is not None and await upstream.wait_settled(timeout)

    # --- views -----------------------------------------------------------------

    def served(self) -> list[str]:
        return list(self._servers)

    def health(self, server_id: str) -> Optional[ServerHealth]:
        server = self._servers.get(server_id)
        if server is None:
            return None
        upstream = server.upstream
        if server.mode == HTTP:
            state, reason = ("down", server.proxy_down) if server.proxy_down else ("ready", "proxied")
            version = None
        else:
            state, reason = server.stdio_state()
            version = upstream.server_version if upstream is not None and upstream.state is State.READY else None
        return ServerHealth(
            server_id=server_id,
            port=server.port,
            mode=server.mode,
            state=state,
            reason=reason,
            container_id=server.container_id,
            sessions=len(server.sessions),
            pending_requests=len(upstream.pending) if upstream is not None else 0,
            protocol_version=version,
        )

    def stderr_tail(self, server_id: str, n: int = 50) -> list[str]:
        """The last `n` stderr lines of the container served (kept after it exits)."""
        server = self._servers.get(server_id)
        return server.stderr.tail(n) if server is not None else []

    async def traffic(self, server_id: Optional[str], detail: bool) -> list[dict]:
        """What each served server (or only `server_id`) served, for the dashboard (see
        traffic.ServerTraffic.report); with `detail`, its tools, prompts and resources."""
        if server_id is None:
            servers = list(self._servers.values())
        else:
            servers = [self._servers[server_id]] if server_id in self._servers else []
        reports = []
        for server in servers:
            catalog = None
            upstream = server.upstream
            if not detail:
                pass
            elif server.mode == HTTP:
                catalog = traffic.empty_catalog("it speaks HTTP itself: the bridge does not list what it offers")
            elif upstream is None or upstream.state is not State.READY:
                catalog = traffic.empty_catalog(f"not ready: {upstream.reason if upstream else 'not attached'}")
            else:
                catalog = traffic.catalog_of(await upstream.lists(_CATALOG_TIMEOUT))
            reports.append(server.traffic.report(detail, catalog))
        return reports

    def metrics(self) -> list[traffic.Sample]:
        """Every served server's counters and what it holds now, for /metrics."""
        return [
            traffic.Sample(
                counts=server.traffic.counts(),
                sessions=len(server.sessions),
                streams=server.traffic.streams + len(server.subscriptions.listeners),
                in_flight=server.requests_in_flight(),
                stdio_queue_bytes=server.upstream.queued_bytes() if server.upstream is not None else 0,
                up=_is_up(server),
            )
            for server in self._servers.values()
        ]

    # --- internals -------------------------------------------------------------

    def _close_connections_when_idle(self) -> None:
        """Busy connections close after their response, idle ones after their next (see
        _part_with_idle_connections): a client's next request opens a new connection,
        which waits in the kept listening socket for the next process instead of
        reaching this one after its sessions end."""
        if self._runner is not None and isinstance(self._runner.server, BoundedServer):
            self._runner.server.finish_connections()

    async def _part_with_idle_connections(self, seconds: float) -> None:
        """After the drain: a keep-alive connection still open gets IDLE_GRACE_SECONDS to
        carry one more request (answered, then closed), then it is closed. A client that
        calls often reconnects to the kept listening socket without a failed call."""
        if self._runner is None or not isinstance(self._runner.server, BoundedServer):
            return
        server = self._runner.server
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(IDLE_GRACE_SECONDS, seconds)
        while server.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        server.close_idle_connections()

    async def _drain(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            servers = self._servers.values()
            listening = sum(len(server.subscriptions.listeners) for server in servers)  # streams, not requests
            busy = self._handling - listening + sum(server.requests_in_flight() for server in servers)
            if not busy:
                return
            if loop.time() >= deadline:
                log.warning("stopping with %d request(s) still in flight after %g s", busy, seconds)
                return
            await asyncio.sleep(0.05)

    async def _drop_unclaimed_sockets(self) -> None:
        """Sockets kept for servers that are no longer served after a restart (removed
        meanwhile) are given up once the running containers have been adopted."""
        await asyncio.sleep(UNCLAIMED_SOCKETS_SECONDS)
        dropped = fdstore.drop_unclaimed()
        if dropped:
            log.info("gave up %d kept listening socket(s) no server claimed: %s", len(dropped), ", ".join(dropped))

    def _listening_socket(self, port: int) -> socket.socket:
        """The listening socket for `port`: the one this process's supervisor kept for it
        across a restart (connections made meanwhile wait in its backlog), or a new one."""
        host = self._config.bind_host
        kept = fdstore.take(_socket_name(port)) if port else None
        if kept is not None:
            try:
                if kept.getsockname()[:2] == (str(ipaddress.ip_address(host)), port):
                    kept.setblocking(False)
                    log.info("port %d: listening on the socket kept across the restart", port)
                    return kept
            except (OSError, ValueError):
                pass
            kept.close()  # bound elsewhere ([service] bridge_host changed): a new one
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(ACCEPT_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _place(self, server_id: str, host_port: int, server: Optional[ServedServer]) -> ServedServer:
        """The server's entry, listening on `host_port` (moved there if need be)."""
        if self._runner is None:
            raise BridgeError("the bridge is not started")
        if server is not None and host_port in (0, server.port):
            return server
        holder = self._by_port.get(host_port) if host_port else None
        if holder is not None:
            raise BridgeError(f"server {server_id}: port {host_port} is already serving {holder.server_id}")
        try:
            sock = self._listening_socket(host_port)
            site = web.SockSite(self._runner, sock)
            await site.start()
        except OSError as exc:
            raise BridgeError(
                f"server {server_id}: cannot listen on {self._config.bind_host}:{host_port}: {exc.strerror or exc}"
            ) from None
        port = sock.getsockname()[1]
        fdstore.keep(_socket_name(port), sock)
        if server is None:
            server = ServedServer(
                server_id=server_id,
                port=port,
                site=site,
                sessions=SessionTable(
                    self._config.session_idle_timeout_seconds,
                    self._config.max_sessions_per_server,
                    max_per_address=self._config.max_sessions_per_address,
                    ids=self._session_ids,
                    server_id=server_id,
                ),
                stderr=StderrRing(self._config.stderr_lines),
            )
            self._servers[server_id] = server
        else:
            self._by_port.pop(server.port, None)
            await server.close_port()
            fdstore.forget(_socket_name(server.port))
            server.site, server.port = site, port
        self._by_port[port] = server
        return server

    def _upstream_changed(self, upstream: StdioUpstream, state: State, reason: str) -> None:
        server = self._servers.get(upstream.server_id)
        if server is None or server.upstream is not upstream:
            return
        server.note_change()
        if state in (State.READY, State.FAILED):
            server.initialize_failed = state is State.FAILED
        if state is State.READY:
            self._emit(BridgeEvent(server.server_id, "up", reason, server.container_id))
        elif state is State.FAILED:
            self._emit(BridgeEvent(server.server_id, "failed", reason, server.container_id))
        elif state is State.DOWN and not upstream.deliberately_closed:
            self._emit(BridgeEvent(server.server_id, "down", reason, server.container_id))

    def _emit(self, event: BridgeEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("server %s: event callback failed", event.server_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        interval = max(0.5, min(30.0, self._config.session_idle_timeout_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            for server in list(self._servers.values()):
                expired = server.sessions.expire()
                for session in expired:
                    if server.upstream is not None:
                        server.upstream.drop_session(session, "the session expired")
                if expired:
                    log.debug("server %s: %d idle sessions expired", server.server_id, len(expired))

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        # perf_counter, not the loop's time: uvloop's is cached per loop iteration, to
        # the millisecond, and a request answered from the cache takes less than that.
        started = time.perf_counter()
        counted = request.method != "GET"  # a GET is a stream: open until the stop ends it
        if counted:
            self._handling += 1
        response: Optional[web.StreamResponse] = None
        try:
            response = await self._route(request)
            if self._stopping:
                response.force_close()  # the client's next request goes to the next process
            return response
        finally:
            if counted:
                self._handling -= 1
            self._account(request, response, started, time.perf_counter())

    def _account(
        self, request: web.BaseRequest, response: Optional[web.StreamResponse], started: float, ended: float
    ) -> None:
        """The request in its server's traffic numbers and, unless a health check, in the access log."""
        status = response.status if response is not None else 500
        call = request.get(CALL)
        if call is not None and self._config.count_traffic:
            first = call.first - started if call.first is not None else None
            # A plain response is written after the handler returns: its body's length.
            sent = (
                0 if response is None else response.body_length if response.prepared else response.content_length or 0
            )
            call.traffic.record(call, status, ended - started, first, sent, request.content_length or 0)
        elif status >= 400 and not request.path.endswith("/health"):
            transport = request.transport
            sockname = transport.get_extra_info("sockname") if transport is not None else None
            server = self._by_port.get(sockname[1]) if sockname else None
            if server is not None:
                server.traffic.refusal(status)
        if access_log.enabled() and not request.path.endswith("/health"):
            server_id = server_ids.split_path(request.path)
            access_log.write(
                server_id[0] if server_id else "-", request, status, ended - started, client_of(request, self._config)
            )

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        server = self._by_port.get(sockname[1]) if sockname else None
        parts = server_ids.split_path(request.path)
        if server is None or parts is None or parts[0] != server.server_id:
            return not_found()
        tail = parts[1]
        if not host_allowed(self._config, request.headers.get("Host")):
            log.info("server %s: refused a request for host %.100r", server.server_id, request.headers.get("Host"))
            return rejection(421, jsonrpc.TRANSPORT_ERROR, "Misdirected Request: the Host is not a name of this bridge")
        origin = request.headers.get("Origin")
        if not origin_allowed(self._config, origin):
            log.info("server %s: refused a request from origin %.100r", server.server_id, origin)
            return rejection(403, jsonrpc.TRANSPORT_ERROR, "Forbidden: requests from this Origin are not allowed")
        cors = cors_headers(self._config, origin)
        endpoint = tail.rstrip("/")
        if endpoint == "health":
            response: web.StreamResponse = await self._health_endpoint(server, request)
        elif request.method == "OPTIONS" and origin is not None:
            response = preflight(self._config, origin, "GET, POST, DELETE, OPTIONS")
        elif (
            refused := unauthorized(self._config, server.server_id, request.headers.get("Authorization"))
        ) is not None:
            log.warning(
                "server %s: refused a request without a valid bearer token (%s %s)",
                server.server_id,
                request.method,
                endpoint[:20],
            )
            response = refused
        elif self._config.node and (followed := await self._follow_owner(server, request, endpoint, cors)) is not None:
            return followed  # (a Response is falsy when empty: compared with None)
        elif server.mode == HTTP:
            assert self._client is not None
            server.traffic.note(request, "http", "", "http")  # the body is not read: no MCP method
            task = asyncio.current_task()
            server.forwarding.add(task)
            try:
                return await proxy.forward(server, request, tail, self._config, self._client, cors)
            finally:
                server.forwarding.discard(task)
        elif endpoint == "mcp":
            response = await streamable_http.handle(server, request, self._config, cors)
        elif endpoint == "sse":
            response = await legacy_sse.handle_stream(server, request, self._config, cors)
        elif endpoint == "messages":
            response = await legacy_sse.handle_post(server, request, self._config)
        else:
            response = not_found()
        if cors and not response.prepared:
            response.headers.update(cors)
        return response

    async def _follow_owner(
        self, server: ServedServer, request: web.BaseRequest, endpoint: str, cors: dict
    ) -> Optional[web.StreamResponse]:
        """[cluster] engine = swarm: the answer to a request of a session this node does
        not hold (from its owner, or 404 when the owner is gone), or to one of a session it
        holds while its replica is gone from here (404: initialize again, elsewhere); None
        when the request is this node's to answer."""
        session_id = owner.session_id_of(request, endpoint) if server.mode == STDIO else None
        if not session_id:
            return None  # no session (a 2026-07-28 request, an initialize): answered here
        owner_id = owner.owner_elsewhere(server, request, session_id, self._config.node)
        if owner_id is not None:
            if self._client is None:
                self._client = proxy.make_client(self._config)
            return await owner.forward(server, request, owner_id, self._peers, self._config, self._client, cors)
        upstream = server.upstream
        if upstream is None or upstream.state is State.DOWN:
            return owner.gone(f"this host no longer runs a replica of MCP server '{server.server_id}'")
        return None

    async def _health_endpoint(self, server: ServedServer, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return rejection(405, jsonrpc.TRANSPORT_ERROR, "Method Not Allowed: use GET, HEAD", {"Allow": "GET, HEAD"})
        if server.mode == HTTP:
            assert server.proxy is not None
            assert self._client is not None
            reason = server.proxy_down or await proxy.probe(self._client, server.proxy, _PROBE_TIMEOUT)
            state = "down" if reason else "ready"
        else:
            state, reason = server.stdio_state()
        body = {"server": server.server_id, "status": state}
        if state != "ready":
            body["reason"] = reason
        status = 200 if state == "ready" else 503
        server.traffic.health_check(status)
        return json_response(json.dumps(body).encode(), status=status)


def _is_up(server: ServedServer) -> bool:
    if server.mode == HTTP:
        return not server.proxy_down
    return server.upstream is not None and server.upstream.state is State.READY


def _check_id(server_id: str) -> None:
    problem = server_ids.problem(server_id)
    if problem:
        raise BridgeError(f"invalid server id {server_id[:100]!r}: {problem}")


def _socket_name(port: int) -> str:
    """The name a bridge port's listening socket is kept under by the supervisor."""
    return f"bridge-{port}"
