"""Which manager's control plane acts (`[cluster] engine = swarm`): a lease kept in Swarm's
own Raft store, never an election of ours.

The scheduler, alb-agent and dashboard run on every manager node; only the scheduler
that holds the lease acts (its service steps, its routes for the alb-agent beside it,
its cluster.sync to the nodes); the others read and publish what they see, say who is
active, and refuse operators' actions. The lease is the labels of one Swarm config
object (`mcp-orchestrator-<cluster>-control`): its holder's node id and a beat renewed
every `lease_seconds / 4`. Swarm updates an object only at the version it was read at,
through its Raft log, so of two managers that try at once exactly one wins.

A standby sees the holder's beats as new version indexes. When none has come for
`lease_seconds` (on its own clock: the managers' clocks are never compared) the
holder is taken for gone and the lease is taken: by the Swarm leader's scheduler at
once, by another manager's after half a lease more (the leader's first, so that the
control plane sits where Swarm's consensus does; a leader without a live scheduler is
no obstacle). The first lease is made the same way. A holder that cannot renew (its engine gone, no quorum, lost the
race) stops acting after 3/4 of a lease, before anyone else may begin. A scheduler
that stops releases the lease, and a scheduler restarted on the holder's node takes
it back at once (systemd runs one per node).

`decide` is the rule (pure); `ControlLease` reads and writes the object and keeps the
role, on a thread of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from common import container_labels as ours
from common.protocol import ControlView
from common.secrets import shown

log = logging.getLogger(__name__)

HOLDER = ours.RESERVED_LABEL_PREFIX + "control.holder"
HOLDER_NAME = ours.RESERVED_LABEL_PREFIX + "control.holder-name"
TERM = ours.RESERVED_LABEL_PREFIX + "control.term"
BEAT = ours.RESERVED_LABEL_PREFIX + "control.beat"

# Decisions.
CREATE, RENEW, TAKE, WAIT = "create", "renew", "take", "wait"


@dataclass(frozen=True)
class Lease:
    """The lease object as last read."""

    object_id: str
    version: int  # Swarm's version index: changes with every write (a beat)
    holder: str  # node id; "" = released
    holder_name: str
    term: int  # +1 at every change of holder
    spec: dict  # the object's spec, written back with new labels


@dataclass(frozen=True)
class Seen:
    """What this manager knows when it decides."""

    node_id: str
    leader: bool  # this node is the Swarm leader
    lease: Optional[Lease]  # None: no lease object yet
    quiet_for: float  # seconds since this process last saw the lease's version change


def decide(seen: Seen, lease_seconds: float) -> str:
    """create | renew | take | wait."""
    lease = seen.lease
    patience = lease_seconds if seen.leader else lease_seconds * 1.5
    if lease is None:  # the first: the leader's to make, anyone's if it has no scheduler
        return CREATE if seen.leader or seen.quiet_for >= patience else WAIT
    if lease.holder == seen.node_id:
        return RENEW  # ours, or our predecessor's on this node (one scheduler per node)
    if not lease.holder:  # released by a scheduler that stopped
        return TAKE if seen.leader or seen.quiet_for >= lease_seconds / 2 else WAIT
    return TAKE if seen.quiet_for >= patience else WAIT


class ControlLease:
    """The lease of one scheduler: `acting()` says whether it may change anything now."""

    def __init__(
        self,
        client: Any,
        cluster: str,
        lease_seconds: float,
        *,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client  # a docker.DockerClient on this node's engine
        self.cluster = cluster
        self.name = f"mcp-orchestrator-{cluster}-control"
        self.lease_seconds = lease_seconds
        self.on_change = on_change
        self.clock = clock
        self._lock = threading.Lock()
        self._valid_until = 0.0  # acting until then (our clock), renewed with every beat
        self._view = ControlView(role="standby", reason="starting", since=time.time())
        self._seen_version: Optional[int] = None
        self._seen_at = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-lease", daemon=True)

    # --- what the scheduler asks ------------------------------------------------------------

    def acting(self) -> bool:
        with self._lock:
            return self._view.role == "active" and self.clock() < self._valid_until

    def view(self) -> ControlView:
        with self._lock:
            return self._view

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and let the lease go, so another manager takes over at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.acting():
            try:
                lease = self._read()
                if lease is not None and lease.holder == self._node_id():
                    self._write(lease, holder="", holder_name="", term=lease.term)
                    log.info("control plane: lease released")
            except Exception as exc:
                log.warning("control plane: the lease could not be released (%s)", _reason(exc))

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.lease_seconds / 4
        while not self._stop.is_set():
            started = self.clock()
            try:
                self.step(started)
            except Exception as exc:  # the engine down, no quorum: standing by, said why
                self._standby(f"the Swarm engine cannot be asked: {_reason(exc)}", None, failed=True)
            self._stop.wait(max(interval - (self.clock() - started), 0.05))

    def step(self, started: float) -> None:
        """One look at the lease, and what follows from it."""
        info = self.client.api.info().get("Swarm") or {}
        node_id = str(info.get("NodeID") or "")
        if not node_id or not info.get("ControlAvailable"):
            self._standby("this node is not a Swarm manager (the managers' control planes act)", None, node_id=node_id)
            return
        node = self.client.api.inspect_node(node_id)
        leader = bool((node.get("ManagerStatus") or {}).get("Leader"))
        hostname = str((node.get("Description") or {}).get("Hostname") or "")
        lease = self._read()
        version = lease.version if lease is not None else None
        if version != self._seen_version:
            self._seen_version, self._seen_at = version, self.clock()
        decision = decide(Seen(node_id, leader, lease, self.clock() - self._seen_at), self.lease_seconds)
        if decision == WAIT:
            why = "another manager's scheduler holds the lease" if lease else "no lease yet (the leader's makes it)"
            self._standby(why, lease, node_id=node_id, hostname=hostname)
            return
        if decision == CREATE:
            self._create(node_id, hostname)
        else:
            assert lease is not None
            term = lease.term if decision == RENEW else lease.term + 1
            self._write(lease, holder=node_id, holder_name=hostname, term=term)
        self._active(node_id, hostname, started, took=decision != RENEW)

    # --- roles -----------------------------------------------------------------------------------

    def _active(self, node_id: str, hostname: str, renewed_at: float, took: bool) -> None:
        with self._lock:
            # Measured from before the write: the others count from after it.
            self._valid_until = renewed_at + self.lease_seconds * 0.75
            changed = self._view.role != "active"
            if changed:
                self._view = ControlView(
                    role="active", node_id=node_id, hostname=hostname, active_node=hostname, since=time.time()
                )
        if changed:
            log.warning("control plane: active on this node (%s)%s", hostname, ", lease taken" if took else "")
            self.on_change()

    def _standby(
        self, reason: str, lease: Optional[Lease], failed: bool = False, node_id: str = "", hostname: str = ""
    ) -> None:
        """`failed`: the engine could not be asked (or refused the write): a holder keeps
        acting until its lease runs out, in case the next beat gets through."""
        with self._lock:
            before = self._view
            active_node = lease.holder_name if lease is not None and lease.holder else ""
            if failed and before.role == "active" and self.clock() < self._valid_until:
                return
            view = ControlView(
                role="standby",
                node_id=node_id or before.node_id,
                hostname=hostname or before.hostname,
                active_node=active_node,
                since=before.since if before.role == "standby" else time.time(),
                reason=reason,
            )
            changed = (before.role, before.active_node, before.reason) != (view.role, view.active_node, view.reason)
            self._view = view
            self._valid_until = 0.0
        if changed:
            level = logging.WARNING if before.role == "active" else logging.INFO
            who = f"; active: {active_node}" if active_node else ""
            log.log(level, "control plane: standing by (%s%s)", reason, who)
            self.on_change()

    # --- the object ------------------------------------------------------------------------------

    def _node_id(self) -> str:
        with self._lock:
            return self._view.node_id

    def _read(self) -> Optional[Lease]:
        found = self.client.api.configs(filters={"name": self.name})
        found = [c for c in found if (c.get("Spec") or {}).get("Name") == self.name]
        if not found:
            return None
        obj = found[0]
        spec = obj.get("Spec") or {}
        labels = spec.get("Labels") or {}
        try:
            term = int(labels.get(TERM, "0"))
        except ValueError:
            term = 0
        return Lease(
            object_id=obj["ID"],
            version=int((obj.get("Version") or {}).get("Index", 0)),
            holder=str(labels.get(HOLDER, "")),
            holder_name=str(labels.get(HOLDER_NAME, "")),
            term=term,
            spec=spec,
        )

    def _labels(self, holder: str, holder_name: str, term: int) -> dict[str, str]:
        return {
            ours.MANAGED: "true",
            ours.CLUSTER: self.cluster,
            HOLDER: holder,
            HOLDER_NAME: holder_name,
            TERM: str(term),
            BEAT: str(time.time_ns()),  # every write is a new version, even the same holder's
        }

    def _create(self, node_id: str, hostname: str) -> None:
        data = f"control-plane lease of mcp-orchestrator cluster {self.cluster}\n".encode()
        self.client.api.create_config(self.name, data, labels=self._labels(node_id, hostname, 1))

    def _write(self, lease: Lease, *, holder: str, holder_name: str, term: int) -> None:
        """The labels, at the version read: refused (409/500 "update out of sequence") when
        another manager wrote first."""
        spec = dict(lease.spec)
        spec["Labels"] = self._labels(holder, holder_name, term)
        if not isinstance(spec.get("Data"), str):
            spec["Data"] = base64.b64encode(spec.get("Data") or b"").decode()
        api = self.client.api
        response = api._post(
            api._url("/configs/{0}/update", lease.object_id),
            params={"version": lease.version},
            data=json.dumps(spec),
            headers={"Content-Type": "application/json"},
        )
        api._raise_for_status(response)


def _reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return shown(str(explanation or exc), 200)
