"""Host ports of the MCP servers: a pure allocator and a check of the host.

A server keeps its port for its life. Nothing of ours records it in a file: the port
is recovered from what survives any restart, the label on the server's container
(`mcp-orchestrator.host-port`) and the port of its ALB target, in that order. Only
servers with neither get a new port: the lowest one of the range that no server holds
and nothing else on the host listens on.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Optional, Sequence


@dataclass(frozen=True)
class PortAllocation:
    ports: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # server id -> why it has none
    skipped: tuple[int, ...] = ()  # ports found in use by others


def allocate_ports(
    server_ids: Sequence[str],
    port_range: tuple[int, int],
    *,
    current: Optional[Mapping[str, int]] = None,
    recovered: Sequence[Mapping[str, int]] = (),
    reserved: Iterable[int] = (),
    is_free: Callable[[int], bool] = lambda port: True,
) -> PortAllocation:
    """A port for each of `server_ids` (processed in sorted order, so the outcome
    does not depend on the order of the file).

    current:   the ports the scheduler gave out while running (kept first)
    recovered: ports read back from the agents, by preference (containers, routes)
    reserved:  ports held by something of ours that is not in `server_ids` (a container
               on its way out), never given to anyone
    is_free:   whether a port nobody of ours holds is free on the host
    """
    lo, hi = port_range
    current = current or {}
    ids = sorted(set(server_ids))
    taken: set[int] = set(reserved)
    ports: dict[str, int] = {}

    def claim(sid: str, port: Optional[int]) -> bool:
        if port is None or not lo <= port <= hi or port in taken:
            return False
        ports[sid] = port
        taken.add(port)
        return True

    for sid in ids:
        if claim(sid, current.get(sid)):
            continue
        for source in recovered:
            if claim(sid, source.get(sid)):
                break

    errors: dict[str, str] = {}
    skipped: list[int] = []
    candidate = lo
    for sid in ids:
        if sid in ports:
            continue
        while candidate <= hi and (candidate in taken or not _free(is_free, candidate, skipped)):
            candidate += 1
        if candidate > hi:
            errors[sid] = (
                f"no free host port left in the range {lo}-{hi} "
                f"([service] port_range_start/port_range_end): widen the range or "
                f"disable a server"
            )
            continue
        claim(sid, candidate)
    return PortAllocation(ports=ports, errors=errors, skipped=tuple(skipped))


def _free(is_free: Callable[[int], bool], port: int, skipped: list[int]) -> bool:
    if is_free(port):
        return True
    skipped.append(port)
    return False


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind `port` on `host` now (the bridge will bind it).

    Binding is the one dependable test: it sees listeners on any address that would
    clash. SO_REUSEADDR lets a port in TIME_WAIT count as free, as it does for the
    bridge's own listener.
    """
    bind_host = host if host not in ("", "*") else "0.0.0.0"
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True
