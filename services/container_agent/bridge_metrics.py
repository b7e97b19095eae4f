"""The bridge's numbers as Prometheus metrics (the container-agent's /metrics).

A collector, not live prometheus_client metrics: the bridge counts on its event loop
without locks (bridge/traffic.py), and a scrape takes one snapshot of every server on
that loop and turns it into metric families here, on the scraping thread.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from common import metrics

from .bridge.traffic import BUCKETS, Sample

log = logging.getLogger(__name__)

_BOUNDS = [repr(b) if b != int(b) else f"{b:.1f}" for b in BUCKETS] + ["+Inf"]


def _buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative bucket counts, as the exposition format wants them."""
    total = 0
    out = []
    for bound, n in zip(_BOUNDS, counts):
        total += n
        out.append((bound, float(total)))
    return out


class BridgeCollector:
    """Collects `samples()` (BridgeThread.metrics) at every scrape."""

    def __init__(self, samples: Callable[[], list[Sample]]) -> None:
        self._samples = samples

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked collector: the families depend on what is served

    def collect(self) -> Iterable[Metric]:
        try:
            samples = self._samples()
        except Exception as exc:  # the bridge is stopping: no bridge metrics this time
            log.debug("bridge metrics not collected: %s", exc)
            return []
        return families(samples)


# name -> (family, help, labels after server_id); the README's metrics reference lists them.
METRICS: dict[str, tuple[type, str, tuple[str, ...]]] = {
    "mcp_bridge_requests": (
        CounterMetricFamily,
        "MCP requests answered, by method, era and outcome",
        ("method", "era", "outcome"),
    ),
    "mcp_bridge_errors": (CounterMetricFamily, "JSON-RPC error answers, by method and code", ("method", "code")),
    "mcp_bridge_request_duration_seconds": (
        HistogramMetricFamily,
        "From a request's arrival to the end of its answer",
        ("method",),
    ),
    "mcp_bridge_first_byte_seconds": (
        HistogramMetricFamily,
        "From a request's arrival to the first MCP message of its answer",
        ("method",),
    ),
    "mcp_bridge_tool_calls": (CounterMetricFamily, "tools/call requests, by tool and outcome", ("tool", "outcome")),
    "mcp_bridge_tool_call_duration_seconds": (HistogramMetricFamily, "tools/call duration, by tool", ("tool",)),
    "mcp_bridge_refused_requests": (
        CounterMetricFamily,
        "Requests refused before an MCP message was read, by HTTP status",
        ("status",),
    ),
    "mcp_bridge_health_checks": (CounterMetricFamily, "Health check requests, by HTTP status", ("status",)),
    "mcp_bridge_received_bytes": (CounterMetricFamily, "Request body bytes received", ()),
    "mcp_bridge_sent_bytes": (CounterMetricFamily, "Response body bytes sent", ()),
    "mcp_bridge_sessions": (GaugeMetricFamily, "Handshake-era sessions open", ()),
    "mcp_bridge_open_streams": (GaugeMetricFamily, "SSE streams open (GET streams, subscriptions/listen)", ()),
    "mcp_bridge_requests_in_flight": (GaugeMetricFamily, "Client requests at the server, not answered yet", ()),
    "mcp_bridge_stdio_queue_bytes": (GaugeMetricFamily, "Bytes waiting to be written to the server's stdin", ()),
    "mcp_bridge_server_up": (GaugeMetricFamily, "1 when the server is attached and initialized", ()),
}


_HISTOGRAMS = (("mcp_bridge_request_duration_seconds", "duration"), ("mcp_bridge_first_byte_seconds", "first_byte"))


def families(samples: list[Sample]) -> list[Metric]:
    made = {name: kind(name, text, labels=["server_id", *labels]) for name, (kind, text, labels) in METRICS.items()}
    for sample in samples:
        c: dict[str, Any] = sample.counts
        server = c["server_id"]
        for (method, era, outcome), n in c["requests"].items():
            made["mcp_bridge_requests"].add_metric([server, method, era, outcome], n)
        for (method, code), n in c["errors"].items():
            made["mcp_bridge_errors"].add_metric([server, method, str(code)], n)
        for name, key in (
            ("mcp_bridge_request_duration_seconds", "duration"),
            ("mcp_bridge_first_byte_seconds", "first_byte"),
        ):
            for method, (counts, total) in c[key].items():
                made[name].add_metric([server, method], _buckets(counts), total)
        for tool, (outcomes, counts, total) in c["tools"].items():
            for outcome, n in outcomes.items():
                made["mcp_bridge_tool_calls"].add_metric([server, tool, outcome], n)
            made["mcp_bridge_tool_call_duration_seconds"].add_metric([server, tool], _buckets(counts), total)
        for name, key in (("mcp_bridge_refused_requests", "refused"), ("mcp_bridge_health_checks", "health")):
            for status, n in c[key].items():
                made[name].add_metric([server, str(status)], n)
        for name, value in (
            ("mcp_bridge_received_bytes", c["bytes_in"]),
            ("mcp_bridge_sent_bytes", c["bytes_out"]),
            ("mcp_bridge_sessions", sample.sessions),
            ("mcp_bridge_open_streams", sample.streams),
            ("mcp_bridge_requests_in_flight", sample.in_flight),
            ("mcp_bridge_stdio_queue_bytes", sample.stdio_queue_bytes),
            ("mcp_bridge_server_up", 1 if sample.up else 0),
        ):
            made[name].add_metric([server], value)
    return list(made.values())


_exported: list[BridgeCollector] = []


def export(samples: Callable[[], list[Sample]]) -> None:
    """Serve `samples` (the running bridge's) on this process's /metrics, in place of any
    bridge exported before."""
    registry = metrics.registry()
    while _exported:
        registry.unregister(_exported.pop())
    collector = BridgeCollector(samples)
    registry.register(collector)
    _exported.append(collector)
