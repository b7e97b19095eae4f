"""Each process's Prometheus metrics: one registry per process (with the process's own
CPU, memory and file descriptors), served on its `[metrics]` address by
prometheus_client's HTTP server, on a thread of its own.

Names follow Prometheus' conventions: `mcp_orchestrator_<process>_...`, counters end in
`_total`, durations are histograms in seconds; the bridge's traffic is `mcp_bridge_*`
(services/container_agent/bridge_metrics.py). The README lists them all.
"""

from __future__ import annotations

import logging
from typing import Optional

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, start_http_server

from common.settings import is_loopback_host

log = logging.getLogger(__name__)

_registry: Optional[CollectorRegistry] = None


def registry() -> CollectorRegistry:
    """This process's registry (made on first use)."""
    global _registry
    if _registry is None:
        _registry = CollectorRegistry()
        ProcessCollector(registry=_registry)
        PlatformCollector(registry=_registry)
    return _registry


class MetricsEndpoint:
    """The running /metrics server of this process."""

    def __init__(self, server, thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(address: str, process: str, setting: str) -> Optional[MetricsEndpoint]:
    """Serve this process's registry on `address` (HOST:PORT; empty: nothing). A port that
    cannot be bound is logged and the process goes on without metrics: metrics must never
    take a process down."""
    if not address:
        return None
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not is_loopback_host(host):
        log.warning("%s /metrics on %s has no authentication: keep it on a private network", process, address)
    try:
        server, thread = start_http_server(int(port), addr=host, registry=registry())
    except OSError as exc:
        log.error(
            "cannot serve /metrics on %s ([metrics] %s): %s; going on without", address, setting, exc.strerror or exc
        )
        return None
    log.info("Prometheus metrics on http://%s/metrics", address)
    return MetricsEndpoint(server, thread)
