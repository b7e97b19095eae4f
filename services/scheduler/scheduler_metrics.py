"""The scheduler's Prometheus metrics: reconcile passes and their steps (counted where
they run), and the servers and agents as last published (a snapshot the publishing
loop replaces and a scrape reads)."""

from __future__ import annotations

from collections import Counter as Tally
from typing import Iterable, Mapping

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from common import metrics
from common.protocol import ServerState

_registry = metrics.registry()
RECONCILES = Counter(
    "mcp_orchestrator_scheduler_reconciles",
    "Reconcile passes, by kind (full: the timer or a reload, with the routes re-sent; partial: an event) and result",
    ["kind", "result"],
    registry=_registry,
)
RECONCILE_SECONDS = Histogram(
    "mcp_orchestrator_scheduler_reconcile_duration_seconds",
    "Duration of a reconcile pass (observe, plan, apply)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=_registry,
)
STEPS = Counter(
    "mcp_orchestrator_scheduler_container_steps",
    "Container steps sent to the container-agent (create, start, stop, ...), by result (ok, failed, unsent)",
    ["action", "result"],
    registry=_registry,
)


class _Published:
    """The servers and agents as last published (replaced whole: a scrape on another
    thread sees one or the other, never half)."""

    def __init__(self) -> None:
        self.servers: tuple[ServerState, ...] = ()
        self.agents: Mapping[str, str] = {}

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        servers, agents = self.servers, self.agents
        by_status = GaugeMetricFamily(
            "mcp_orchestrator_scheduler_servers", "Servers of the configuration by status", labels=["status"]
        )
        for status, n in sorted(Tally(str(s.status) for s in servers).items()):
            by_status.add_metric([status], n)
        restarts = GaugeMetricFamily(
            "mcp_orchestrator_scheduler_server_restarts",
            "Restarts of each server's container (Docker's count, kept across scheduler restarts)",
            labels=["server_id"],
        )
        backoff = GaugeMetricFamily(
            "mcp_orchestrator_scheduler_server_backoff_seconds",
            "The restart delay of a crash-looping server (0 when it is not)",
            labels=["server_id"],
        )
        for s in servers:
            restarts.add_metric([s.server_id], s.restarts)
            backoff.add_metric([s.server_id], s.backoff_seconds or 0.0)
        up = GaugeMetricFamily(
            "mcp_orchestrator_scheduler_agent_up",
            "1 when the agent answers and its heartbeats arrive",
            labels=["agent"],
        )
        for name, shown in sorted(agents.items()):
            up.add_metric([name], 1 if shown == "available" else 0)
        return [by_status, restarts, backoff, up]


PUBLISHED = _Published()
_registry.register(PUBLISHED)


def published(servers: Iterable[ServerState], agents: Mapping[str, str]) -> None:
    PUBLISHED.servers = tuple(servers)
    PUBLISHED.agents = dict(agents)
