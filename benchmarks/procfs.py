"""CPU time and memory of processes, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> Optional[list[str]]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: fields are counted after its closing parenthesis.
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time of one process (all its threads), to the clock tick; None
    when it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICKS


def _reaped_seconds(pid: int) -> float:
    """CPU time of the children that exited and that the process waited for."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / _TICKS


def memory_mb(pid: Optional[int], key: str = "VmRSS") -> Optional[float]:
    """A memory figure of /proc/PID/status in MB: VmRSS (resident now), VmHWM (peak)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += children(p)
    return seen


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time of the processes and their descendants: the living ones (to the
    nanosecond), and the ones that exited and were waited for by a living one
    (short-lived `docker run` children; to the clock tick)."""
    total = 0.0
    for root in pids:
        for p in tree(root):
            total += (precise_cpu_seconds(p) or 0.0) + _reaped_seconds(p)
    return total


def container_cpu_seconds(container_id: str) -> Optional[float]:
    """CPU time of a running container's processes, from its cgroup (v1 or v2)."""
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage")
    try:
        return int(v1.read_text()) / 1e9
    except OSError:
        pass
    for v2 in (
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat"),
        Path(f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"),
    ):
        try:
            for line in v2.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except OSError:
            continue
    return None


def pids_named(name: str) -> list[int]:
    """Processes whose command name is `name` (e.g. the Docker engine, "dockerd")."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                out.append(int(entry.name))
        except OSError:
            continue
    return out


def precise_cpu_seconds(pid: int) -> Optional[float]:
    """On-CPU time of a process's living threads in nanoseconds' precision (schedstat),
    falling back to the tick-grained `cpu_seconds`. A thread that exited in between is
    lost: meter long-lived processes with it."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        for task in tasks:
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)
    return total / 1e9


def shim_pids(container_ids: Iterable[str]) -> list[int]:
    """The containerd shims of these containers (they carry the containers' stdio)."""
    wanted = set(container_ids)
    out = []
    if not wanted:
        return out
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("containerd-shim"):
                continue
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == b"-id" and args[i + 1].decode(errors="replace") in wanted:
                out.append(int(entry.name))
    return out


def machine_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine, all cores, from /proc/stat: busy is
    user, nice, system, irq, softirq and steal; idle includes waiting for I/O."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS, (idle + iowait) / _TICKS
