"""The container-agent process: REP `containers`, PUB `container-events`, the MCP bridge.

    python -m services.container_agent [--settings PATH] [--config PATH]
                                       [--reply-wait SECONDS] [--label KEY=VALUE ...]

Requests (`container.ensure/stop/start/restart/remove/status`,
`snapshot.get`) are carried out on worker threads, never on the ZeroMQ loop, which
answers them when the work ends (deferred replies) and serves other requests
meanwhile. A change is answered by its outcome within `--reply-wait` seconds; one
that takes longer (a graceful stop, a pull) is answered with `pending` set to the
operation, goes on, and its outcome follows as events: `container.started`, `container.exited` (also when an
ensure, start or restart failed after the reply: `message` says why). A read that
Docker does not answer within READ_WAIT_SECONDS fails with `timeout`.

Events come from the Docker events stream (not from polling) and from the bridge
(`container.bridge`, up/failed/down). At start the agent adopts the running containers of
its cluster (found by label) and serves them again, without recreating them.

SIGTERM (or SIGINT) closes the bridges and the sockets and leaves every container
running: a restarted agent adopts them, and an agent upgrade does not restart the
MCP servers. Stopping the servers is the scheduler's decision (container.stop).
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import docker

from common import curve, protocol, server_ids
from common.container_labels import event_filters, parse_extra
from common.process import (
    EXIT_UNUSABLE,
    open_service,
    process_parser,
    publish_on,
    resolve_paths,
    serve_metrics,
    serve_requests,
    start_process,
)
from common.protocol import (
    ContainerEvent,
    ContainerInfo,
    ContainerList,
    ErrorCode,
    Message,
    NodeIdentity,
    Operation,
    ProtocolError,
    ServiceError,
    Snapshot,
    TrafficReport,
)
from common.reqrep import Deferred
from common.service import Service
from common.settings import BRIDGE_AUTH_NONE, Settings

from . import bridge_metrics
from .bridge import BridgeConfig, BridgeEvent, BridgeThread
from .bridge.owner import short_node_id
from .docker_ops import DockerOps
from .event_stream import DockerEventStream
from .lifecycle import Lifecycle
from .node import node_identity
from .serving import Serving
from .specs import ServerSpecs

log = logging.getLogger("container-agent")

NAME = "container-agent"
# How long a change waits for its outcome before the reply says "pending", and how
# long a read waits for Docker: well inside the callers' request timeout (2.5 s by
# default).
REPLY_WAIT_SECONDS = 1.5
READ_WAIT_SECONDS = 1.5
# The bridge reads a server's lists within 2.5 s (bridge._CATALOG_TIMEOUT).
TRAFFIC_WAIT_SECONDS = 3.0
WORKERS = 8
# The Docker API version the orchestrator targets (Debian's engine 20.10 speaks it);
# pinned, so that creating a client needs no answer from the engine.
DOCKER_API_VERSION = "1.41"
DOCKER_TIMEOUT_SECONDS = 60
# Operations whose late failure means "the server is not running": published.
_STARTING_OPS = ("ensure", "start", "restart")
# Request ids remembered so a retried request joins its first job.
_RECENT_REQUESTS = 256


def docker_client() -> docker.DockerClient:
    return docker.from_env(version=DOCKER_API_VERSION, timeout=DOCKER_TIMEOUT_SECONDS, max_pool_size=WORKERS + 8)


def _say_how_mcp_is_authenticated(settings: Settings) -> None:
    host = settings.service.bridge_host
    if settings.bridge.auth == BRIDGE_AUTH_NONE:
        log.warning(
            "MCP requests are not authenticated by the orchestrator ([bridge] auth = none): "
            "whatever stands in front of the bridges on %s must authenticate every request",
            host,
        )
    elif settings.bridge_open:
        log.info(
            "MCP requests need no token: no [bridge] tokens are set and the bridges listen on %s (loopback) only", host
        )
    else:
        log.info("MCP requests need a bearer token from [bridge] tokens (bridges on %s)", host)


def _following_sessions(config: BridgeConfig, node_id: str, settings: Settings) -> BridgeConfig:
    """[cluster] engine = swarm: session ids that name this node, signed with a key every
    node derives from the cluster key, so a node can send a session's requests to its
    owner (bridge/owner.py)."""
    try:
        keys = curve.load_keys(settings.cluster.keys_dir)
    except curve.CurveError as exc:
        log.warning("handshake-era sessions stay on the host that made them: %s", exc)
        return config
    return replace(config, node=short_node_id(node_id), session_key=curve.derived_key(keys, "session ids"))


class ContainerAgent:
    """The agent's sockets, workers, bridge and events stream."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        specs: ServerSpecs,
        *,
        client: docker.DockerClient,
        client_factory: Callable[[], Any] = docker_client,
        extra_labels: Optional[dict[str, str]] = None,
        reply_wait: float = REPLY_WAIT_SECONDS,
        bridge_config: Optional[BridgeConfig] = None,
    ) -> None:
        self.reply_wait = reply_wait
        self.cluster = settings.aws.cluster_name
        self.port_range = (settings.service.port_range_start, settings.service.port_range_end)
        zmq_settings = settings.zmq
        self.service = service
        self._events: "queue.SimpleQueue[tuple[str, ContainerEvent]]" = queue.SimpleQueue()
        # Work of the requests by request id: a retried request joins its first one.
        self._requests: "collections.OrderedDict[str, Work]" = collections.OrderedDict()

        handlers = {
            "container.ensure": self.on_ensure,
            "container.stop": self.on_stop,
            "container.start": self.on_start,
            "container.restart": self.on_restart,
            "container.remove": self.on_remove,
            "container.status": self.on_status,
            "container.traffic": self.on_traffic,
            "snapshot.get": self.on_snapshot,
        }
        self.rep = serve_requests(service, NAME, zmq_settings.containers, handlers, zmq_settings)
        self.pub = publish_on(service, NAME, zmq_settings.container_events, zmq_settings)
        service.on_close(self.close)
        self.node: Optional[NodeIdentity] = None
        if settings.cluster.engine == "swarm":
            # The schedulers of the managers ask every node what it serves, over CurveZMQ
            # (common/curve.py); nothing they send changes a container: Swarm owns them.
            self.node = node_identity(client, settings.aws)
            endpoint = f"tcp://0.0.0.0:{settings.cluster.agent_port}"
            reads = {
                "container.status": self.on_status,
                "container.traffic": self.on_traffic,
                "cluster.sync": self.on_cluster_sync,
            }
            self.cluster_rep = serve_requests(service, NAME, endpoint, reads, zmq_settings)
            log.info("answering the swarm's schedulers on %s", endpoint)

        # Docker calls block: they run here. Threads still busy at exit (a graceful stop)
        # finish first; queued ones are dropped.
        self.workers = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="docker-op")
        # Traffic reads wait on the bridge, never on a Docker worker: a slow server's
        # lists cannot delay a container change.
        self.readers = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="traffic")
        config = bridge_config or BridgeConfig.from_settings(settings)
        if self.node is not None and self.node.node_id:
            config = _following_sessions(config, self.node.node_id, settings)
        _say_how_mcp_is_authenticated(settings)
        self.bridge = BridgeThread(client, config, on_event=self._on_bridge_event)
        self.bridge.start()
        bridge_metrics.export(self.bridge.metrics)
        self.lifecycle = Lifecycle(
            DockerOps(client, self.cluster),
            Serving(self.bridge),
            specs,
            port_range=(settings.service.port_range_start, settings.service.port_range_end),
            emit=self.emit,
            submit=self.workers.submit,
            extra_labels=extra_labels,
            kept_lines=settings.bridge.stderr_lines,
        )
        self.stream = DockerEventStream(
            client_factory, event_filters(self.cluster), self.lifecycle.on_change, self.lifecycle.resync
        )
        self.stream.start()

    # --- handlers -----------------------------------------------------------------

    def on_ensure(self, msg: Message) -> Deferred:
        b = msg.body
        return self._change(
            msg, "ensure", _checked(b.server_id), lambda: self.lifecycle.ensure(b.server_id, b.spec_hash, b.host_port)
        )

    def on_stop(self, msg: Message) -> Deferred:
        sid = _checked(msg.body.server_id)
        return self._change(msg, "stop", sid, lambda: self.lifecycle.stop(sid))

    def on_start(self, msg: Message) -> Deferred:
        sid = _checked(msg.body.server_id)
        return self._change(msg, "start", sid, lambda: self.lifecycle.start(sid))

    def on_restart(self, msg: Message) -> Deferred:
        sid = _checked(msg.body.server_id)
        return self._change(msg, "restart", sid, lambda: self.lifecycle.restart(sid))

    def on_remove(self, msg: Message) -> Deferred:
        sid = _checked(msg.body.server_id)
        return self._change(msg, "remove", sid, lambda: self.lifecycle.remove(sid))

    def on_status(self, msg: Message) -> Deferred:
        sid = msg.body.server_id
        if sid is not None:
            _checked(sid)
        return self._read(
            msg, "status", lambda: self.lifecycle.status(sid), lambda infos: ContainerList(infos, node=self.node)
        )

    def on_cluster_sync(self, msg: Message) -> Deferred:
        """The cluster's servers and ports (a host without a replica answers 503 on each),
        then this node's status."""
        ports = dict(msg.body.ports)
        for sid, port in ports.items():
            _checked(sid)
            lo, hi = self.port_range
            if isinstance(port, bool) or not isinstance(port, int) or not lo <= port <= hi:
                raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"server {sid}: port {port!r} is not in {lo}-{hi}")

        nodes = {str(k): str(v) for k, v in dict(msg.body.nodes).items()}
        instance = self.node.instance_id if self.node is not None else ""
        registered = {str(sid) for sid, ids in dict(msg.body.targets).items() if instance and instance in ids}

        def sync() -> list[ContainerInfo]:
            self.bridge.set_peers(nodes)
            self.bridge.set_registered(registered)
            self.bridge.hold_ports(ports, "no replica of this server runs on this host")
            return self.lifecycle.status()

        return self._read(msg, "status", sync, lambda infos: ContainerList(infos, node=self.node))

    def on_traffic(self, msg: Message) -> Deferred:
        """What the bridge served (for the dashboard): read on the bridge's loop, waited
        for on a worker, never on this loop."""
        q = msg.body
        if q.server_id is not None:
            _checked(q.server_id)

        def read() -> TrafficReport:
            reports = self.bridge.traffic(q.server_id, q.detail, timeout=TRAFFIC_WAIT_SECONDS)
            return protocol.from_plain(TrafficReport, {"servers": reports})

        def too_late() -> Any:
            raise ServiceError(
                ErrorCode.TIMEOUT, f"traffic: the bridge did not answer within {TRAFFIC_WAIT_SECONDS:g} s"
            )

        return Deferred(self.readers.submit(read), TRAFFIC_WAIT_SECONDS, too_late)

    def on_snapshot(self, msg: Message) -> Deferred:
        def snapshot(infos: list[ContainerInfo]) -> Snapshot:
            self.publish_events()  # the state read already includes them
            return self.pub.snapshot({info.server_id: protocol.to_plain(info) for info in infos})

        return self._read(msg, "snapshot", self.lifecycle.status, snapshot)

    # --- work -----------------------------------------------------------------------

    def _work(self, msg: Message, fn: Callable[[], Any]) -> "Work":
        """The work of this request (a retried request, same id, joins the first one)."""
        work = self._requests.get(msg.id)
        if work is None:
            work = Work(self.workers.submit(fn))
            self._requests[msg.id] = work
            while len(self._requests) > _RECENT_REQUESTS:
                self._requests.popitem(last=False)
        return work

    def _change(self, msg: Message, op: str, server_id: str, fn: Callable[[], ContainerInfo]) -> Deferred:
        if msg.id not in self._requests:
            self.lifecycle.set_pending(server_id, op)
        work = self._work(msg, fn)

        def pending() -> ContainerInfo:
            log.info("server %s: %s goes on after the reply", server_id, op)
            if not work.detached:
                work.detached = True
                work.future.add_done_callback(lambda future: self._late_end(op, server_id, future))
            return ContainerInfo(server_id=server_id, name=server_ids.container_name(server_id), pending=Operation(op))

        return Deferred(work.future, self.reply_wait, pending)

    def _late_end(self, op: str, server_id: str, future: "concurrent.futures.Future[Any]") -> None:
        """A change that outlived its reply ended (worker thread)."""
        error = future.exception()
        if error is None:
            log.info("server %s: %s done", server_id, op)
            return
        message = error.message if isinstance(error, ServiceError) else f"{op} failed: internal error"
        if op in _STARTING_OPS:
            self.emit("container.exited", ContainerEvent(server_id, state="failed", message=message))

    def _read(self, msg: Message, name: str, fn: Callable[[], Any], then: Callable[[Any], Any]) -> Deferred:
        def too_late() -> Any:
            raise ServiceError(
                ErrorCode.TIMEOUT, f"{name}: the Docker engine did not answer within {READ_WAIT_SECONDS:g} s"
            )

        return Deferred(self._work(msg, fn).future, READ_WAIT_SECONDS, too_late, then)

    # --- events -------------------------------------------------------------------

    def emit(self, topic: str, body: ContainerEvent) -> None:
        """Queue an event for the loop to publish (any thread)."""
        self._events.put((topic, body))
        self.service.call_soon(self.publish_events)

    def _on_bridge_event(self, event: BridgeEvent) -> None:
        self.emit(
            "container.bridge",
            ContainerEvent(event.server_id, event.container_id or None, bridge=event.kind, message=event.reason),
        )

    def publish_events(self) -> None:
        while True:
            try:
                topic, body = self._events.get_nowait()
            except queue.Empty:
                return
            try:
                self.pub.publish(topic, body)
            except ProtocolError as exc:
                log.error("server %s: %s not published: %s", body.server_id, topic, exc.message)
                continue
            log.info("server %s: %s%s", body.server_id, topic, _event_detail(body))

    def close(self) -> None:
        self.stream.stop()
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.readers.shutdown(wait=False, cancel_futures=True)
        self.bridge.stop()  # closes the ports; the containers keep running


