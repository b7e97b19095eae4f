"""CPU time spent by each party during a measured phase: the bridge's processes, the
server's container(s), the Docker engine in its parts (dockerd, containerd, and the shims
of the metered containers, which carry their stdio), the load generator itself, and the whole
machine's busy and idle time, so that the parts can be held against the total."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

from . import procfs


@dataclass(frozen=True)
class CpuUse:
    bridge: Optional[float]  # seconds; None when not metered
    server: Optional[float]
    dockerd: Optional[float]  # the engine, in its three parts: dockerd's own threads,
    containerd: Optional[float]  # containerd's, and the metered containers' shims
    shim: Optional[float]
    client: float
    machine: float = 0.0  # busy seconds of every core, whoever used them
    idle: float = 0.0  # idle seconds of every core

    @property
    def engine(self) -> Optional[float]:
        """dockerd, containerd and the shims together: the engine's relay of the stdio."""
        parts = [p for p in (self.dockerd, self.containerd, self.shim) if p is not None]
        return sum(parts) if parts else None

    def per(self, n: int, part: str) -> Optional[float]:
        """Microseconds of `part` per unit of work (a call, a session)."""
        value = getattr(self, part)
        return value / n * 1e6 if value is not None and n else None


class Meter:
    def __init__(self, bridge_pids: Sequence[int], container_ids: Sequence[str]) -> None:
        self.bridge_pids = list(bridge_pids)
        self.container_ids = list(container_ids)
        # Each part on its own threads only: containerd may be dockerd's child, and a
        # shim's children are the containers' processes, the server, counted apart (from
        # the cgroup).
        self.dockerd = procfs.pids_named("dockerd")
        self.containerd = procfs.pids_named("containerd")
        self.shims = procfs.shim_pids(self.container_ids)
        self._start: Optional[tuple] = None

    def _read(self) -> tuple:
        bridge = procfs.tree_cpu_seconds(self.bridge_pids) if self.bridge_pids else None
        server: Optional[float] = None
        if self.container_ids:
            parts = [procfs.container_cpu_seconds(c) for c in self.container_ids]
            server = None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
        dockerd, containerd, shim = (
            sum(procfs.precise_cpu_seconds(p) or 0.0 for p in pids) if pids else None
            for pids in (self.dockerd, self.containerd, self.shims)
        )
        busy, idle = procfs.machine_seconds()
        return bridge, server, dockerd, containerd, shim, time.process_time(), busy, idle

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> CpuUse:
        assert self._start is not None, "start() first"
        end = self._read()
        d = [None if a is None or b is None else b - a for a, b in zip(self._start, end)]
        return CpuUse(d[0], d[1], d[2], d[3], d[4], d[5] or 0.0, d[6] or 0.0, d[7] or 0.0)
