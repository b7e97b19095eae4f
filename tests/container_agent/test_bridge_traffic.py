"""The bridge counts what it serves: real calls through a real bridge (the official SDK
client, several tools, a tool error, a JSON-RPC error, a timeout) change the Prometheus
exposition by exactly what was sent, and the dashboard's report lists the tools and the
recent calls."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from bridge_support import (  # noqa: F401  (fixtures)
    Containers,
    RunningBridge,
    containers,
    http_request,
    initialize,
    post_mcp,
    serve_ready,
    start_bridge,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.container_agent.bridge_metrics import BridgeCollector

pytest.importorskip("mcp.client.client")

from mcp.client.client import Client  # noqa: E402

pytestmark = pytest.mark.docker

TIME, FAKE = "counted-time", "counted-fake"
UTC = {"timezone": "UTC"}
CONVERT = {"source_timezone": "UTC", "time": "08:00", "target_timezone": "Asia/Tokyo"}


@pytest.fixture(scope="module")
def counted(docker_client):
    running = start_bridge(docker_client, request_timeout_seconds=1.0)
    yield running
    running.thread.stop()


def scrape(bridge: RunningBridge) -> Counter:
    """The bridge's metrics as the exposition format renders them: (sample name,
    sorted labels) -> value."""
    registry = CollectorRegistry()
    registry.register(BridgeCollector(bridge.thread.metrics))
    text = generate_latest(registry).decode()
    values: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def delta(before: Counter, after: Counter, name: str, **labels: str) -> float:
    """The change of every sample `name` whose labels include `labels` (summed)."""
    wanted = set(labels.items())
    return sum(after[key] - before.get(key, 0) for key in after if key[0] == name and wanted <= set(key[1]))


def test_calls_change_the_metrics_by_exactly_what_was_sent(
    counted, containers: Containers, time_server_image, busybox_image
):
    time_port = serve_ready(counted, TIME, containers.run(time_server_image))
    fake_port = serve_ready(counted, FAKE, containers.fake_server(busybox_image))
    before = scrape(counted)

    async def sdk_calls() -> bool:
        async with Client(f"http://127.0.0.1:{time_port}/mcp/{TIME}/mcp", mode="legacy") as client:
            await client.list_tools()
            for _ in range(3):
                assert (await client.call_tool("get_current_time", UTC)).is_error is False
            for _ in range(2):
                assert (await client.call_tool("convert_time", CONVERT)).is_error is False
            return (await client.call_tool("get_current_time", {"timezone": "Mars/Olympus"})).is_error

    assert asyncio.run(asyncio.wait_for(sdk_calls(), 60)) is True

    session = initialize(fake_port, FAKE)
    unknown = post_mcp(fake_port, FAKE, {"jsonrpc": "2.0", "id": 1, "method": "test/nosuch"}, session)
    assert unknown.json()["error"]["code"] == -32601
    slow = post_mcp(fake_port, FAKE, {"jsonrpc": "2.0", "id": 2, "method": "test/slow"}, session)
    assert "did not answer" in slow.json()["error"]["message"]
    assert (
        http_request(fake_port, "POST", f"/mcp/{FAKE}/mcp", b"{not json", {"Content-Type": "application/json"}).status
        == 400
    )
    assert http_request(fake_port, "GET", f"/mcp/{FAKE}/health").status == 200
    after = scrape(counted)

    tools = "mcp_bridge_tool_calls_total"
    assert delta(before, after, tools, server_id=TIME, tool="get_current_time", outcome="ok") == 3
    assert delta(before, after, tools, server_id=TIME, tool="convert_time", outcome="ok") == 2
    assert delta(before, after, tools, server_id=TIME, tool="get_current_time", outcome="tool_error") == 1
    assert delta(before, after, tools, server_id=TIME) == 6
    requests = "mcp_bridge_requests_total"
    assert delta(before, after, requests, server_id=TIME, method="tools/call") == 6
    assert delta(before, after, requests, server_id=TIME, method="tools/list", outcome="ok") == 1
    assert delta(before, after, requests, server_id=TIME, method="initialize", era="2025-11-25") == 1
    # Histograms: one observation per call, in cumulative buckets up to +Inf.
    duration = "mcp_bridge_request_duration_seconds"
    assert delta(before, after, f"{duration}_count", server_id=TIME, method="tools/call") == 6
    assert delta(before, after, f"{duration}_bucket", server_id=TIME, method="tools/call", le="+Inf") == 6
    assert delta(before, after, f"{duration}_bucket", server_id=TIME, method="tools/call", le="0.001") <= 6
    assert delta(before, after, f"{duration}_sum", server_id=TIME, method="tools/call") > 0
    assert delta(before, after, "mcp_bridge_first_byte_seconds_count", server_id=TIME, method="tools/call") == 6
    assert delta(before, after, "mcp_bridge_tool_call_duration_seconds_count", server_id=TIME, tool="convert_time") == 2

    assert delta(before, after, requests, server_id=FAKE, method="other", outcome="error") == 1
    assert delta(before, after, "mcp_bridge_errors_total", server_id=FAKE, method="other", code="-32601") == 1
    assert delta(before, after, requests, server_id=FAKE, method="other", outcome="timeout") == 1
    assert delta(before, after, "mcp_bridge_refused_requests_total", server_id=FAKE, status="400") == 1
    assert delta(before, after, "mcp_bridge_health_checks_total", server_id=FAKE, status="200") == 1
    assert delta(before, after, "mcp_bridge_received_bytes_total", server_id=FAKE) > 0
    assert delta(before, after, "mcp_bridge_sent_bytes_total", server_id=TIME) > 0
    assert after[("mcp_bridge_sessions", (("server_id", FAKE),))] == 1
    assert after[("mcp_bridge_server_up", (("server_id", TIME),))] == 1
    assert after[("mcp_bridge_requests_in_flight", (("server_id", FAKE),))] == 0


def test_the_report_lists_the_tools_and_the_recent_calls(counted, containers: Containers, time_server_image):
    port = serve_ready(counted, "reported", containers.run(time_server_image))

    async def calls() -> None:
        async with Client(f"http://127.0.0.1:{port}/mcp/reported/mcp", mode="2026-07-28") as client:
            await client.call_tool("get_current_time", UTC)
            await client.call_tool("convert_time", CONVERT)

    # The catalog is read from the server when no client listed the tools yet.
    (first,) = counted.thread.traffic("reported", True)
    assert {t["name"] for t in first["catalog"]["tools"]} == {"get_current_time", "convert_time"}
    schema = json.loads(next(t for t in first["catalog"]["tools"] if t["name"] == "convert_time")["input_schema_json"])
    assert set(schema["required"]) == {"source_timezone", "time", "target_timezone"}
    assert first["catalog"]["error"] is None and first["recent"] == []

    asyncio.run(asyncio.wait_for(calls(), 60))
    (report,) = counted.thread.traffic("reported", True)
    recent = report["recent"]  # newest first; the client lists the tools too
    calls_made = [c for c in recent if c["method"] == "tools/call"]
    assert [(c["method"], c["tool"], c["era"], c["outcome"], c["status"]) for c in calls_made] == [
        ("tools/call", "convert_time", "2026-07-28", "ok", 200),
        ("tools/call", "get_current_time", "2026-07-28", "ok", 200),
    ]
    assert all(c["ms"] > 0 for c in recent)
    by_tool = {t["tool"]: t for t in report["tools"]}
    assert by_tool["convert_time"]["calls"] == 1 and by_tool["convert_time"]["errors"] == 0
    assert by_tool["get_current_time"]["p95_ms"] > 0
    series = report["series"]
    assert len(series["calls"]) == len(series["errors"]) == len(series["p95_ms"]) == 60
    assert sum(series["calls"]) == report["window"]["calls"]
    assert report["window"]["calls"] >= 2 and report["window"]["error_rate"] == 0.0
    # Without detail: the chart numbers only; an unknown server: nothing.
    (brief,) = counted.thread.traffic("reported", False)
    assert "catalog" not in brief and "recent" not in brief and brief["window"] == report["window"]
    assert counted.thread.traffic("nobody", True) == []