@dataclass
class Work:
    """A request's work on a worker thread."""

    future: "concurrent.futures.Future[Any]"
    detached: bool = False  # answered "pending": its late end is reported (once)


def _checked(server_id: str) -> str:
    """The server id, if it can name a container (it goes into Docker API paths)."""
    problem = server_ids.problem(server_id)
    if problem:
        raise ServiceError(ErrorCode.INVALID_ARGUMENT, f"server id {server_id[:100]!r}: {problem}")
    return server_id


def _event_detail(body: ContainerEvent) -> str:
    parts = []
    if body.container_id:
        parts.append(body.container_id[:12])
    if body.exit_code is not None:
        parts.append(f"exit code {body.exit_code}")
    if body.oom_killed:
        parts.append("OOM-killed")
    if body.requested:
        parts.append("requested")
    if body.health:
        parts.append(f"health {body.health}")
    if body.bridge:
        parts.append(f"bridge {body.bridge}")
    if body.message:
        parts.append(body.message)
    return f" ({', '.join(parts)})" if parts else ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = process_parser(NAME, __doc__)
    parser.add_argument(
        "--reply-wait",
        type=float,
        default=REPLY_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long a change (ensure, stop, ...) waits for its outcome "
        "before the reply says 'pending' (keep it below the callers' "
        "request timeout)",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra label for every container the agent creates "
        "(repeatable; the tests mark their containers with it)",
    )
    args = parser.parse_args(argv)
    extra, problems = parse_extra(args.label)
    if problems:
        for problem in problems:
            print(f"{NAME}: --label: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE
    config_path, settings_path = resolve_paths(args)
    settings = start_process(NAME, settings_path)
    if settings is None:
        return EXIT_UNUSABLE
    port_range = (settings.service.port_range_start, settings.service.port_range_end)
    specs = ServerSpecs(Path(config_path), port_range)
    specs.reload()
    service = open_service(NAME, settings)
    if service is None:
        return EXIT_UNUSABLE
    try:
        serve_metrics(service, NAME, settings)
        ContainerAgent(
            service, settings, specs, client=docker_client(), extra_labels=extra, reply_wait=max(args.reply_wait, 0.0)
        )
        return service.run()
    finally:
        service.close()


if __name__ == "__main__":
    sys.exit(main())
