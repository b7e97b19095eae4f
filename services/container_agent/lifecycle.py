"""The container lifecycle: ensure, start, stop, restart, remove, sync, status, logs.

Every method blocks (Docker engine calls, bridge calls) and runs on a worker thread.
Operations on one server are serialized by a per-server lock; reads take no lock.
Docker events (see event_stream.py) come in through `on_change` on the events
thread, which publishes at once and never waits for a lock: serving a container that
started is handed to a worker.

What the agent remembers is only what Docker cannot tell it later: the last exit of
each server (exit code, OOM, stderr lines), kept after its container is gone until
the server starts again; the last error of an operation; which run of a container the
bridge is attached to. Everything else is read from Docker, found by our labels.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Iterator, Mapping, Optional

from common import server_ids
from common.config import ServerConfig
from common.container_labels import (
    HTTP,
    STDIO,
    STOP_SIGNAL,
    STOP_TIMEOUT,
    Placement,
    is_ours,
    labels_for,
    placement_of,
)
from common.protocol import (
    BridgeState,
    ContainerEvent,
    ContainerInfo,
    ErrorCode,
    ServiceError,
)
from common.swarm_service import DEFAULT_STOP_TIMEOUT

from . import events
from .docker_ops import DockerOps
from .events import ContainerChange
from .plan import STARTABLE, Observed, Remedy, decide, pull_needed
from .serving import Serving
from .specs import ServerSpecs
from .status import STATUS_TAIL_LINES, LastExit, clean_lines, container_info, status_fields

log = logging.getLogger(__name__)

# stderr lines kept per server after an exit, by default ([bridge] stderr_lines).
KEPT_LINES = 200

Emit = Callable[[str, ContainerEvent], None]
Submit = Callable[[Callable[[], Any]], None]


def placement_for(server: ServerConfig, host_port: int) -> Placement:
    if server.http is not None:
        return Placement(server.server_id, host_port, server.spec_hash, HTTP, server.http.port, server.http.path)
    return Placement(server.server_id, host_port, server.spec_hash, STDIO)


def _state(attrs: Optional[Mapping[str, Any]]) -> str:
    return str(((attrs or {}).get("State") or {}).get("Status") or "")


def _labels(attrs: Mapping[str, Any]) -> Mapping[str, str]:
    return (attrs.get("Config") or {}).get("Labels") or {}


class Lifecycle:
    def __init__(
        self,
        ops: DockerOps,
        serving: Serving,
        specs: ServerSpecs,
        *,
        port_range: tuple[int, int],
        emit: Emit,
        submit: Submit,
        extra_labels: Optional[Mapping[str, str]] = None,
        kept_lines: int = KEPT_LINES,
    ) -> None:
        self.ops = ops
        self.serving = serving
        self.specs = specs
        self.cluster = ops.cluster
        self.port_range = port_range
        self.extra_labels = dict(extra_labels or {})
        self.kept_lines = kept_lines
        self._emit = emit
        self._submit = submit
        self._guard = threading.Lock()  # the dicts below
        self._locks: dict[str, threading.Lock] = {}
        self._last_exit: dict[str, LastExit] = {}
        self._errors: dict[str, str] = {}
        self._pending: dict[str, str] = {}
        # The run (container id, StartedAt) the bridge was attached to, per server.
        self._runs: dict[str, tuple[str, str]] = {}
        # Containers last seen running: id -> (server id, placement), for resyncs.
        self._running: dict[str, tuple[str, Placement]] = {}
        # Containers the agent is stopping: their exit is requested, not a crash.
        self._stopping: set[str] = set()
        # Inspect results for status(), by container id, with the state the listing
        # showed then. Docker events about a container drop its entry, so a no-op
        # status of many servers costs one listing instead of one inspect each.
        self._inspected: dict[str, tuple[Optional[str], Mapping[str, Any]]] = {}

    # --- bookkeeping --------------------------------------------------------------

    def _lock(self, server_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(server_id, threading.Lock())

    def set_pending(self, server_id: str, op: str) -> None:
        with self._guard:
            self._pending[server_id] = op

    def pending(self, server_id: str) -> str:
        with self._guard:
            return self._pending.get(server_id, "")

    @contextlib.contextmanager
    def _op(self, server_id: str, op: str) -> Iterator[None]:
        """One serialized operation: its error is remembered for status, until one
        succeeds."""
        try:
            with self._lock(server_id):
                yield
        except ServiceError as exc:
            with self._guard:
                self._errors[server_id] = exc.message
            if exc.message.startswith(f"server {server_id}:"):
                log.warning("%s failed: %s", op, exc.message)
            else:
                log.warning("server %s: %s failed: %s", server_id, op, exc.message)
            raise
        except Exception:
            with self._guard:
                self._errors[server_id] = f"{op} failed: internal error"
            raise
        else:
            with self._guard:
                self._errors.pop(server_id, None)
        finally:
            with self._guard:
                if self._pending.get(server_id) == op:
                    del self._pending[server_id]

    def _remember_exit(self, server_id: str, record: LastExit) -> None:
        with self._guard:
            old = self._last_exit.get(server_id)
            # Two paths record the same exit (the die event, a removal): keep the richer.
            if old is not None and old.container_id == record.container_id:
                code = record.exit_code if record.exit_code is not None else old.exit_code
                record = LastExit(
                    record.container_id,
                    code,
                    record.oom_killed or old.oom_killed,
                    record.finished_at or old.finished_at,
                    record.stderr_tail or old.stderr_tail,
                )
            self._last_exit[server_id] = record

    def _exit_record(
        self, server_id: str, attrs: Optional[Mapping[str, Any]], container_id: str, exit_code: Optional[int] = None
    ) -> LastExit:
        state = (attrs or {}).get("State") or {}
        n = self.kept_lines
        tail = self.ops.stderr_lines(container_id, n) if attrs is not None else None
        if tail is None:
            tail = self.serving.stderr_tail(server_id, n)
        code = exit_code if exit_code is not None else state.get("ExitCode")
        finished = state.get("FinishedAt")
        if not finished or finished.startswith("0001"):  # Docker's zero time: never
            finished = None
        return LastExit(
            container_id=container_id,
            exit_code=code if isinstance(code, int) else None,
            oom_killed=bool(state.get("OOMKilled")),
            finished_at=finished,
            stderr_tail=tuple(tail[-n:]),
        )

    # --- reading ------------------------------------------------------------------

    def info(self, server_id: str, attrs: Optional[Mapping[str, Any]]) -> ContainerInfo:
        with self._guard:
            last_exit = self._last_exit.get(server_id)
            error = self._errors.get(server_id)
            pending = self._pending.get(server_id, "")
        bridge, bridge_reason, _ = self.serving.state(server_id)
        tail: list[str] = []
        if attrs is not None:
            got = None
            if _state(attrs) != "running" or bridge == BridgeState.FAILED:
                # Docker's log: a server stuck before its handshake often said why
                # before the bridge attached.
                got = self.ops.stderr_lines(attrs["Id"], STATUS_TAIL_LINES)
            if got is None and _state(attrs) == "running":
                got = self.serving.stderr_tail(server_id, STATUS_TAIL_LINES)
            tail = got or []
            if not is_ours(_labels(attrs), self.cluster):
                error = error or (
                    f"container {server_ids.container_name(server_id)} is not managed by this orchestrator"
                )
        return container_info(
            server_id,
            attrs,
            bridge=bridge,
            bridge_reason=bridge_reason,
            last_exit=last_exit,
            error=error,
            pending=pending,
            stderr_tail=tail,
            mcp_version=self.serving.mcp_version(server_id) if bridge == BridgeState.READY else None,
        )

    def status(self, server_id: Optional[str] = None) -> list[ContainerInfo]:
        if server_id is not None:
            return [self.info(server_id, self.ops.inspect_server(server_id))]
        found: dict[str, Mapping[str, Any]] = {}
        listed: set[str] = set()
        for summary in self.ops.list_ours():
            placement = placement_of(summary.get("Labels"))
            if placement is None or placement.server_id in found:
                continue
            attrs = self._inspect_listed(summary)
            listed.add(summary["Id"])
            if attrs is not None:
                found[placement.server_id] = attrs
        with self._guard:
            for gone in set(self._inspected) - listed:
                del self._inspected[gone]
        with self._guard:
            remembered = set(self._last_exit) | set(self._errors) | set(self._pending)
        known = sorted(set(found) | remembered | set(self.serving.served_ids()))
        # A server known only from memory may still have a container under its name
        # (not ours, or without our labels any more): show what is there.
        return [self.info(sid, found[sid] if sid in found else self.ops.inspect_server(sid)) for sid in known]

    def _inspect_listed(self, summary: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
        """Inspect a listed container, or reuse the last inspect while nothing changed."""
        cid, state = summary["Id"], summary.get("State")
        with self._guard:
            cached = self._inspected.get(cid)
        if cached is not None and cached[0] == state:
            return cached[1]
        attrs = self.ops.inspect(cid)
        kept = status_fields(attrs) if attrs is not None else None
        with self._guard:
            if kept is None:
                self._inspected.pop(cid, None)
            else:
                self._inspected[cid] = (state, kept)
        return kept

    def forget_inspected(self, container_id: Optional[str] = None) -> None:
        """Something happened to a container (or, with None, maybe to any): inspect again."""
        with self._guard:
            if container_id is None:
                self._inspected.clear()
            else:
                self._inspected.pop(container_id, None)

    def ensure(self, server_id: str, spec_hash: str, host_port: int) -> ContainerInfo:
        with self._op(server_id, "ensure"):
            server = self.specs.lookup(server_id, spec_hash)
            lo, hi = self.port_range
            if not lo <= host_port <= hi:
                raise ServiceError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"server {server_id}: host port {host_port} is outside the port range {lo}-{hi}",
                )
            wanted = placement_for(server, host_port)
            attrs = self.ops.inspect_server(server_id)
            observed = None
            if attrs is not None:
                labels = _labels(attrs)
                ours = is_ours(labels, self.cluster)
                observed = Observed(attrs["Id"], _state(attrs), ours, placement_of(labels) if ours else None)
            decision = decide(wanted, observed, self.serving.served_container(server_id))
            if decision.action is not Remedy.NOTHING:
                log.info("server %s: %s (%s)", server_id, decision.action, decision.reason)
            if decision.action is Remedy.CONFLICT:
                raise ServiceError(
                    ErrorCode.CONFLICT, f"server {server_id}: {server_ids.container_name(server_id)}: {decision.reason}"
                )
            if decision.action is Remedy.RECREATE:
                assert attrs is not None
                self._retire(server_id, attrs, self._stop_timeout(server_id, attrs))
                attrs = None
            if decision.action in (Remedy.CREATE, Remedy.RECREATE):
                attrs = self._create_and_start(server, wanted)
            elif decision.action is Remedy.START:
                assert attrs is not None
                self.ops.start(attrs["Id"], _state(attrs))
                attrs = self._running_attrs(server_id, attrs["Id"])
            assert attrs is not None
            self._attach(wanted, attrs, adopted=decision.action is Remedy.ADOPT)
        return self.info(server_id, attrs)

    def start(self, server_id: str) -> ContainerInfo:
        with self._op(server_id, "start"):
            attrs = self._own_container(server_id)
            state = _state(attrs)
            if state != "running":
                if state not in STARTABLE:
                    raise ServiceError(
                        ErrorCode.FAILED,
                        f"server {server_id}: the container is {state} and cannot "
                        f"be started; container.ensure recreates it",
                    )
                self.ops.start(attrs["Id"], state)
                attrs = self._running_attrs(server_id, attrs["Id"])
            self._attach(self._placement(attrs), attrs, adopted=state == "running")
        return self.info(server_id, attrs)

    def stop(self, server_id: str) -> ContainerInfo:
        """Stop the container; its bridge port stays open and answers 503."""
        with self._op(server_id, "stop"):
            attrs = self.ops.inspect_server(server_id)
            if attrs is not None:
                self._check_ours(server_id, attrs)
                if _state(attrs) in ("running", "paused", "restarting"):
                    log.info("server %s: stopping %s", server_id, attrs["Id"][:12])
                    self._expect_exit(attrs["Id"])
                    self.ops.stop(attrs["Id"], self._stop_timeout(server_id, attrs))
                    attrs = self.ops.inspect(attrs["Id"])
        return self.info(server_id, attrs)

    def restart(self, server_id: str) -> ContainerInfo:
        with self._op(server_id, "restart"):
            attrs = self._own_container(server_id)
            if _state(attrs) not in STARTABLE | {"running", "restarting"}:
                raise ServiceError(
                    ErrorCode.FAILED,
                    f"server {server_id}: the container is {_state(attrs)} and "
                    f"cannot be restarted; container.ensure recreates it",
                )
            log.info("server %s: restarting %s", server_id, attrs["Id"][:12])
            if _state(attrs) == "paused":
                self.ops.start(attrs["Id"], "paused")
            if _state(attrs) in ("running", "paused", "restarting"):
                self._expect_exit(attrs["Id"])
            self.ops.restart(attrs["Id"], self._stop_timeout(server_id, attrs))
            attrs = self._running_attrs(server_id, attrs["Id"])
            self._attach(self._placement(attrs), attrs, adopted=False)
        return self.info(server_id, attrs)

    def remove(self, server_id: str) -> ContainerInfo:
        """Remove the container and stop serving it; its last exit stays visible."""
        with self._op(server_id, "remove"):
            attrs = self.ops.inspect_server(server_id)
            if attrs is not None:
                self._check_ours(server_id, attrs)
                self._retire(server_id, attrs, self._stop_timeout(server_id, attrs))
            self._unserve(server_id)
        return self.info(server_id, None)

    # --- helpers ------------------------------------------------------------------

    def _own_container(self, server_id: str) -> Mapping[str, Any]:
        attrs = self.ops.inspect_server(server_id)
        if attrs is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND,
                f"server {server_id}: no container {server_ids.container_name(server_id)}; container.ensure creates it",
            )
        self._check_ours(server_id, attrs)
        return attrs

    def _check_ours(self, server_id: str, attrs: Mapping[str, Any]) -> None:
        if not is_ours(_labels(attrs), self.cluster):
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"server {server_id}: container {server_ids.container_name(server_id)} is not "
                f"managed by this orchestrator; it is left alone",
            )

    def _placement(self, attrs: Mapping[str, Any]) -> Placement:
        placement = placement_of(_labels(attrs))
        assert placement is not None  # checked by is_ours
        return placement

    def _stop_timeout(self, server_id: str, attrs: Mapping[str, Any]) -> Optional[int]:
        """--stop-timeout of the spec the container was made from (None: Docker's)."""
        server = self.specs.find(server_id)
        placement = placement_of(_labels(attrs))
        if server is not None and placement is not None and server.spec_hash == placement.spec_hash:
            return server.spec.stop_timeout
        return None

    def _create_and_start(self, server: ServerConfig, wanted: Placement) -> Mapping[str, Any]:
        spec, sid = server.spec, server.server_id
        present = self.ops.image_present(spec.image)
        pull, problem = pull_needed(spec.pull, present)
        if problem:
            raise ServiceError(ErrorCode.FAILED, f"server {sid}: image {spec.image}: {problem}")
        if pull:
            log.info("server %s: pulling %s", sid, spec.image)
            try:
                self.ops.pull(spec.image, spec.platform)
            except ServiceError as exc:
                if not present:
                    raise ServiceError(exc.code, f"server {sid}: {exc.message}") from None
                # --pull=always with the registry out of reach: keep the server running on
                # the image we have rather than leave it down.
                log.warning("server %s: %s; using the local image", sid, exc.message)
        labels = labels_for(wanted, self.cluster, self.extra_labels)
        container_id = self.ops.create(spec, server_ids.container_name(sid), labels)
        log.info("server %s: created %s (%s)", sid, container_id[:12], spec.image)
        self.ops.start(container_id)
        return self._running_attrs(sid, container_id)

    def _running_attrs(self, server_id: str, container_id: str) -> Mapping[str, Any]:
        """`docker inspect` of a container just started; FAILED when it is not running."""
        attrs = self.ops.inspect(container_id)
        if attrs is None:
            raise ServiceError(ErrorCode.FAILED, f"server {server_id}: the container vanished after its start")
        if _state(attrs) != "running":
            state = attrs.get("State") or {}
            lines = self.ops.stderr_lines(container_id, 1) or []
            last = f": {clean_lines(lines, 1)[0]}" if lines else ""
            raise ServiceError(
                ErrorCode.FAILED,
                f"server {server_id}: the container exited at once with code {state.get('ExitCode')}{last}",
            )
        return attrs

    def _attach(self, placement: Placement, attrs: Mapping[str, Any], *, adopted: bool) -> None:
        """Serve this run of the container, unless the bridge already does."""
        sid = placement.server_id
        run = (str(attrs["Id"]), str((attrs.get("State") or {}).get("StartedAt") or ""))
        with self._guard:
            previous = self._runs.get(sid)
        served = self.serving.served_container(sid)
        if served == run[0] and previous == run:
            return
        if served == run[0] and previous is not None and previous != run:
            # The bridge may still hold the attach of the earlier run of this container.
            self.serving.mark_down(sid, run[0], "the container restarted")
        self.serving.serve(placement, attrs, adopted=adopted)
        with self._guard:
            self._runs[sid] = run

    def _retire(self, server_id: str, attrs: Mapping[str, Any], timeout: Optional[int]) -> None:
        """Stop (gracefully) and remove a container of ours, keeping its last exit."""
        container_id = attrs["Id"]
        if _state(attrs) in ("running", "paused", "restarting"):
            self._expect_exit(container_id)
            self.ops.stop(container_id, timeout)
            attrs = self.ops.inspect(container_id) or attrs
        started = str((attrs.get("State") or {}).get("StartedAt") or "")
        if started and not started.startswith("0001"):  # it ran: keep how it ended
            self._remember_exit(server_id, self._exit_record(server_id, attrs, container_id))
        self.ops.remove(container_id)
        log.info("server %s: removed %s", server_id, container_id[:12])

    def _expect_exit(self, container_id: str) -> None:
        with self._guard:
            self._stopping.add(container_id)

    def _unserve(self, server_id: str) -> None:
        self.serving.unserve(server_id)
        with self._guard:
            self._runs.pop(server_id, None)

    # --- Docker events (events thread) ---------------------------------------------

    def on_change(self, change: ContainerChange) -> None:
        """Publish what a Docker event means, at once; serving is handed to a worker."""
        sid, cid, port = change.server_id, change.container_id, change.placement.host_port
        self.forget_inspected(cid)
        if change.kind == events.STARTED:
            with self._guard:
                self._running[cid] = (sid, change.placement)
                self._last_exit.pop(sid, None)  # a crash stays visible until the next start
            self._emit("container.started", ContainerEvent(sid, cid, state="running", host_port=port))
            self._submit(lambda: self.serve_started(sid, cid, adopted=False))
        elif change.kind == events.EXITED:
            with self._guard:
                self._running.pop(cid, None)
                requested = cid in self._stopping
                self._stopping.discard(cid)
            attrs = self._quiet(lambda: self.ops.inspect(cid))
            record = self._exit_record(sid, attrs, cid, change.exit_code)
            self._remember_exit(sid, record)
            self._emit(
                "container.exited",
                ContainerEvent(
                    sid,
                    cid,
                    state=_state(attrs) or "missing",
                    exit_code=record.exit_code,
                    oom_killed=record.oom_killed,
                    host_port=port,
                    requested=requested,
                    stderr_tail=clean_lines(record.stderr_tail, STATUS_TAIL_LINES),
                ),
            )
            self._proxy_down_later(change, "the container exited")
        elif change.kind == events.OOM:
            self._emit(
                "container.oom",
                ContainerEvent(
                    sid, cid, state="running", host_port=port, oom_killed=True, message="the kernel's OOM killer struck"
                ),
            )
        elif change.kind == events.HEALTH:
            self._emit("container.health", ContainerEvent(sid, cid, health=change.health, host_port=port))
        elif change.kind == events.DESTROYED:
            with self._guard:
                self._running.pop(cid, None)
                self._stopping.discard(cid)
            self._proxy_down_later(change, "the container was removed")
        elif change.kind == events.DRAIN:
            log.info("server %s: Swarm stops the replica %s: draining it first", sid, cid[:12])
            self._submit(lambda: self.serving.drain(sid, cid, lambda: self._submit(lambda: self.let_go(sid, cid))))

    def let_go(self, server_id: str, container_id: str) -> None:
        """A drained replica (nothing in flight, out of the target group): stopped with
        the server's own stop signal, killed after its own timeout (its labels say both)."""
        attrs = self._quiet(lambda: self.ops.inspect(container_id)) or {}
        labels = _labels(attrs)
        stop_signal = labels.get(STOP_SIGNAL) or "SIGTERM"
        try:
            timeout = int(labels.get(STOP_TIMEOUT) or DEFAULT_STOP_TIMEOUT)
        except ValueError:
            timeout = DEFAULT_STOP_TIMEOUT
        log.info("server %s: replica %s drained: stopping it (%s)", server_id, container_id[:12], stop_signal)
        with self._guard:
            self._stopping.add(container_id)
        self._quiet(lambda: self.ops.kill(container_id, stop_signal, timeout))

    def _proxy_down_later(self, change: ContainerChange, reason: str) -> None:
        """A reverse-proxied server whose container ended answers 503 from now on. (An
        attached one needs no telling: its attach connection ends with the container.)"""
        if change.placement.transport != HTTP:
            return
        sid, cid = change.server_id, change.container_id

        def mark_down() -> None:
            with self._lock(sid):
                with self._guard:
                    run = self._runs.get(sid)
                started = events.time_ns(run[1]) if run else None
                # Only the run that ended: not a newer run of the same container.
                if run and run[0] == cid and (started is None or started <= change.time_nano):
                    self.serving.mark_down(sid, cid, reason)

        self._submit(mark_down)

    def serve_started(self, server_id: str, container_id: str, *, adopted: bool) -> None:
        """Serve a container of ours that runs (started by anyone, or found running)."""
        with self._lock(server_id):
            try:
                attrs = self.ops.inspect(container_id)
                if attrs is None or _state(attrs) != "running" or not is_ours(_labels(attrs), self.cluster):
                    return  # it ended meanwhile: the error of an earlier operation stays
                self._attach(self._placement(attrs), attrs, adopted=adopted)
            except ServiceError as exc:
                with self._guard:
                    self._errors[server_id] = exc.message
                log.warning("server %s: serving failed: %s", server_id, exc.message)
                return
            with self._guard:
                self._errors.pop(server_id, None)

    def resync(self, first: bool) -> None:
        """On each (re)connection of the events stream: serve every running container of
        ours (adoption) and, after a gap, publish what changed while we were deaf."""
        self.forget_inspected()  # events may have been missed
        now: dict[str, tuple[str, str, Placement, Optional[int]]] = {}
        for summary in self.ops.list_ours():
            placement = placement_of(summary.get("Labels"))
            if placement is not None:
                now[summary["Id"]] = (placement.server_id, str(summary.get("State") or ""), placement, None)
        with self._guard:
            known = dict(self._running)
        if first:
            with self._guard:
                self._running = {cid: (sid, p) for cid, (sid, state, p, _) in now.items() if state == "running"}
        else:
            for change in events.resync_changes(known, now):
                self.on_change(change)
        running = [(cid, sid) for cid, (sid, state, _, _) in now.items() if state == "running"]
        if first and running:
            log.info("adopting %d running container(s): %s", len(running), ", ".join(sorted(sid for _, sid in running)))
        for cid, sid in running:
            self._submit(lambda sid=sid, cid=cid: self.serve_started(sid, cid, adopted=True))

    @staticmethod
    def _quiet(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ServiceError as exc:
            log.warning("%s", exc.message)
            return None
