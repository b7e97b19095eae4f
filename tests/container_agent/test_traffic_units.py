"""The bridge's traffic numbers: quantiles from bucket counts, the chart series, how an
answer's outcome is read without parsing it, bounded labels."""

from __future__ import annotations

import pytest

from common import protocol
from services.container_agent.bridge import traffic
from services.container_agent.bridge.channel import Channel
from services.container_agent.bridge.traffic import BUCKETS, Histogram, Series, ServerTraffic, quantile_ms


def test_a_quantile_is_interpolated_inside_its_bucket():
    h = Histogram()
    for seconds in (0.002, 0.002, 0.003, 0.004):  # all in (0.0025, 0.005] but two
        h.observe(seconds)
    assert quantile_ms([0] * (len(BUCKETS) + 1), 0.5) is None
    assert quantile_ms(h.counts, 0.5) == 2.5  # the second of four: the top of (0.001, 0.0025]
    assert 2.5 < quantile_ms(h.counts, 0.95) <= 5.0
    over = Histogram()
    over.observe(120.0)
    assert quantile_ms(over.counts, 0.99) == BUCKETS[-1] * 1000


def test_the_series_has_sixty_points_and_a_window():
    series = Series()
    now = 1_000_000.0
    series.add(now - 400, 0.01, False)  # outside the 5-minute window, inside the chart
    series.add(now - 5, 0.01, True)
    series.add(now, 0.02, False)
    columns = series.columns(now)
    assert len(columns["calls"]) == traffic.SERIES_LENGTH
    assert columns["start"] + (traffic.SERIES_LENGTH - 1) * 10 == now // 10 * 10  # the last is now's
    assert sum(columns["calls"]) == 3 and sum(columns["errors"]) == 1
    assert columns["p95_ms"][0] is None
    calls, errors, counts = series.window(now, traffic.WINDOW_SECONDS)
    assert (calls, errors, sum(counts)) == (2, 1, 2)


@pytest.mark.parametrize(
    "line, tool_call, expected",
    [
        (b'{"jsonrpc":"2.0","id":7,"result":{"content":[]}}', True, ("ok", None)),
        (b'{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}', True, ("tool_error", None)),
        (b'{"jsonrpc":"2.0","id":7,"result":{"isError":true}}', False, ("ok", None)),
        (b'{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}', False, ("error", -32601)),
        (b'{"jsonrpc":"2.0","id":7,"error":{"message":"no","code":-32601}}', False, ("error", None)),
    ],
)
def test_the_outcome_of_a_canonical_answer_is_read_without_parsing(line, tool_call, expected):
    rest = line.index(b',"', len(b'{"jsonrpc":"2.0","id":'))
    assert traffic.fast_outcome(line, rest, tool_call) == expected


def test_labels_stay_bounded_whatever_clients_send():
    counted = ServerTraffic("s")
    for n in range(traffic.MAX_TOOLS + 10):
        call = counted.note({}, "tools/call", f"tool-{n}", "1999-01-01")
        counted.record(call, 200, 0.01, None, 10, 10)
    odd = counted.note({}, "x/" + "y" * 50, "", "2025-06-18")
    counted.record(odd, 200, 0.01, None, 0, 0)
    assert len(counted.tools) == traffic.MAX_TOOLS + 1 and counted.tools["other"].outcomes == {"ok": 10}
    assert counted.requests == {("tools/call", "other", "ok"): traffic.MAX_TOOLS + 10, ("other", "2025-06-18", "ok"): 1}


def test_an_outcome_set_by_the_upstream_wins_over_the_http_status():
    counted = ServerTraffic("s")
    channel = Channel(expected=1)
    request: dict = {}
    channel.call = counted.note(request, "tools/call", "t", "2026-07-28")
    traffic.settle(channel, traffic.ERROR, -32021)
    counted.record(channel.call, 400, 0.01, None, 0, 0)
    assert counted.requests == {("tools/call", "2026-07-28", "error"): 1}
    assert counted.errors == {("tools/call", -32021): 1}
    refused = counted.note(request, "tools/list", "", "2025-06-18")
    counted.record(refused, 401, 0.001, None, 0, 0)
    assert counted.requests[("tools/list", "2025-06-18", "unauthorized")] == 1


def test_the_catalog_bounds_what_a_server_lists():
    deep: dict = {}
    node = deep
    for _ in range(200):  # deeper than the wire protocol would carry as a map
        node["items"] = {}
        node = node["items"]
    tools = [
        {"name": f"t{i}", "description": "d" * 5000, "inputSchema": deep} for i in range(traffic.CATALOG_ITEMS + 3)
    ]
    tools.append("not a tool")
    catalog = traffic.catalog_of(
        {
            "tools/list": {"tools": tools},
            "prompts/list": {"prompts": [{"name": "p", "arguments": [{"name": "a", "required": True}, 7]}]},
            "resources/list": None,
        }
    )
    assert len(catalog["tools"]) == traffic.CATALOG_ITEMS
    first = catalog["tools"][0]
    assert len(first["description"]) == traffic.TEXT_CHARS and first["description"].endswith("…")
    assert first["input_schema_json"].startswith('{\n  "items": {') and len(first["input_schema_json"]) < 20000
    assert catalog["error"] == (
        f"{traffic.CATALOG_ITEMS + 3} tools, the first {traffic.CATALOG_ITEMS} shown; "
        f"descriptions and schemas past {traffic.CATALOG_CHARS} characters left out"
    )
    assert catalog["tools"][-1]["input_schema_json"] == "" and catalog["tools"][-1]["name"] == "t499"
    assert catalog["prompts"] == [
        {"name": "p", "description": "", "arguments": [{"name": "a", "description": "", "required": True}]}
    ]
    assert catalog["resources"] == []
    # What the bridge reports travels as the protocol's record, however deep the schema.
    served = ServerTraffic("deep").report(True, catalog)
    body = protocol.from_plain(protocol.TrafficReport, {"servers": [served]})
    wire = protocol.encode(protocol.reply_ok(protocol.request("container.traffic"), body), 4 * 1024 * 1024)
    (back,) = protocol.decode(wire, 4 * 1024 * 1024).body.servers
    assert len(back.catalog.tools) == traffic.CATALOG_ITEMS and back.catalog.tools[0].input_schema_json
    assert len(back.series.calls) == traffic.SERIES_LENGTH and back.recent == [] and back.window.calls == 0


def test_a_huge_schema_is_cut_with_a_note():
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(2000)}}
    text = traffic.catalog_of({"tools/list": {"tools": [{"name": "big", "inputSchema": schema}]}})["tools"][0][
        "input_schema_json"
    ]
    assert text.endswith(f"the first {traffic.SCHEMA_CHARS} shown)") and len(text) < traffic.SCHEMA_CHARS + 100
